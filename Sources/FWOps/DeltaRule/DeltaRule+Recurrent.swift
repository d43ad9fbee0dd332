import FWCore

extension DeltaRule {
    /// Recurrent forward of the delta rule on one sequence, token by token.
    ///
    /// ```
    /// vbar_t = S_{t-1} k_t                       (sgemv on S^T)
    /// S_t    = S_{t-1} + beta_t (v_t - vbar_t) k_t^T   (sger on S^T)
    /// y_t    = S_t q_t                           (sgemv on S^T)
    /// ```
    ///
    /// - Parameters:
    ///   - y: `[T, dv]`, overwritten with the outputs.
    ///   - state: `[dphi, dv]`; in S_0^T, out S_T^T.
    ///   - saved: `recurrentSavedCount(shape)` floats (vbar_t, `[T, dv]`) for
    ///     the backward, or nil when no backward follows.
    ///   - q, k: `[T, dphi]`; v: `[T, dv]`; beta: `[T]`.
    public static func recurrentForward(
        y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>,
        saved: UnsafeMutablePointer<Float>?,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, shape: SequenceShape
    ) {
        let T = shape.T, dphi = shape.dphi, dv = shape.dv
        precondition(T >= 1 && dphi >= 1 && dv >= 1, "DeltaRule.recurrentForward: bad shape \(shape)")
        // Scratch: vbar (when not saved) and u, allocated once per call.
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * dv)
        defer { scratch.deallocate() }
        let u = scratch
        for t in 0..<T {
            let kt = k + t * dphi, qt = q + t * dphi, vt = v + t * dv
            let vbar = saved.map { $0 + t * dv } ?? (scratch + dv)
            // vbar_t = S_{t-1} k_t = (S^T)^T k_t
            BLAS.sgemv(.transpose, m: dphi, n: dv, alpha: 1, a: state, lda: dv,
                       x: kt, beta: 0, y: vbar)
            // u_t = beta_t (v_t - vbar_t)
            let b = beta[t]
            for j in 0..<dv { u[j] = b * (vt[j] - vbar[j]) }
            // S^T += k_t u_t^T
            BLAS.sger(m: dphi, n: dv, alpha: 1, x: kt, y: u, a: state, lda: dv)
            // y_t = S_t q_t
            BLAS.sgemv(.transpose, m: dphi, n: dv, alpha: 1, a: state, lda: dv,
                       x: qt, beta: 0, y: y + t * dv)
        }
    }

    /// Recurrent backward of the delta rule: exact gradients of
    /// `recurrentForward`, in reverse time, reversing the state updates
    /// (S_{t-1}^T = S_t^T - k_t u_t^T with u_t from the saved vbar_t) so that
    /// memory stays O(T d + d^2).
    ///
    /// Per step, with G = dL/dS_t^T accumulated so far:
    /// ```
    /// dq_t   = S_t^T dy_t            G += q_t dy_t^T
    /// du_t   = G^T k_t               dk_t = G u_t
    /// dv_t   = beta_t du_t           dbeta_t = du_t . (v_t - vbar_t)
    /// dvbar  = -beta_t du_t          S^T <- S^T - k_t u_t^T   (now S_{t-1}^T)
    /// dk_t  += S_{t-1}^T dvbar       G += k_t dvbar^T          (now dL/dS_{t-1}^T)
    /// ```
    ///
    /// - Parameters:
    ///   - dq, dk: `[T, dphi]`; dv: `[T, dv]`; dbeta: `[T]` — overwritten.
    ///   - dstate: `[dphi, dv]`; in dL/dS_T^T (zeros when none), out dL/dS_0^T.
    ///   - dy: `[T, dv]`.
    ///   - q, k, v, beta: the forward's inputs.
    ///   - finalState: S_T^T exactly as the forward returned it.
    ///   - saved: what `recurrentForward` saved (must not be nil).
    public static func recurrentBackward(
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
        dv: UnsafeMutablePointer<Float>, dbeta: UnsafeMutablePointer<Float>,
        dstate: UnsafeMutablePointer<Float>,
        dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        beta: UnsafePointer<Float>,
        finalState: UnsafePointer<Float>, saved: UnsafePointer<Float>?,
        shape: SequenceShape
    ) {
        let T = shape.T, dphi = shape.dphi, dvSize = shape.dv
        precondition(T >= 1 && dphi >= 1 && dvSize >= 1, "DeltaRule.recurrentBackward: bad shape \(shape)")
        guard let saved else { preconditionFailure("DeltaRule.recurrentBackward: saved is nil") }
        // Scratch: the running state S^T (reversed step by step), u, du.
        let n = shape.stateCount
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: n + 2 * dvSize)
        defer { scratch.deallocate() }
        let st = scratch, u = scratch + n, du = scratch + n + dvSize
        st.update(from: finalState, count: n)
        let g = dstate  // dL/dS_t^T, accumulated in place
        for t in stride(from: T - 1, through: 0, by: -1) {
            let kt = k + t * dphi, qt = q + t * dphi, vt = v + t * dvSize
            let vbar = saved + t * dvSize, dyt = dy + t * dvSize
            let dqt = dq + t * dphi, dkt = dk + t * dphi, dvt = dv + t * dvSize
            // y_t = S_t q_t: dq_t = S_t^T dy_t, dS_t^T += q_t dy_t^T
            BLAS.sgemv(.none, m: dphi, n: dvSize, alpha: 1, a: st, lda: dvSize,
                       x: dyt, beta: 0, y: dqt)
            BLAS.sger(m: dphi, n: dvSize, alpha: 1, x: qt, y: dyt, a: g, lda: dvSize)
            // S_t^T = S_{t-1}^T + k_t u_t^T: du_t = G^T k_t, dk_t = G u_t
            let b = beta[t]
            for j in 0..<dvSize { u[j] = b * (vt[j] - vbar[j]) }
            BLAS.sgemv(.transpose, m: dphi, n: dvSize, alpha: 1, a: g, lda: dvSize,
                       x: kt, beta: 0, y: du)
            BLAS.sgemv(.none, m: dphi, n: dvSize, alpha: 1, a: g, lda: dvSize,
                       x: u, beta: 0, y: dkt)
            // u_t = beta_t (v_t - vbar_t): dv_t = beta du, dbeta = du.(v - vbar),
            // dvbar = -beta du (kept in du).
            var db: Float = 0
            for j in 0..<dvSize {
                let d = du[j]
                db += d * (vt[j] - vbar[j])
                dvt[j] = b * d
                du[j] = -b * d
            }
            dbeta[t] = db
            // Reverse the write: S_{t-1}^T = S_t^T - k_t u_t^T.
            BLAS.sger(m: dphi, n: dvSize, alpha: -1, x: kt, y: u, a: st, lda: dvSize)
            // vbar_t = S_{t-1} k_t: dk_t += S_{t-1}^T dvbar, dS_{t-1}^T += k_t dvbar^T
            BLAS.sgemv(.none, m: dphi, n: dvSize, alpha: 1, a: st, lda: dvSize,
                       x: du, beta: 1, y: dkt)
            BLAS.sger(m: dphi, n: dvSize, alpha: 1, x: kt, y: du, a: g, lda: dvSize)
        }
    }
}
