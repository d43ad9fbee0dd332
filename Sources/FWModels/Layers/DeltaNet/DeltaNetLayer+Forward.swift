import FWCore
import FWOps

extension DeltaNetLayer {
    /// y `[B, T, D]` for x `[B, T, D]` from the zero state (the
    /// `SequenceMixingLayer` forward; nothing is drawn from `rng`).
    ///
    /// - Throws: `FWError.shapeMismatch` naming "x" unless x is `[B, T, D]`.
    public func forward(_ x: Tensor, store: ParameterStore, training: Bool,
                        rng: inout SeededRNG) throws -> (y: Tensor, cache: DeltaNetLayer.Cache) {
        let r = try forward(x, store: store, initialState: nil)
        return (r.y, r.cache)
    }

    /// y `[B, T, D]` and the final state for x `[B, T, D]`, starting from
    /// `initialState` (the zero state when nil): fast weights S_0
    /// `[B, H, dv, dk]` and the conv states `[B, K-1, C]`. Both recurrences
    /// depend on the past only through their state, so a sequence run in
    /// segments, each from the previous segment's final state, gives the same
    /// y as one pass.
    ///
    /// - Throws: `FWError.shapeMismatch` naming "x" or the part of
    ///   "initial state"; what the op throws (e.g. `FWError.nonFinite`).
    public func forward(_ x: Tensor, store: ParameterStore,
                        initialState: State?) throws -> (y: Tensor, state: State, cache: DeltaNetLayer.Cache) {
        let (B, T) = try AttentionHeads.checkSequence(x, "x", modelSize: modelSize)
        if let s0 = initialState { try checkState(s0, batch: B, prefix: "initial state") }
        let c = config
        let (D, H, dk, dv, K, P) = (c.modelSize, c.heads, c.headSize, c.valueSize, c.convolutionSize, c.projectionSize)
        let n = B * T
        if n == 0 {
            // No step: every state passes through unchanged.
            let cache = Cache(B: B, T: T, x: x, p: [], initialConv: nil, qu: [], ku: [], vu: [], beta: [],
                              decayLogits: [], g: [], o: [], rstd: [], gateLogits: [], merged: [], fwp: nil)
            return (Tensor(shape: [B, T, D]), initialState ?? zeroState(batch: B), cache)
        }

        // 1. The fused projection p = x Wproj^T, [B*T, P].
        var p = [Float](repeating: 0, count: n * P)
        store.withValues { w in
            Linear.forward(out: &p, inp: x.storage, weight: w + proj.weight.offset, bias: nil, n: n, inputs: D, outputs: P)
        }

        // 2. The short convolutions (+ silu) of the q, k, v blocks, [B*T, C] each.
        var final = zeroState(batch: B)
        func convolve(_ conv: ShortConvolution, column: Int, state: Tensor?, final: inout Tensor) -> (y: [Float], u: [Float]) {
            var y = [Float].uninitialized(count: n * conv.channels), u = [Float].uninitialized(count: n * conv.channels)
            store.withValues { w in
                p.withUnsafeBufferPointer { pp in
                    ShortConvolution.forward(y: &y, u: &u, finalState: &final.storage, x: pp.baseAddress! + column, ldx: P,
                                             state: state?.storage, weight: w + conv.weight.offset,
                                             B: B, T: T, C: conv.channels, K: K)
                }
            }
            return (y, u)
        }
        let qc = convolve(qConv, column: c.queryColumn, state: initialState?.qConv, final: &final.qConv)
        let kc = convolve(kConv, column: c.keyColumn, state: initialState?.kConv, final: &final.kConv)
        let vc = convolve(vConv, column: c.valueColumn, state: initialState?.vConv, final: &final.vConv)

        // 3. Heads: q, k [B, H, T, dk], v [B, H, T, dv]; the gates' logits [B, H, T].
        var q = Tensor.uninitialized(shape: [B, H, T, dk]), k = Tensor.uninitialized(shape: [B, H, T, dk])
        var v = Tensor.uninitialized(shape: [B, H, T, dv])
        AttentionHeads.gather(&q.storage, from: qc.y, width: H * dk, column: 0, B: B, H: H, T: T, d: dk)
        AttentionHeads.gather(&k.storage, from: kc.y, width: H * dk, column: 0, B: B, H: H, T: T, d: dk)
        AttentionHeads.gather(&v.storage, from: vc.y, width: H * dv, column: 0, B: B, H: H, T: T, d: dv)
        var beta = Tensor.uninitialized(shape: [B, H, T])
        AttentionHeads.gather(&beta.storage, from: p, width: P, column: c.betaColumn, B: B, H: H, T: T, d: 1)
        beta.withUnsafeMutableBufferPointer { bp in
            WriteStrength.forward(beta: bp.baseAddress!, logits: bp.baseAddress!, count: bp.count,
                                  scale: WriteStrength.scale(negativeEigenvalues: c.negativeEigenvalues))
        }
        var decayLogits: [Float] = [], g: Tensor? = nil
        if let decay {
            decayLogits = [Float].uninitialized(count: B * H * T)
            AttentionHeads.gather(&decayLogits, from: p, width: P, column: c.decayColumn, B: B, H: H, T: T, d: 1)
            var gt = Tensor.uninitialized(shape: [B, H, T])
            store.withValues { w in
                DecayGate.forward(g: &gt.storage, logits: decayLogits, aLog: w + decay.aLog.offset,
                                  dtBias: w + decay.dtBias.offset, B: B, H: H, T: T)
            }
            g = gt
        }

        // 4. The fast weight op (l2-normalised q and k), then o = dk^(-1/2) y.
        let result = try op.forward(q: q, k: k, v: v, gates: FWPGates(beta: beta, g: g),
                                    initialState: initialState?.fastWeights, saveForBackward: true)
        final.fastWeights = result.state
        let scale = c.queryScale
        let o = result.y.storage.map { scale * $0 }

        // 5. The output norm per head over dv (with the silu gate), [B, H, T, dv].
        var gateLogits: [Float] = []
        if c.outputGate {
            gateLogits = [Float].uninitialized(count: n * H * dv)
            AttentionHeads.gather(&gateLogits, from: p, width: P, column: c.gateColumn, B: B, H: H, T: T, d: dv)
        }
        var normed = [Float].uninitialized(count: n * H * dv), rstd = [Float].uninitialized(count: B * H * T)
        store.withValues { w in
            gateLogits.withUnsafeBufferPointer { gp in
                GatedRMSNorm.forward(out: &normed, rstd: &rstd, inp: o, gate: c.outputGate ? gp.baseAddress! : nil,
                                     weight: w + norm.weight.offset, rows: B * H * T, c: dv, epsilon: norm.epsilon)
            }
        }

        // 6. Merge the heads, [B, H, T, dv] -> [B*T, H dv], and project back to D.
        var merged = [Float].uninitialized(count: n * H * dv)
        AttentionHeads.scatter(&merged, width: H * dv, column: 0, from: normed, B: B, H: H, T: T, d: dv)
        var y = Tensor(shape: [B, T, D])
        store.withValues { w in
            Linear.forward(out: &y.storage, inp: merged, weight: w + out.weight.offset, bias: nil,
                           n: n, inputs: H * dv, outputs: D)
        }
        let initialConv = initialState.map { ($0.qConv.storage, $0.kConv.storage, $0.vConv.storage) }
        let cache = Cache(B: B, T: T, x: x, p: p, initialConv: initialConv, qu: qc.u, ku: kc.u, vu: vc.u,
                          beta: beta.storage, decayLogits: decayLogits, g: g?.storage ?? [], o: o, rstd: rstd,
                          gateLogits: gateLogits, merged: merged, fwp: result.cache!)
        return (y, final, cache)
    }
}
