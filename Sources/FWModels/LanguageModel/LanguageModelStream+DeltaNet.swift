#if canImport(Glibc)
import Glibc
#endif
import FWCore
import FWOps

extension LanguageModelStream {
    /// One token through a DeltaNet / Gated DeltaNet mixer (the math of
    /// `DeltaNetLayer` for T = 1), `u [D]` -> `m [D]`, updating the block's
    /// fast weights `S [H, dv, dk]` and conv window `W [K-1, C]` in place:
    ///
    /// ```
    /// p        = Wproj u                                         [P] = [q | k | v | b | a | g]
    /// y        = silu(conv step of p[0..<C] over W)               C = 2 H dk + H dv (q, k, v channels)
    /// per head h:
    ///   q', k' = l2(y_q,h), l2(y_k,h);  v = y_v,h
    ///   beta   = m sigmoid(p_b,h);  a = exp(-exp(A_log_h) softplus(p_a,h + dt_bias_h))   (gated; else 1)
    ///   o_h    = dk^(-1/2) (S_h update and read: deltaStep / gatedDeltaStep)
    /// o'       = RMSNorm(o_h) * w (* silu(p_g,h))  per head over dv
    /// m        = Wout o'                                          Wout [D, H dv]
    /// ```
    ///
    /// Every piece is a loop over raw pointers (no BLAS, no allocation).
    static func deltaNetStep(_ layer: DeltaNetLayer, u: UnsafePointer<Float>, out m: UnsafeMutablePointer<Float>,
                             params: UnsafePointer<Float>, work w: UnsafeMutablePointer<Float>, layout L: Layout,
                             fastWeights S: UnsafeMutablePointer<Float>, window W: UnsafeMutablePointer<Float>) {
        let c = layer.config
        let (D, H, dk, dv, K, P) = (c.modelSize, c.heads, c.headSize, c.valueSize, c.convolutionSize, c.projectionSize)
        let p = w + L.p, y = w + L.conv, o = w + L.o, normed = w + L.normed, rstd = w + L.rstd
        let phiQ = w + L.phiQ, phiK = w + L.phiK, scratch = w + L.scratch
        StreamKernels.matvec(out: p, weight: params + layer.proj.weight.offset, x: u, bias: nil, rows: P, cols: D)

        // The three short convolutions over their columns of p and of the window, then silu.
        let C = 2 * H * dk + H * dv
        func convolve(_ conv: ShortConvolution, column: Int) {
            StreamKernels.convolutionStep(out: y + column, window: W + column, ldw: C, x: p + column,
                                          weight: params + conv.weight.offset, channels: conv.channels, taps: K)
        }
        convolve(layer.qConv, column: c.queryColumn)
        convolve(layer.kConv, column: c.keyColumn)
        convolve(layer.vConv, column: c.valueColumn)
        FeatureMap.silu.forward(out: y, x: y, rows: 1, d: C, omega: nil, normalization: .none)

        // Per head: the l2-normalised q', k', the gates, the fused state update and read.
        let scale = c.queryScale, strength = WriteStrength.scale(negativeEigenvalues: c.negativeEigenvalues)
        for h in 0..<H {
            StreamKernels.features(.identity, .l2, out: phiQ, x: y + c.queryColumn + h * dk, d: dk, omega: nil, scratch: scratch)
            StreamKernels.features(.identity, .l2, out: phiK, x: y + c.keyColumn + h * dk, d: dk, omega: nil, scratch: scratch)
            let v = y + c.valueColumn + h * dv, Sh = S + h * dv * dk, oh = o + h * dv
            let beta = strength * ActivationFunction.logistic(p[c.betaColumn + h])
            if let decay = layer.decay {
                var g: Float = 0
                DecayGate.forward(g: &g, logits: p + c.decayColumn + h, aLog: params + decay.aLog.offset + h,
                                  dtBias: params + decay.dtBias.offset + h, B: 1, H: 1, T: 1)
                StreamKernels.deltaStep(state: Sh, rows: dv, features: dk, k: phiK, q: phiQ, v: v,
                                        beta: beta, decay: expf(g), out: oh)
            } else {
                StreamKernels.deltaStep(state: Sh, rows: dv, features: dk, k: phiK, q: phiQ, v: v, beta: beta, out: oh)
            }
            for i in 0..<dv { oh[i] *= scale }
        }

        // The output norm per head (with the silu gate), then Wout.
        GatedRMSNorm.forward(out: normed, rstd: rstd, inp: o, gate: c.outputGate ? UnsafePointer(p + c.gateColumn) : nil,
                             weight: params + layer.norm.weight.offset, rows: H, c: dv, epsilon: layer.norm.epsilon)
        StreamKernels.matvec(out: m, weight: params + layer.out.weight.offset, x: normed, bias: nil, rows: D, cols: H * dv)
    }
}
