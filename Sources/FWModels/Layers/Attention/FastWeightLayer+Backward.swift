import FWCore
import FWOps

extension FastWeightLayer {
    /// dL/dx `[B, T, D]` from dL/dy `[B, T, D]`, accumulating dL/dWqkv and
    /// dL/dWout into `store.gradients`. Goes in the reverse order of the forward:
    ///
    /// ```
    /// dmerged = dy Wout              dWout += dy^T merged
    /// do      = split(dmerged)       [B, H, T, dv]
    /// dq, dk, dv, dbeta = FWP backward(do)   (through n and phi, with the cached Omega)
    /// dp      = [s dq | s dk | dv | dbeta * beta (1 - beta)]   (the fused layout)
    /// dx      = dp Wqkv              dWqkv += dp^T x
    /// ```
    ///
    /// - Throws: `FWError.shapeMismatch` naming "dy" unless it is `[B, T, D]` of the forward.
    public func backward(_ dy: Tensor, cache: FastWeightLayer.Cache, store: inout ParameterStore) throws -> Tensor {
        try backward(dy, dstate: nil, cache: cache, store: &store).dx
    }

    /// dL/dx `[B, T, D]` and dL/dS_0 `[B, H, dv, Dphi]` from dL/dy `[B, T, D]`
    /// and dL/dS_T (zero when nil) of the stateful forward
    /// `forward(_:store:omega:initialState:)`, accumulating the parameter
    /// gradients into `store.gradients`. Segment by segment in reverse, each
    /// segment's dL/dS_0 is the dstate of the segment before it.
    ///
    /// - Throws: `FWError.shapeMismatch` naming "dy" or "dstate".
    public func backward(_ dy: Tensor, dstate: Tensor?, cache: FastWeightLayer.Cache,
                         store: inout ParameterStore) throws -> (dx: Tensor, dinitialState: Tensor) {
        let (B, T) = (cache.B, cache.T)
        let (D, H, dk, dv, P) = (config.modelSize, config.heads, config.headSize, config.valueSize, config.projectionSize)
        try dy.checkShape("dy", [B, T, D])
        let stateShape = self.stateShape(batch: B)
        if let dstate { try dstate.checkShape("dstate", stateShape) }
        let n = B * T
        var dx = Tensor(shape: [B, T, D])
        // No step: S_T = S_0, so dL/dS_0 = dL/dS_T.
        guard n > 0, let fwpCache = cache.fwp else { return (dx, dstate ?? Tensor(shape: stateShape)) }
        let s = queryKeyScale

        // 1. Output projection: dmerged = dy Wout, dWout += dy^T merged.
        var dmerged = [Float](repeating: 0, count: n * H * dv)
        store.withPointers { w in
            Linear.backward(dinp: &dmerged, dweight: w.gradient(out.weight), dbias: nil,
                            dout: dy.storage, inp: cache.merged, weight: w.value(out.weight),
                            n: n, inputs: H * dv, outputs: D)
        }
        var dheads = Tensor.uninitialized(shape: [B, H, T, dv])
        dheads.withUnsafeMutableBufferPointer { dp in
            AttentionHeads.gather(dp.baseAddress!, from: dmerged, width: H * dv, column: 0, B: B, H: H, T: T, d: dv)
        }

        // 2. The fast weight programmer's backward (Omega as the forward used it).
        let g = try FastWeightProgrammer.backward(dy: dheads, dstate: dstate, cache: fwpCache)

        // 3. Back into the fused layout; q and k were scaled by s, beta = sigmoid(logit).
        var dp = [Float].uninitialized(count: n * P)
        dp.withUnsafeMutableBufferPointer { dpp in
            let rows = dpp.baseAddress!
            g.dq.withUnsafeBufferPointer { AttentionHeads.scatter(rows, width: P, column: 0, from: $0.baseAddress!, B: B, H: H, T: T, d: dk, scale: s) }
            g.dk.withUnsafeBufferPointer { AttentionHeads.scatter(rows, width: P, column: H * dk, from: $0.baseAddress!, B: B, H: H, T: T, d: dk, scale: s) }
            g.dv.withUnsafeBufferPointer { AttentionHeads.scatter(rows, width: P, column: 2 * H * dk, from: $0.baseAddress!, B: B, H: H, T: T, d: dv) }
            if let dbeta = g.dbeta {
                // dlogit = dbeta * beta (1 - beta)
                var dlogit = [Float].uninitialized(count: dbeta.count)
                for i in 0..<dbeta.count {
                    let b = cache.beta[i]
                    dlogit[i] = dbeta.storage[i] * b * (1 - b)
                }
                AttentionHeads.scatter(rows, width: P, column: H * (2 * dk + dv), from: dlogit, B: B, H: H, T: T, d: 1)
            }
        }

        // 4. Fused projection: dx = dp Wqkv, dWqkv += dp^T x.
        store.withPointers { w in
            dx.withUnsafeMutableBufferPointer { dxp in
                Linear.backward(dinp: dxp.baseAddress!, dweight: w.gradient(qkv.weight), dbias: nil,
                                dout: dp, inp: cache.x.storage, weight: w.value(qkv.weight),
                                n: n, inputs: D, outputs: P)
            }
        }
        return (dx, g.dstate)
    }
}
