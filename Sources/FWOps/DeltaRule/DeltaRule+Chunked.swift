import FWCore

// The chunked (WY/UT) form of the delta rule (Yang et al. 2024); the
// derivation of the forward and backward is in DeltaRule.md.
//
// Per chunk of c rows (Q, K [c, dphi], V [c, dv], B = diag(beta), H = S^T at
// the chunk start, [dphi, dv]):
//
//   G = K K^T,  L = I + strict-lower(B G)          (unit lower triangular)
//   [W | U] = L^{-1} B [K | V]                      one strsm on [c, dphi + dv]
//   Unew = U - W H                                  the corrected values
//   Y = Q H + tril(Q K^T) Unew                      (tril keeps the diagonal)
//   H <- H + K^T Unew
//
// Rows of a chunk are consecutive rows of q, k, v, y, so every operand is a
// pointer into the caller's arrays with leading dimension dphi or dv; the last
// chunk is simply shorter (no padding).

extension DeltaRule {
    /// Scratch for one call, carved from a single allocation (never per chunk).
    private struct ChunkWorkspace {
        let chunk: Int, dphi: Int, dv: Int
        /// `ld` of the concatenated `[K | V]`-shaped buffers: dphi + dv.
        let ldwu: Int
        let base: UnsafeMutablePointer<Float>
        /// G = K K^T `[c, c]`.
        let g: UnsafeMutablePointer<Float>
        /// L = I + A `[c, c]` (only the strict lower triangle is read).
        let l: UnsafeMutablePointer<Float>
        /// P = tril(Q K^T) `[c, c]`; in the backward also dP, then dA and
        /// B dA + (B dA)^T.
        let p: UnsafeMutablePointer<Float>
        /// [W | U] `[c, dphi + dv]`.
        let wu: UnsafeMutablePointer<Float>
        /// Unew `[c, dv]` when the forward saves nothing (else it goes to `saved`).
        let unew: UnsafeMutablePointer<Float>
        /// Backward: [dW | dUnew], then [dXk | dXv] `[c, dphi + dv]`.
        let dwu: UnsafeMutablePointer<Float>?

        init(chunk: Int, dphi: Int, dv: Int, backward: Bool) {
            self.chunk = chunk
            self.dphi = dphi
            self.dv = dv
            ldwu = dphi + dv
            let cc = chunk * chunk
            let count = 3 * cc + chunk * ldwu + chunk * dv + (backward ? chunk * ldwu : 0)
            base = .allocate(capacity: count)
            // Zeros once: L's upper triangle and diagonal are never written
            // (the unit-lower solves must not see garbage even if they read it).
            base.initialize(repeating: 0, count: count)
            g = base
            l = base + cc
            p = base + 2 * cc
            wu = base + 3 * cc
            unew = wu + chunk * ldwu
            dwu = backward ? unew + chunk * dv : nil
        }

        func deallocate() { base.deallocate() }
    }

    /// Chunked forward of the delta rule on one sequence (WY/UT form); the
    /// same function as `recurrentForward`.
    ///
    /// Each chunk runs three stages: prepare the WY form (`[W|U]`), run the
    /// state (`Unew = U - W S^T`), compute the outputs
    /// (`Y = Q S^T + tril(Q K^T) Unew`), then advances `S^T += K^T Unew`.
    ///
    /// - Parameters:
    ///   - y: `[T, dv]`, overwritten with the outputs.
    ///   - state: `[dphi, dv]`; in S_0^T, out S_T^T.
    ///   - saved: `chunkedSavedCount(shape, chunk:)` floats for the backward
    ///     (S^T at the start of every chunk, `[chunks, dphi, dv]`, then Unew,
    ///     `[T, dv]`), or nil when no backward follows.
    ///   - q, k: `[T, dphi]`; v: `[T, dv]`; beta: `[T]`.
    ///   - chunk: chunk length C >= 1 (T need not be a multiple of it).
    public static func chunkedForward(
        y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>,
        saved: UnsafeMutablePointer<Float>?,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, shape: SequenceShape, chunk: Int
    ) {
        let T = shape.T, dphi = shape.dphi, dv = shape.dv
        precondition(T >= 1 && dphi >= 1 && dv >= 1, "DeltaRule.chunkedForward: bad shape \(shape)")
        precondition(chunk >= 1, "DeltaRule.chunkedForward: chunk \(chunk) < 1")
        let cmax = min(chunk, T)
        let ws = ChunkWorkspace(chunk: cmax, dphi: dphi, dv: dv, backward: false)
        defer { ws.deallocate() }
        let savedUnew = saved.map { $0 + shape.chunkCount(chunk) * shape.stateCount }
        var index = 0
        var start = 0
        while start < T {
            let c = min(chunk, T - start)
            let qc = q + start * dphi, kc = k + start * dphi, vc = v + start * dv
            if let saved { (saved + index * shape.stateCount).update(from: state, count: shape.stateCount) }
            let unew = savedUnew.map { $0 + start * dv } ?? ws.unew
            prepareWY(ws, c: c, k: kc, v: vc, beta: beta + start)
            correctValues(ws, c: c, unew: unew, state: state)
            chunkOutputs(ws, c: c, y: y + start * dv, q: qc, k: kc, unew: unew, state: state)
            // S^T <- S^T + K^T Unew
            BLAS.sgemm(.transpose, .none, m: dphi, n: dv, k: c, alpha: 1, a: kc, lda: dphi,
                       b: unew, ldb: dv, beta: 1, c: state, ldc: dv)
            start += c
            index += 1
        }
    }

    /// Stage 1, prepare the WY form: G = K K^T, L = I + strict-lower(B G),
    /// [W | U] = L^{-1} B [K | V] (forward substitution by `strsm`).
    private static func prepareWY(
        _ ws: ChunkWorkspace, c: Int,
        k: UnsafePointer<Float>, v: UnsafePointer<Float>, beta: UnsafePointer<Float>
    ) {
        let dphi = ws.dphi, dv = ws.dv, ld = ws.ldwu
        // G = K K^T (full; only the strict lower triangle is used)
        BLAS.sgemm(.none, .transpose, m: c, n: c, k: dphi, alpha: 1, a: k, lda: dphi,
                   b: k, ldb: dphi, beta: 0, c: ws.g, ldc: c)
        for i in 0..<c {
            let b = beta[i]
            // A_ij = beta_i G_ij, j < i (strsm reads nothing else of L)
            let gi = ws.g + i * c, li = ws.l + i * c
            for j in 0..<i { li[j] = b * gi[j] }
            // right-hand side B [K | V]
            let wi = ws.wu + i * ld, ki = k + i * dphi, vi = v + i * dv
            for j in 0..<dphi { wi[j] = b * ki[j] }
            for j in 0..<dv { wi[dphi + j] = b * vi[j] }
        }
        BLAS.strsm(.left, .lower, .none, .unit, m: c, n: ld, alpha: 1,
                   a: ws.l, lda: c, b: ws.wu, ldb: ld)
    }

    /// Stage 2, run the state: Unew = U - W S^T (what each step's write adds
    /// once the earlier steps of the chunk and the carried state are removed).
    private static func correctValues(_ ws: ChunkWorkspace, c: Int, unew: UnsafeMutablePointer<Float>,
                                      state: UnsafePointer<Float>) {
        let dphi = ws.dphi, dv = ws.dv, ld = ws.ldwu
        for i in 0..<c { (unew + i * dv).update(from: ws.wu + i * ld + dphi, count: dv) }
        BLAS.sgemm(.none, .none, m: c, n: dv, k: dphi, alpha: -1, a: ws.wu, lda: ld,
                   b: state, ldb: dv, beta: 1, c: unew, ldc: dv)
    }

    /// Stage 3, compute the outputs: P = tril(Q K^T), Y = Q S^T + P Unew.
    private static func chunkOutputs(
        _ ws: ChunkWorkspace, c: Int, y: UnsafeMutablePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, unew: UnsafePointer<Float>,
        state: UnsafePointer<Float>
    ) {
        let dphi = ws.dphi, dv = ws.dv
        causalScores(ws, c: c, q: q, k: k)
        BLAS.sgemm(.none, .none, m: c, n: dv, k: dphi, alpha: 1, a: q, lda: dphi,
                   b: state, ldb: dv, beta: 0, c: y, ldc: dv)
        BLAS.sgemm(.none, .none, m: c, n: dv, k: c, alpha: 1, a: ws.p, lda: c,
                   b: unew, ldb: dv, beta: 1, c: y, ldc: dv)
    }

    /// P = tril(Q K^T), diagonal kept (y_t reads the state after its write).
    private static func causalScores(_ ws: ChunkWorkspace, c: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>) {
        BLAS.sgemm(.none, .transpose, m: c, n: c, k: ws.dphi, alpha: 1, a: q, lda: ws.dphi,
                   b: k, ldb: ws.dphi, beta: 0, c: ws.p, ldc: c)
        for i in 0..<c {
            let pi = ws.p + i * c
            for j in (i + 1)..<max(i + 1, c) { pi[j] = 0 }
        }
    }

    /// Chunked backward of the delta rule: exact gradients of
    /// `chunkedForward`, chunk by chunk in reverse, from the saved chunk-start
    /// states and Unew, recomputing each chunk's WY form `[W|U]`, L, G and P
    /// (see DeltaRule.md).
    ///
    /// Per chunk, with H = S^T at its start and dH = dL/dS^T at its end:
    /// ```
    /// dUnew = P^T dY + K dH            dK  = Unew dH^T
    /// dP    = tril(dY Unew^T)          dQ  = dP K + dY H^T      dK += dP^T Q
    /// dH   <- dH + Q^T dY - W^T dUnew  dW  = -dUnew H^T
    /// [dXk | dXv] = L^{-T} [dW | dUnew]
    /// dV = B dXv    dK += B dXk    dbeta = rowsum(dXk * K + dXv * V)
    /// dA = strict-lower(-[dXk | dXv] [W | U]^T)   dbeta += rowsum(dA * G)
    /// dK += (B dA + (B dA)^T) K
    /// ```
    ///
    /// - Parameters:
    ///   - dq, dk: `[T, dphi]`; dv: `[T, dv]`; dbeta: `[T]` — overwritten.
    ///   - dstate: `[dphi, dv]`; in dL/dS_T^T (zeros when none), out dL/dS_0^T.
    ///   - dy: `[T, dv]`.
    ///   - q, k, v, beta: the forward's inputs.
    ///   - finalState: S_T^T as the forward returned it (unused: the saved
    ///     chunk-start states suffice; kept for the shared kernel API).
    ///   - saved: what `chunkedForward` saved with the same `chunk` (not nil).
    ///   - chunk: the forward's chunk length.
    public static func chunkedBackward(
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
        dv: UnsafeMutablePointer<Float>, dbeta: UnsafeMutablePointer<Float>,
        dstate: UnsafeMutablePointer<Float>,
        dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        beta: UnsafePointer<Float>,
        finalState: UnsafePointer<Float>, saved: UnsafePointer<Float>?,
        shape: SequenceShape, chunk: Int
    ) {
        let T = shape.T, dphi = shape.dphi, dvSize = shape.dv
        precondition(T >= 1 && dphi >= 1 && dvSize >= 1, "DeltaRule.chunkedBackward: bad shape \(shape)")
        precondition(chunk >= 1, "DeltaRule.chunkedBackward: chunk \(chunk) < 1")
        guard let saved else { preconditionFailure("DeltaRule.chunkedBackward: saved is nil") }
        let ws = ChunkWorkspace(chunk: min(chunk, T), dphi: dphi, dv: dvSize, backward: true)
        defer { ws.deallocate() }
        let ld = ws.ldwu
        guard let dwu = ws.dwu else { preconditionFailure("unreachable") }
        let dh = dstate  // dL/dS^T, carried backwards across chunks in place
        let chunks = shape.chunkCount(chunk)
        for index in stride(from: chunks - 1, through: 0, by: -1) {
            let start = index * chunk
            let c = min(chunk, T - start)
            let qc = q + start * dphi, kc = k + start * dphi, vc = v + start * dvSize
            let bc = beta + start, dyc = dy + start * dvSize
            let dqc = dq + start * dphi, dkc = dk + start * dphi, dvc = dv + start * dvSize
            let dbc = dbeta + start
            let h = saved + index * shape.stateCount
            let unew = saved + chunks * shape.stateCount + start * dvSize

            // Recompute the chunk's [W|U], L, G and P (Unew was saved).
            prepareWY(ws, c: c, k: kc, v: vc, beta: bc)
            causalScores(ws, c: c, q: qc, k: kc)

            // S^T_out = H + K^T Unew, Y = Q H + P Unew:
            // dUnew = P^T dY + K dH  (stored as the right block of dwu: dU = dUnew)
            let dunew = dwu + dphi
            BLAS.sgemm(.transpose, .none, m: c, n: dvSize, k: c, alpha: 1, a: ws.p, lda: c,
                       b: dyc, ldb: dvSize, beta: 0, c: dunew, ldc: ld)
            BLAS.sgemm(.none, .none, m: c, n: dvSize, k: dphi, alpha: 1, a: kc, lda: dphi,
                       b: dh, ldb: dvSize, beta: 1, c: dunew, ldc: ld)
            // dK = Unew dH^T
            BLAS.sgemm(.none, .transpose, m: c, n: dphi, k: dvSize, alpha: 1, a: unew, lda: dvSize,
                       b: dh, ldb: dvSize, beta: 0, c: dkc, ldc: dphi)
            // dP = tril(dY Unew^T)  (overwrites P)
            BLAS.sgemm(.none, .transpose, m: c, n: c, k: dvSize, alpha: 1, a: dyc, lda: dvSize,
                       b: unew, ldb: dvSize, beta: 0, c: ws.p, ldc: c)
            for i in 0..<c {
                let pi = ws.p + i * c
                for j in (i + 1)..<max(i + 1, c) { pi[j] = 0 }
            }
            // P = tril(Q K^T): dQ = dP K, dK += dP^T Q; Y = Q H: dQ += dY H^T
            BLAS.sgemm(.none, .none, m: c, n: dphi, k: c, alpha: 1, a: ws.p, lda: c,
                       b: kc, ldb: dphi, beta: 0, c: dqc, ldc: dphi)
            BLAS.sgemm(.none, .transpose, m: c, n: dphi, k: dvSize, alpha: 1, a: dyc, lda: dvSize,
                       b: h, ldb: dvSize, beta: 1, c: dqc, ldc: dphi)
            BLAS.sgemm(.transpose, .none, m: c, n: dphi, k: c, alpha: 1, a: ws.p, lda: c,
                       b: qc, ldb: dphi, beta: 1, c: dkc, ldc: dphi)
            // dH_in = dH_out + Q^T dY - W^T dUnew  (Unew = U - W H)
            BLAS.sgemm(.transpose, .none, m: dphi, n: dvSize, k: c, alpha: 1, a: qc, lda: dphi,
                       b: dyc, ldb: dvSize, beta: 1, c: dh, ldc: dvSize)
            BLAS.sgemm(.transpose, .none, m: dphi, n: dvSize, k: c, alpha: -1, a: ws.wu, lda: ld,
                       b: dunew, ldb: ld, beta: 1, c: dh, ldc: dvSize)
            // dW = -dUnew H^T  (left block of dwu)
            BLAS.sgemm(.none, .transpose, m: c, n: dphi, k: dvSize, alpha: -1, a: dunew, lda: ld,
                       b: h, ldb: dvSize, beta: 0, c: dwu, ldc: ld)
            // [W|U] = L^{-1} B [K|V]: [dXk | dXv] = L^{-T} [dW | dU]
            BLAS.strsm(.left, .lower, .transpose, .unit, m: c, n: ld, alpha: 1,
                       a: ws.l, lda: c, b: dwu, ldb: ld)
            // dV = B dXv, dK += B dXk, dbeta = rowsum(dXk * K) + rowsum(dXv * V)
            for i in 0..<c {
                let b = bc[i], xi = dwu + i * ld
                let ki = kc + i * dphi, vi = vc + i * dvSize
                let dki = dkc + i * dphi, dvi = dvc + i * dvSize
                var db: Float = 0
                for j in 0..<dphi {
                    db += xi[j] * ki[j]
                    dki[j] += b * xi[j]
                }
                for j in 0..<dvSize {
                    db += xi[dphi + j] * vi[j]
                    dvi[j] = b * xi[dphi + j]
                }
                dbc[i] = db
            }
            // dL = -(dXk W^T + dXv U^T); dA = its strict lower triangle (into P)
            BLAS.sgemm(.none, .transpose, m: c, n: c, k: ld, alpha: -1, a: dwu, lda: ld,
                       b: ws.wu, ldb: ld, beta: 0, c: ws.p, ldc: c)
            // A = strict-lower(B G): dbeta_i += sum_j dA_ij G_ij;
            // dG = B dA, symmetrised in place (for G = K K^T): Gs = B dA + (B dA)^T
            for i in 0..<c {
                let b = bc[i], ai = ws.p + i * c, gi = ws.g + i * c
                var db: Float = 0
                for j in 0..<i {
                    let a = ai[j]
                    db += a * gi[j]
                    let s = b * a
                    ai[j] = s
                    ws.p[j * c + i] = s
                }
                ai[i] = 0
                dbc[i] += db
            }
            // dK += Gs K
            BLAS.sgemm(.none, .none, m: c, n: dphi, k: c, alpha: 1, a: ws.p, lda: c,
                       b: kc, ldb: dphi, beta: 1, c: dkc, ldc: dphi)
        }
    }
}
