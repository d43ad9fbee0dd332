import FWCore

extension DeltaRule {
    /// Recurrent forward of the delta rule on one sequence, token by token
    /// (the shared `FusedRecurrence` with a_t = 1).
    ///
    /// ```
    /// vbar_t = S_{t-1} k_t
    /// S_t    = S_{t-1} + beta_t (v_t - vbar_t) k_t^T
    /// y_t    = S_t q_t
    /// ```
    ///
    /// - Parameters:
    ///   - y: `[T, dv]`, overwritten with the outputs.
    ///   - state: `[dphi, dv]`; in S_0^T, out S_T^T.
    ///   - saved: `recurrentSavedCount(shape)` floats (the state at the start
    ///     of every segment of `SumRule.recurrentSegment(T)` steps) for the
    ///     backward, or nil when no backward follows.
    ///   - q, k: `[T, dphi]`; v: `[T, dv]`; beta: `[T]`.
    public static func recurrentForward(
        y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>,
        saved: UnsafeMutablePointer<Float>?,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, shape: SequenceShape
    ) {
        precondition(shape.T >= 1 && shape.dphi >= 1 && shape.dv >= 1, "DeltaRule.recurrentForward: bad shape \(shape)")
        FusedRecurrence.forward(y: y, state: state, saved: saved, q: q, k: k, v: v, beta: beta, g: nil, shape: shape)
    }

    /// Recurrent backward of the delta rule: exact gradients of
    /// `recurrentForward`, in reverse time, segment by segment. Each segment
    /// of `SumRule.recurrentSegment(T)` steps recomputes its states forward
    /// from the checkpoint the forward saved, so every state is bit for bit
    /// the forward's; memory is O(sqrt(T) d^2).
    ///
    /// (It used to undo the writes instead, S_{t-1}^T = S_t^T - k_t u_t^T:
    /// O(T d) memory, but each undone state carries the rounding of every
    /// later step, amplified by every step's I - beta k k^T. With elu1 keys
    /// and no normalisation, states about 1e5 at T = 7, dk was off by 5.7
    /// times docs/contract.md section 7's bound; issue 11 item 4.)
    ///
    /// Per step, with G = dL/dS_t^T accumulated so far (`FusedRecurrence`):
    /// ```
    /// G += q_t dy_t^T,               dq_t = S_t^T dy_t
    /// du_t = G^T k_t,                dk_t = G u_t
    /// dv_t = beta_t du_t,            dbeta_t = du_t . (v_t - vbar_t)
    /// dvbar = -beta_t du_t,          dk_t += S_{t-1}^T dvbar
    /// dL/dS_{t-1}^T = G + k_t dvbar^T
    /// ```
    ///
    /// - Parameters:
    ///   - dq, dk: `[T, dphi]`; dv: `[T, dv]`; dbeta: `[T]` — overwritten.
    ///   - dstate: `[dphi, dv]`; in dL/dS_T^T (zeros when none), out dL/dS_0^T.
    ///   - dy: `[T, dv]`.
    ///   - q, k, v, beta: the forward's inputs.
    ///   - saved: what `recurrentForward` saved (must not be nil).
    public static func recurrentBackward(
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
        dv: UnsafeMutablePointer<Float>, dbeta: UnsafeMutablePointer<Float>,
        dstate: UnsafeMutablePointer<Float>,
        dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        beta: UnsafePointer<Float>,
        saved: UnsafePointer<Float>?,
        shape: SequenceShape
    ) {
        precondition(shape.T >= 1 && shape.dphi >= 1 && shape.dv >= 1, "DeltaRule.recurrentBackward: bad shape \(shape)")
        guard saved != nil else { preconditionFailure("DeltaRule.recurrentBackward: saved is nil") }
        FusedRecurrence.backward(dq: dq, dk: dk, dv: dv, dbeta: dbeta, dg: nil, dstate: dstate, dy: dy,
                                 q: q, k: k, v: v, beta: beta, g: nil, saved: saved, shape: shape)
    }
}
