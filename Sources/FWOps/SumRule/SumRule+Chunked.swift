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
        // The shared chunk stages without decay (the sum rule is the gated sum rule at g = 0).
        GatedSumRule.chunkedForward(y: y, state: state, saved: saved, q: q, k: k, v: v, g: nil,
                                    shape: shape, chunk: chunk)
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
    ///   - saved: what `chunkedForward` saved with the same `chunk` (required).
    ///   - shape: `T`, `dphi`, `dv`.
    ///   - chunk: the forward's chunk length.
    public static func chunkedBackward(
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
        dv: UnsafeMutablePointer<Float>,
        dstate: UnsafeMutablePointer<Float>,
        dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        saved: UnsafePointer<Float>?,
        shape: SequenceShape, chunk: Int
    ) {
        check(shape, chunk: chunk)
        GatedSumRule.chunkedBackward(dq: dq, dk: dk, dv: dv, dg: nil, dstate: dstate, dy: dy, q: q, k: k, v: v, g: nil,
                                     saved: saved, shape: shape, chunk: chunk)
    }
}
