import FWCore
import FWOps

extension FastWeightLayer {
    /// y `[B, T, D]` for x `[B, T, D]`, drawing FAVOR+'s Omega per the
    /// configuration (`projection(training:rng:)`; other maps draw nothing).
    ///
    /// - Throws: `FWError.shapeMismatch` naming "x" unless x is `[B, T, D]`.
    public func forward(_ x: Tensor, store: ParameterStore, training: Bool,
                        rng: inout SeededRNG) throws -> (y: Tensor, cache: FastWeightLayer.Cache) {
        _ = try AttentionHeads.checkSequence(x, "x", modelSize: modelSize)
        return try forward(x, store: store, omega: try projection(training: training, rng: &rng))
    }

    /// y `[B, T, D]` for x `[B, T, D]` with an explicit Omega `[M, dk]`
    /// (required for `favor:M`, nil for every other map): deterministic, so
    /// finite differences and replays can use it.
    ///
    /// - Throws: `FWError.shapeMismatch` naming "x" or "omega";
    ///   `FWError.invalidArgument` for a missing or unexpected Omega.
    public func forward(_ x: Tensor, store: ParameterStore, omega: Tensor?) throws -> (y: Tensor, cache: FastWeightLayer.Cache) {
        let r = try forward(x, store: store, omega: omega, initialState: nil)
        return (r.y, r.cache)
    }

    /// y `[B, T, D]` and the final fast weights S_T `[B, H, dv, Dphi]` for
    /// x `[B, T, D]`, starting from S_0 `[B, H, dv, Dphi]` (zero when nil):
    /// a long sequence run segment by segment, each segment starting from the
    /// previous one's S_T, gives the same y as one pass over the whole (the
    /// op's recurrence S_t = f(S_{t-1}, ...) does not care where it is cut).
    /// Not with the sum rule's attention denominator (its z_0 is always 0).
    ///
    /// - Throws: `FWError.shapeMismatch` naming "x", "omega" or "initial state";
    ///   `FWError.invalidArgument` for an initial state with the denominator.
    public func forward(_ x: Tensor, store: ParameterStore, omega: Tensor?,
                        initialState: Tensor?) throws -> (y: Tensor, state: Tensor, cache: FastWeightLayer.Cache) {
        let (B, T) = try AttentionHeads.checkSequence(x, "x", modelSize: modelSize)
        try checkOmega(omega)
        let stateShape = self.stateShape(batch: B)
        if let s0 = initialState {
            if config.denominator {
                throw FWError.invalidArgument("FastWeightLayer: the attention denominator starts from S_0 = 0 and z_0 = 0: no initial state")
            }
            try s0.checkShape("initial state", stateShape)
        }
        let (D, H, dk, dv, P) = (config.modelSize, config.heads, config.headSize, config.valueSize, config.projectionSize)
        let n = B * T
        let s = queryKeyScale

        // 1. The fused projection p = x Wqkv^T, [B*T, P].
        var p = [Float](repeating: 0, count: n * P)
        var q = Tensor.uninitialized(shape: [B, H, T, dk])
        var k = Tensor.uninitialized(shape: [B, H, T, dk])
        var v = Tensor.uninitialized(shape: [B, H, T, dv])
        var beta: Tensor? = config.rule.needs(.beta) ? Tensor.uninitialized(shape: [B, H, T]) : nil
        if n > 0 {
            store.withValues { w in
                Linear.forward(out: &p, inp: x.storage, weight: w + qkv.weight.offset, bias: nil,
                               n: n, inputs: D, outputs: P)
            }
            // 2. Split into heads: q, k (scaled by s), v, beta = sigmoid(w . x).
            p.withUnsafeBufferPointer { pp in
                let rows = pp.baseAddress!
                q.withUnsafeMutableBufferPointer { AttentionHeads.gather($0.baseAddress!, from: rows, width: P, column: 0, B: B, H: H, T: T, d: dk, scale: s) }
                k.withUnsafeMutableBufferPointer { AttentionHeads.gather($0.baseAddress!, from: rows, width: P, column: H * dk, B: B, H: H, T: T, d: dk, scale: s) }
                v.withUnsafeMutableBufferPointer { AttentionHeads.gather($0.baseAddress!, from: rows, width: P, column: 2 * H * dk, B: B, H: H, T: T, d: dv) }
                if beta != nil {
                    beta!.withUnsafeMutableBufferPointer { bp in
                        AttentionHeads.gather(bp.baseAddress!, from: rows, width: P, column: H * (2 * dk + dv), B: B, H: H, T: T, d: 1)
                        VectorExp.logistic(out: bp.baseAddress!, x: bp.baseAddress!, count: bp.count)
                    }
                }
            }
        }

        // 3. The fast weight programmer over the B*H sequences (an empty
        //    batch or sequence has nothing to run: y is empty, so is dx).
        if n == 0 {
            // No step: S_T = S_0.
            return (Tensor(shape: [B, T, D]), initialState ?? Tensor(shape: stateShape),
                    Cache(B: B, T: T, x: x, beta: [], merged: [], fwp: nil, omega: omega))
        }
        let result = try op.forward(q: q, k: k, v: v, beta: beta, omega: omega, initialState: initialState,
                                    saveForBackward: true)

        // 4. Merge the heads, [B, H, T, dv] -> [B*T, H*dv], and project back to D.
        var merged = [Float].uninitialized(count: n * H * dv)
        var y = Tensor(shape: [B, T, D])
        if n > 0 {
            merged.withUnsafeMutableBufferPointer { mp in
                result.y.withUnsafeBufferPointer { yp in
                    AttentionHeads.scatter(mp.baseAddress!, width: H * dv, column: 0, from: yp.baseAddress!,
                                           B: B, H: H, T: T, d: dv)
                }
            }
            store.withValues { w in
                y.withUnsafeMutableBufferPointer { yp in
                    Linear.forward(out: yp.baseAddress!, inp: merged, weight: w + out.weight.offset, bias: nil,
                                   n: n, inputs: H * dv, outputs: D)
                }
            }
        }
        let cache = Cache(B: B, T: T, x: x, beta: beta?.storage ?? [], merged: merged, fwp: result.cache!, omega: omega)
        return (y, result.state, cache)
    }
}

extension FastWeightLayer {
    /// Throws unless `omega` is `[M, dk]` for `favor:M`, and nil for every other map.
    func checkOmega(_ omega: Tensor?) throws {
        try config.featureMap.checkOmega(omega, inputSize: config.headSize, context: "FastWeightLayer")
    }
}
