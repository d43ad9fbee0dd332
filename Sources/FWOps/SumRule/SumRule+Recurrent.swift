import FWCore

extension SumRule {
    /// Recurrent forward of the sum rule for one sequence, token by token
    /// (the shared `FusedRecurrence` with a_t = 1 and u_t = v_t: one fused
    /// SIMD sweep over the state per token, no BLAS call).
    ///
    /// ```
    /// S_t^T = S_{t-1}^T + k_t v_t^T
    /// y_t   = S_t q_t = S_{t-1} q_t + v_t (k_t . q_t)
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
        FusedRecurrence.forward(y: y, state: state, saved: saved, q: q, k: k, v: v, beta: nil, g: nil, shape: shape)
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
    /// for near-zero DPFP features, and that error grew to 1e-1 in dq.)
    ///
    /// With `G = dL/dS_t^T` (accumulated from later steps), per step
    /// (`FusedStep.backward`):
    ///
    /// ```
    /// G    += q_t dy_t^T       (the read y_t = S_t q_t)
    /// dq_t  = S_t^T dy_t = S_{t-1}^T dy_t + k_t (v_t . dy_t)
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
    ///   - saved: the forward's checkpoints (required).
    ///   - shape: `T`, `dphi`, `dv`.
    public static func recurrentBackward(
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
        dv: UnsafeMutablePointer<Float>,
        dstate: UnsafeMutablePointer<Float>,
        dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        saved: UnsafePointer<Float>?,
        shape: SequenceShape
    ) {
        check(shape)
        guard saved != nil else { preconditionFailure("SumRule.recurrentBackward: needs the forward's checkpoints") }
        FusedRecurrence.backward(dq: dq, dk: dk, dv: dv, dbeta: nil, dg: nil, dstate: dstate, dy: dy,
                                 q: q, k: k, v: v, beta: nil, g: nil, saved: saved, shape: shape)
    }
}
