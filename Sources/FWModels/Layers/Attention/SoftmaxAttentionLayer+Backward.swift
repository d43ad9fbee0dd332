import FWCore

extension SoftmaxAttentionLayer {
    /// dL/dx `[B, T, D]` from dL/dy `[B, T, D]`, accumulating dL/dWqkv and
    /// dL/dWout into `store.gradients`. Per (b, h), by sgemm (`Attention.md`):
    ///
    /// ```
    /// dV = P^T dO                       [T, dk]
    /// dP = dO V^T                       [T, T]
    /// dS = P * (dP - rowsum(dP * P))    (0 above the diagonal, where P = 0)
    /// dQ = dS K / sqrt(dk),  dK = dS^T Q / sqrt(dk)
    /// ```
    ///
    /// - Throws: `FWError.shapeMismatch` naming "dy" unless it is `[B, T, D]` of the forward.
    public func backward(_ dy: Tensor, cache: SoftmaxAttentionLayer.Cache, store: inout ParameterStore) throws -> Tensor {
        let (B, T) = (cache.B, cache.T)
        let (D, H, dk) = (modelSize, heads, headSize)
        try dy.checkShape("dy", [B, T, D])
        let n = B * T, P = 3 * H * dk
        var dx = Tensor(shape: [B, T, D])
        if n == 0 { return dx }
        let scale = 1 / Float(dk).squareRoot()

        // 1. Output projection: dmerged = dy Wout, dWout += dy^T merged; split into heads.
        var dmerged = [Float](repeating: 0, count: n * H * dk)
        store.withPointers { w in
            Linear.backward(dinp: &dmerged, dweight: w.gradient(out.weight), dbias: nil,
                            dout: dy.storage, inp: cache.merged, weight: w.value(out.weight),
                            n: n, inputs: H * dk, outputs: D)
        }
        var dO = [Float](repeating: 0, count: n * H * dk)
        AttentionHeads.gather(&dO, from: dmerged, width: H * dk, column: 0, B: B, H: H, T: T, d: dk)

        // 2. Per (b, h), in parallel: dQ, dK, dV.
        var dq = [Float](repeating: 0, count: n * H * dk)
        var dk_ = dq, dv = dq
        cache.q.withUnsafeBufferPointer { qp in
        cache.k.withUnsafeBufferPointer { kp in
        cache.v.withUnsafeBufferPointer { vp in
        cache.probabilities.withUnsafeBufferPointer { pp in
        dO.withUnsafeBufferPointer { dop in
        dq.withUnsafeMutableBufferPointer { dqp in
        dk_.withUnsafeMutableBufferPointer { dkp in
        dv.withUnsafeMutableBufferPointer { dvp in
            let ins = UncheckedSendable((qp, kp, vp, pp, dop))
            let outs = UncheckedSendable((dqp, dkp, dvp))
            ThreadOwnership.forEachSequence(B * H) { s in
                let (qp, kp, vp, pp, dop) = ins.value
                let (dqp, dkp, dvp) = outs.value
                let off = s * T * dk
                let Q = qp.baseAddress! + off, K = kp.baseAddress! + off, V = vp.baseAddress! + off
                let Pm = pp.baseAddress! + s * T * T, dOs = dop.baseAddress! + off
                // dV = P^T dO
                BLAS.sgemm(.transpose, .none, m: T, n: dk, k: T, alpha: 1, a: Pm, lda: T, b: dOs, ldb: dk,
                           beta: 0, c: dvp.baseAddress! + off, ldc: dk)
                // dP = dO V^T, then dS = P * (dP - rowsum(dP * P)) in place.
                var dS = [Float](repeating: 0, count: T * T)
                dS.withUnsafeMutableBufferPointer { dsp in
                    let dSm = dsp.baseAddress!
                    BLAS.sgemm(.none, .transpose, m: T, n: T, k: dk, alpha: 1, a: dOs, lda: dk, b: V, ldb: dk,
                               beta: 0, c: dSm, ldc: T)
                    for i in 0..<T {
                        let drow = dSm + i * T
                        RowSoftmax.backward(drow, probabilities: Pm + i * T, count: i + 1)
                        for j in (i + 1)..<T { drow[j] = 0 }
                    }
                    // dQ = dS K / sqrt(dk),  dK = dS^T Q / sqrt(dk)
                    BLAS.sgemm(.none, .none, m: T, n: dk, k: T, alpha: scale, a: dSm, lda: T, b: K, ldb: dk,
                               beta: 0, c: dqp.baseAddress! + off, ldc: dk)
                    BLAS.sgemm(.transpose, .none, m: T, n: dk, k: T, alpha: scale, a: dSm, lda: T, b: Q, ldb: dk,
                               beta: 0, c: dkp.baseAddress! + off, ldc: dk)
                }
            }
        }}}}}}}}

        // 3. Back into the fused layout and through the projection: dx = dp Wqkv, dWqkv += dp^T x.
        var dp = [Float](repeating: 0, count: n * P)
        AttentionHeads.scatter(&dp, width: P, column: 0, from: dq, B: B, H: H, T: T, d: dk)
        AttentionHeads.scatter(&dp, width: P, column: H * dk, from: dk_, B: B, H: H, T: T, d: dk)
        AttentionHeads.scatter(&dp, width: P, column: 2 * H * dk, from: dv, B: B, H: H, T: T, d: dk)
        store.withPointers { w in
            dx.withUnsafeMutableBufferPointer { dxp in
                Linear.backward(dinp: dxp.baseAddress!, dweight: w.gradient(qkv.weight), dbias: nil,
                                dout: dp, inp: cache.x.storage, weight: w.value(qkv.weight),
                                n: n, inputs: D, outputs: P)
            }
        }
        return dx
    }
}
