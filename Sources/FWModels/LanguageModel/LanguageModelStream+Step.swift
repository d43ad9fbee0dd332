#if canImport(Glibc)
import Glibc
#endif
import FWCore
import FWOps

extension LanguageModelStream {
    /// One byte through the whole model (the math of `CharLanguageModel` for
    /// T = 1 in evaluation mode), into `logits [256]`:
    ///
    /// ```
    /// x = sqrt(D) E[token] (+ PE[position])
    /// per block:  u = LN1(x);  x += Mixer_step(u);  w = LN2(x);  x += W2 relu(W1 w + b1) + b2
    /// logits = LN_f(x) E^T + b   (or W)
    /// ```
    ///
    /// A fast-weight mixer step per head h (q, k, v, beta from p = Wqkv u):
    /// `q', k' = n(phi(q)), n(phi(k))`, the fused state update and read
    /// (`StreamKernels.sumStep` / `deltaStep`), the denominator's
    /// `z += k'`, `o /= z . q' + eps`; then `m = Wout (c o)`. A softmax step
    /// writes k, v into column `position` of the feature-major cache and per
    /// head attends over it: `s = sum_i (q_i / sqrt(dk)) K[h dk + i, 0...t]`
    /// (dk axpys over time), `P = softmax(s)`, `o_h,i = P . V[h dk + i, 0...t]`
    /// (dk dot products over time); then `m = Wout o`. A DeltaNet mixer step
    /// is `deltaNetStep` (conv window, l2 q', k', the (gated) delta rule, RMS norm).
    static func step(token: UInt8, position: Int, model: CharLanguageModel, store: ParameterStore,
                     layout L: Layout, frequencies: [Double],
                     work: inout [Float], logits: inout [Float], state: inout LanguageModelState,
                     keys: inout [[Float]], values: inout [[Float]], capacity cap: Int, scores: inout [Float]) {
        let c = model.config
        let (D, H, dk, F) = (c.modelSize, c.heads, c.headSize, c.feedForwardSize)
        store.withValues { params in
        work.withUnsafeMutableBufferPointer { wb in
        logits.withUnsafeMutableBufferPointer { lb in
            let w = wb.baseAddress!
            let x = w + L.x, u = w + L.u, p = w + L.p, o = w + L.o, m = w + L.m, a = w + L.a
            let stats = w + L.stats

            // x = sqrt(D) E[token] (+ PE[position]).
            let e = params + model.embedding.table.offset + Int(token) * D
            for j in 0..<D { x[j] = model.embeddingScale * e[j] }
            if c.positionalEncoding {
                for j in 0..<D {
                    let angle = Double(position) * frequencies[j]
                    x[j] += Float(j % 2 == 0 ? Glibc.sin(angle) : Glibc.cos(angle))
                }
            }

            for (l, block) in model.blocks.enumerated() {
                LayerNorm.forward(out: u, mean: stats, rstd: stats + 1, inp: x,
                                  weight: params + block.norm1.weight.offset, bias: params + block.norm1.bias.offset,
                                  n: 1, c: D)
                switch block.mixer {
                case let .fastWeights(layer):
                    StreamKernels.matvec(out: p, weight: params + layer.qkv.weight.offset, x: u, bias: nil,
                                         rows: layer.projectionSize, cols: D)
                    let dphi = layer.featureSize
                    let phiQ = w + L.phiQ, phiK = w + L.phiK, scratch = w + L.scratch
                    let eps = CarriedFastWeightLayer.denominatorEpsilon
                    layer.evaluationOmega.withOptionalPointer { omega in
                    state.fastWeights[l].withUnsafeMutableBufferPointer { sb in
                        for h in 0..<H {
                            let q = p + h * dk, k = p + H * dk + h * dk, v = p + 2 * H * dk + h * dk
                            StreamKernels.features(layer.featureMap, layer.normalization, out: phiQ, x: q, d: dk,
                                                   omega: omega, scratch: scratch)
                            StreamKernels.features(layer.featureMap, layer.normalization, out: phiK, x: k, d: dk,
                                                   omega: omega, scratch: scratch)
                            let S = sb.baseAddress! + h * dk * dphi, oh = o + h * dk
                            switch layer.rule {
                            case .sum:
                                StreamKernels.sumStep(state: S, rows: dk, features: dphi, k: phiK, q: phiQ, v: v, out: oh)
                            case .delta:
                                let beta = ActivationFunction.logistic(p[3 * H * dk + h])
                                StreamKernels.deltaStep(state: S, rows: dk, features: dphi, k: phiK, q: phiQ, v: v,
                                                        beta: beta, out: oh)
                            case .gatedSum, .gatedDelta:
                                preconditionFailure("CarriedFastWeightLayer's init rejects the gated rules")
                            }
                            var f = layer.outputScale
                            if layer.denominator {
                                let den = state.keySums[l].withUnsafeMutableBufferPointer { zb in
                                    StreamKernels.keySumStep(z: zb.baseAddress! + h * dphi, features: dphi,
                                                             k: phiK, q: phiQ, epsilon: eps)
                                }
                                f /= den
                            }
                            for i in 0..<dk { oh[i] *= f }
                        }
                    }}
                    StreamKernels.matvec(out: m, weight: params + layer.out.weight.offset, x: o, bias: nil, rows: D, cols: D)

                case let .deltaNet(layer):
                    state.fastWeights[l].withUnsafeMutableBufferPointer { sb in
                    state.convStates[l].withUnsafeMutableBufferPointer { cb in
                        deltaNetStep(layer, u: u, out: m, params: params, work: w, layout: L,
                                     fastWeights: sb.baseAddress!, window: cb.baseAddress!)
                    }}

                case let .softmax(layer):
                    StreamKernels.matvec(out: p, weight: params + layer.qkv.weight.offset, x: u, bias: nil,
                                         rows: 3 * D, cols: D)
                    let t = position, n = position + 1, scale = 1 / Float(dk).squareRoot()
                    keys[l].withUnsafeMutableBufferPointer { kb in
                    values[l].withUnsafeMutableBufferPointer { vb in
                    scores.withUnsafeMutableBufferPointer { sb in
                        let K = kb.baseAddress!, Vc = vb.baseAddress!, s = sb.baseAddress!
                        for c in 0..<D {                          // column t of the cache
                            K[c * cap + t] = p[D + c]
                            Vc[c * cap + t] = p[2 * D + c]
                        }
                        for h in 0..<H {
                            let q = p + h * dk
                            for j in 0..<n { s[j] = 0 }
                            for i in 0..<dk { StreamKernels.axpy(s, scale * q[i], K + (h * dk + i) * cap, n) }
                            RowSoftmax.forward(s, count: n)
                            for i in 0..<dk { o[h * dk + i] = StreamKernels.dot(s, Vc + (h * dk + i) * cap, n) }
                        }
                    }}}
                    StreamKernels.matvec(out: m, weight: params + layer.out.weight.offset, x: o, bias: nil, rows: D, cols: D)
                }
                for j in 0..<D { x[j] += m[j] }

                // x += FF(LN2(x)).
                LayerNorm.forward(out: u, mean: stats, rstd: stats + 1, inp: x,
                                  weight: params + block.norm2.weight.offset, bias: params + block.norm2.bias.offset,
                                  n: 1, c: D)
                let ff = block.feedForward
                StreamKernels.matvec(out: a, weight: params + ff.up.weight.offset, x: u,
                                     bias: params + ff.up.bias!.offset, rows: F, cols: D)
                for j in 0..<F { a[j] = max(a[j], 0) }
                StreamKernels.matvec(out: m, weight: params + ff.down.weight.offset, x: a,
                                     bias: params + ff.down.bias!.offset, rows: D, cols: F)
                for j in 0..<D { x[j] += m[j] }
            }

            // logits = LN_f(x) E^T + b (tied) or W^T + b.
            LayerNorm.forward(out: u, mean: stats, rstd: stats + 1, inp: x,
                              weight: params + model.finalNorm.weight.offset, bias: params + model.finalNorm.bias.offset,
                              n: 1, c: D)
            let V = LanguageModelConfig.vocabularySize
            switch model.head {
            case let .tied(h):
                StreamKernels.matvec(out: lb.baseAddress!, weight: params + h.table.offset, x: u,
                                     bias: params + h.bias.offset, rows: V, cols: D)
            case let .untied(h):
                StreamKernels.matvec(out: lb.baseAddress!, weight: params + h.weight.offset, x: u,
                                     bias: params + h.bias!.offset, rows: V, cols: D)
            }
        }}}
    }
}

extension Optional where Wrapped == Tensor {
    /// Calls `body` with the tensor's base address, or nil.
    func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let t = self else { return body(nil) }
        return t.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
