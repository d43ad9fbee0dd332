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
    ///   - saved: `recurrentSavedCount` (= 0) floats; may be nil. Unused.
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
        for t in 0..<T {
            let qt = q + t * dphi, kt = k + t * dphi, vt = v + t * dv
            // Write: S^T += k_t v_t^T.
            BLAS.sger(m: dphi, n: dv, alpha: 1, x: kt, y: vt, a: state, lda: dv)
            // Read after the write: y_t = (S_t^T)^T q_t.
            BLAS.sgemv(.transpose, m: dphi, n: dv, alpha: 1, a: state, lda: dv,
                       x: qt, beta: 0, y: y + t * dv)
        }
    }

    /// Recurrent backward of the sum rule for one sequence: the forward's
    /// steps in reverse, undoing each write on a copy of the final state
    /// (`S_{t-1}^T = S_t^T - k_t v_t^T`), so memory is O(T d + d^2) and
    /// nothing is saved. With `G = dL/dS_t^T` (accumulated from later steps):
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
    ///   - finalState: `S_T^T` `[dphi, dv]` exactly as the forward returned it.
    ///   - saved: what the forward saved (nothing); may be nil.
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
        let T = shape.T, dphi = shape.dphi, dvSize = shape.dv
        // The running state S_t^T, walked back from S_T^T (one scratch per call).
        let state = UnsafeMutablePointer<Float>.allocate(capacity: shape.stateCount)
        defer { state.deallocate() }
        state.update(from: finalState, count: shape.stateCount)

        for t in stride(from: T - 1, through: 0, by: -1) {
            let qt = q + t * dphi, kt = k + t * dphi, vt = v + t * dvSize, dyt = dy + t * dvSize
            // dL/dS_t^T += q_t dy_t^T.
            BLAS.sger(m: dphi, n: dvSize, alpha: 1, x: qt, y: dyt, a: dstate, lda: dvSize)
            // dq_t = S_t^T dy_t.
            BLAS.sgemv(.none, m: dphi, n: dvSize, alpha: 1, a: state, lda: dvSize,
                       x: dyt, beta: 0, y: dq + t * dphi)
            // From S_t^T = S_{t-1}^T + k_t v_t^T: dk_t = G v_t, dv_t = G^T k_t.
            BLAS.sgemv(.none, m: dphi, n: dvSize, alpha: 1, a: dstate, lda: dvSize,
                       x: vt, beta: 0, y: dk + t * dphi)
            BLAS.sgemv(.transpose, m: dphi, n: dvSize, alpha: 1, a: dstate, lda: dvSize,
                       x: kt, beta: 0, y: dv + t * dvSize)
            // Undo the write: S_{t-1}^T = S_t^T - k_t v_t^T (not needed before step 0).
            if t > 0 {
                BLAS.sger(m: dphi, n: dvSize, alpha: -1, x: kt, y: vt, a: state, lda: dvSize)
            }
        }
    }
}
