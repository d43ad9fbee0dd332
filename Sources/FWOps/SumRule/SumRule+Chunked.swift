import FWCore

extension SumRule {
    /// Chunked forward of the sum rule for one sequence: chunks of `chunk`
    /// steps (the last may be partial); inside a chunk reads and writes are
    /// `sgemm`s, across chunks one state `P = S^T` is carried.
    ///
    /// For the chunk of rows `t0 ..< t0 + L` (`Q`, `K` `[L, dphi]`, `V`, `Y`
    /// `[L, dv]`, `P` the state before the chunk):
    /// ```
    /// Y  = Q P + tril(Q K^T) V     (tril keeps the diagonal: y_t reads S_t)
    /// P <- P + K^T V
    /// ```
    /// - Parameters:
    ///   - y: out `[T, dv]`, overwritten.
    ///   - state: in `S_0^T`, out `S_T^T`, `[dphi, dv]`.
    ///   - saved: `chunkedSavedCount(shape, chunk:)` floats: receives the state
    ///     at the start of every chunk (`[chunks, dphi, dv]`); nil when no
    ///     backward will follow.
    ///   - q, k: `[T, dphi]` feature-mapped queries and keys.
    ///   - v: `[T, dv]` values.
    ///   - shape: `T`, `dphi`, `dv`.
    ///   - chunk: chunk length `C >= 1`.
    public static func chunkedForward(
        y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>,
        saved: UnsafeMutablePointer<Float>?,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        shape: SequenceShape, chunk: Int
    ) {
        check(shape, chunk: chunk)
        let T = shape.T, dphi = shape.dphi, dv = shape.dv
        let maxL = min(chunk, T)
        // Scratch, once per call: the masked scores tril(Q K^T), [L, L].
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: maxL * maxL)
        defer { scores.deallocate() }

        var c = 0
        var t0 = 0
        while t0 < T {
            let L = min(chunk, T - t0)
            let Q = q + t0 * dphi, K = k + t0 * dphi, V = v + t0 * dv, Y = y + t0 * dv
            if let saved { (saved + c * shape.stateCount).update(from: state, count: shape.stateCount) }

            // Inter-chunk read: Y = Q P.                         [L, dphi] x [dphi, dv]
            BLAS.sgemm(.none, .none, m: L, n: dv, k: dphi,
                       alpha: 1, a: Q, lda: dphi, b: state, ldb: dv, beta: 0, c: Y, ldc: dv)
            // Intra-chunk scores: A = tril(Q K^T).               [L, dphi] x [dphi, L]
            BLAS.sgemm(.none, .transpose, m: L, n: L, k: dphi,
                       alpha: 1, a: Q, lda: dphi, b: K, ldb: dphi, beta: 0, c: scores, ldc: L)
            zeroStrictUpper(scores, order: L)
            // Intra-chunk read: Y += A V.                        [L, L] x [L, dv]
            BLAS.sgemm(.none, .none, m: L, n: dv, k: L,
                       alpha: 1, a: scores, lda: L, b: V, ldb: dv, beta: 1, c: Y, ldc: dv)
            // Write: P += K^T V.                                 [dphi, L] x [L, dv]
            BLAS.sgemm(.transpose, .none, m: dphi, n: dv, k: L,
                       alpha: 1, a: K, lda: dphi, b: V, ldb: dv, beta: 1, c: state, ldc: dv)
            c += 1
            t0 += chunk
        }
    }

    /// Chunked backward of the sum rule for one sequence: the chunks in
    /// reverse, carrying `dP = dL/dP` (P = S^T) in `dstate`. For a chunk with
    /// start state `P0` (from `saved`), `M` the lower-triangular mask (with the
    /// diagonal) and `dP` = dL/d(state after the chunk):
    /// ```
    /// G   = M o (dY V^T)
    /// dQ  = dY P0^T + G K
    /// dK  = G^T Q + V dP^T
    /// dV  = (M o (Q K^T))^T dY + K dP
    /// dP <- dP + Q^T dY              (= dL/dP0)
    /// ```
    /// (derivation in `SumRule.md`).
    /// - Parameters:
    ///   - dq: out `[T, dphi]`, overwritten.
    ///   - dk: out `[T, dphi]`, overwritten.
    ///   - dv: out `[T, dv]`, overwritten.
    ///   - dstate: in `dL/dS_T^T` (zeros when none given), out `dL/dS_0^T`, `[dphi, dv]`.
    ///   - dy: `[T, dv]` = dL/dy.
    ///   - q, k, v: the forward's inputs.
    ///   - finalState: `S_T^T` as the forward returned it (unused here: the
    ///     saved chunk-start states hold all the backward needs).
    ///   - saved: what `chunkedForward` saved with the same `chunk` (required).
    ///   - shape: `T`, `dphi`, `dv`.
    ///   - chunk: the forward's chunk length.
    public static func chunkedBackward(
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
        dv: UnsafeMutablePointer<Float>,
        dstate: UnsafeMutablePointer<Float>,
        dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        finalState: UnsafePointer<Float>, saved: UnsafePointer<Float>?,
        shape: SequenceShape, chunk: Int
    ) {
        check(shape, chunk: chunk)
        guard let saved else { preconditionFailure("SumRule.chunkedBackward: saved is nil (the forward must save)") }
        let T = shape.T, dphi = shape.dphi, dvSize = shape.dv
        let maxL = min(chunk, T)
        // Scratch, once per call: G = M o (dY V^T) and A = M o (Q K^T), [L, L] each.
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * maxL * maxL)
        defer { scratch.deallocate() }
        let G = scratch, A = scratch + maxL * maxL
        let dP = dstate

        for c in stride(from: shape.chunkCount(chunk) - 1, through: 0, by: -1) {
            let t0 = c * chunk
            let L = min(chunk, T - t0)
            let Q = q + t0 * dphi, K = k + t0 * dphi, V = v + t0 * dvSize, dY = dy + t0 * dvSize
            let dQ = dq + t0 * dphi, dK = dk + t0 * dphi, dV = dv + t0 * dvSize
            let P0 = saved + c * shape.stateCount

            // dQ = dY P0^T.                                      [L, dv] x [dv, dphi]
            BLAS.sgemm(.none, .transpose, m: L, n: dphi, k: dvSize,
                       alpha: 1, a: dY, lda: dvSize, b: P0, ldb: dvSize, beta: 0, c: dQ, ldc: dphi)
            // G = M o (dY V^T).                                  [L, dv] x [dv, L]
            BLAS.sgemm(.none, .transpose, m: L, n: L, k: dvSize,
                       alpha: 1, a: dY, lda: dvSize, b: V, ldb: dvSize, beta: 0, c: G, ldc: L)
            zeroStrictUpper(G, order: L)
            // dQ += G K.                                         [L, L] x [L, dphi]
            BLAS.sgemm(.none, .none, m: L, n: dphi, k: L,
                       alpha: 1, a: G, lda: L, b: K, ldb: dphi, beta: 1, c: dQ, ldc: dphi)
            // dK = G^T Q.                                        [L, L] x [L, dphi]
            BLAS.sgemm(.transpose, .none, m: L, n: dphi, k: L,
                       alpha: 1, a: G, lda: L, b: Q, ldb: dphi, beta: 0, c: dK, ldc: dphi)
            // dK += V dP^T (the write P += K^T V).               [L, dv] x [dv, dphi]
            BLAS.sgemm(.none, .transpose, m: L, n: dphi, k: dvSize,
                       alpha: 1, a: V, lda: dvSize, b: dP, ldb: dvSize, beta: 1, c: dK, ldc: dphi)
            // A = M o (Q K^T), recomputed rather than saved.     [L, dphi] x [dphi, L]
            BLAS.sgemm(.none, .transpose, m: L, n: L, k: dphi,
                       alpha: 1, a: Q, lda: dphi, b: K, ldb: dphi, beta: 0, c: A, ldc: L)
            zeroStrictUpper(A, order: L)
            // dV = A^T dY.                                       [L, L] x [L, dv]
            BLAS.sgemm(.transpose, .none, m: L, n: dvSize, k: L,
                       alpha: 1, a: A, lda: L, b: dY, ldb: dvSize, beta: 0, c: dV, ldc: dvSize)
            // dV += K dP (the write).                            [L, dphi] x [dphi, dv]
            BLAS.sgemm(.none, .none, m: L, n: dvSize, k: dphi,
                       alpha: 1, a: K, lda: dphi, b: dP, ldb: dvSize, beta: 1, c: dV, ldc: dvSize)
            // dL/dP0 = dP + Q^T dY (the read Q P0; the write passes dP through).
            BLAS.sgemm(.transpose, .none, m: dphi, n: dvSize, k: L,
                       alpha: 1, a: Q, lda: dphi, b: dY, ldb: dvSize, beta: 1, c: dP, ldc: dvSize)
        }
    }

    /// Zeroes the entries above the diagonal of a row-major `order x order`
    /// matrix (`ld = order`): the causal mask, keeping the diagonal.
    @inline(__always)
    static func zeroStrictUpper(_ a: UnsafeMutablePointer<Float>, order: Int) {
        for i in 0..<order where i + 1 < order {
            (a + i * order + i + 1).update(repeating: 0, count: order - i - 1)
        }
    }
}
