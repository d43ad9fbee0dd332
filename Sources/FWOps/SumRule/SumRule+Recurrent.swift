import FWCore

extension SumRule {
    /// Recurrent forward of the sum rule for one sequence, token by token.
    ///
    /// ```
    /// S_t^T = S_{t-1}^T + k_t v_t^T     (sger)
    /// y_t   = S_t q_t = (S_t^T)^T q_t    (sgemv)
    /// ```
    /// - Parameters:
    ///   - y: out, `[T, dv]`, overwritten.
    ///   - state: in `S_0^T`, out `S_T^T`, `[dphi, dv]`.
    ///   - saved: `recurrentSavedCount` floats: the state at the start of every
    ///     segment of `recurrentSegment(T)` steps, for the backward; nil when no
    ///     backward follows.
    ///   - q: `[T, dphi]` feature-mapped queries q'_t.
    ///   - k: `[T, dphi]` feature-mapped keys k'_t.
    ///   - v: `[T, dv]` values.
    ///   - shape: `T`, `dphi`, `dv`.
    public static func recurrentForward(
        y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>,
        saved: UnsafeMutablePointer<Float>?,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        shape: SequenceShape
    ) {
        check(shape)
        let T = shape.T, dphi = shape.dphi, dv = shape.dv
        let K = recurrentSegment(T)
        for t in 0..<T {
            let qt = q + t * dphi, kt = k + t * dphi, vt = v + t * dv
            // Checkpoint S_{t}^T before the first write of each segment.
            if let saved, t % K == 0 {
                (saved + (t / K) * shape.stateCount).update(from: state, count: shape.stateCount)
            }
            // Write: S^T += k_t v_t^T.
            BLAS.sger(m: dphi, n: dv, alpha: 1, x: kt, y: vt, a: state, lda: dv)
            // Read after the write: y_t = (S_t^T)^T q_t.
            BLAS.sgemv(.transpose, m: dphi, n: dv, alpha: 1, a: state, lda: dv,
                       x: qt, beta: 0, y: y + t * dv)
        }
    }

    /// Recurrent backward of the sum rule for one sequence: the forward's
    /// steps in reverse, segment by segment. Each segment of `K =
    /// recurrentSegment(T)` steps recomputes its states S_t^T forward from the
    /// checkpoint the forward saved, so every state is exactly the forward's;
    /// memory is O(sqrt(T) d^2), never all T states.
    ///
    /// (Undoing each write instead, S_{t-1}^T = S_t^T - k_t v_t^T, needs no
    /// checkpoints but carries the rounding of every later step into S_t; with
    /// the attention denominator dL/dy is divided by z.q' + 1e-6, which is tiny
    /// for near-zero DPFP features, and that error grew to 1e-1 in dq. The
    /// recomputation costs one extra `sger` per step.)
    ///
    /// With `G = dL/dS_t^T` (accumulated from later steps):
    ///
    /// ```
    /// G    += q_t dy_t^T       (the read y_t = S_t q_t)
    /// dq_t  = S_t^T dy_t
    /// dk_t  = G v_t
    /// dv_t  = G^T k_t
    /// dL/dS_{t-1}^T = G         (the write adds, so G passes unchanged)
    /// ```
    /// - Parameters:
    ///   - dq: out `[T, dphi]`, overwritten.
    ///   - dk: out `[T, dphi]`, overwritten.
    ///   - dv: out `[T, dv]`, overwritten.
    ///   - dstate: in `dL/dS_T^T` (zeros when none given), out `dL/dS_0^T`, `[dphi, dv]`.
    ///   - dy: `[T, dv]` = dL/dy.
    ///   - q, k, v: the forward's inputs.
    ///   - finalState: `S_T^T` as the forward returned it (unused: the checkpoints suffice).
    ///   - saved: the forward's checkpoints (required).
    ///   - shape: `T`, `dphi`, `dv`.
    public static func recurrentBackward(
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
        dv: UnsafeMutablePointer<Float>,
        dstate: UnsafeMutablePointer<Float>,
        dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        finalState: UnsafePointer<Float>, saved: UnsafePointer<Float>?,
        shape: SequenceShape
    ) {
        check(shape)
        guard let saved else { preconditionFailure("SumRule.recurrentBackward: needs the forward's checkpoints") }
        let T = shape.T, dphi = shape.dphi, dvSize = shape.dv, n = shape.stateCount
        let K = recurrentSegment(T)
        // The states S_t^T of one segment, recomputed (one scratch per call).
        let states = UnsafeMutablePointer<Float>.allocate(capacity: K * n)
        defer { states.deallocate() }

        for segment in stride(from: (T - 1) / K, through: 0, by: -1) {
            let start = segment * K, end = min(T, start + K)
            // Recompute S_t^T = S_{t-1}^T + k_t v_t^T for t in start..<end.
            for t in start..<end {
                let s = states + (t - start) * n
                s.update(from: t == start ? saved + segment * n : UnsafePointer(s - n), count: n)
                BLAS.sger(m: dphi, n: dvSize, alpha: 1, x: k + t * dphi, y: v + t * dvSize, a: s, lda: dvSize)
            }
            for t in stride(from: end - 1, through: start, by: -1) {
                let qt = q + t * dphi, kt = k + t * dphi, vt = v + t * dvSize, dyt = dy + t * dvSize
                // dL/dS_t^T += q_t dy_t^T.
                BLAS.sger(m: dphi, n: dvSize, alpha: 1, x: qt, y: dyt, a: dstate, lda: dvSize)
                // dq_t = S_t^T dy_t.
                BLAS.sgemv(.none, m: dphi, n: dvSize, alpha: 1, a: states + (t - start) * n, lda: dvSize,
                           x: dyt, beta: 0, y: dq + t * dphi)
                // From S_t^T = S_{t-1}^T + k_t v_t^T: dk_t = G v_t, dv_t = G^T k_t.
                BLAS.sgemv(.none, m: dphi, n: dvSize, alpha: 1, a: dstate, lda: dvSize,
                           x: vt, beta: 0, y: dk + t * dphi)
                BLAS.sgemv(.transpose, m: dphi, n: dvSize, alpha: 1, a: dstate, lda: dvSize,
                           x: kt, beta: 0, y: dv + t * dvSize)
            }
        }
    }
}
