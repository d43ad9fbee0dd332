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
// These are the shared chunk stages (Rules/ChunkStages.swift) without
// decay: the delta rule is the gated delta rule at g = 0, and both run the
// same code (`GatedDeltaRule.chunkedForward/Backward` with `g: nil`, which
// skips every decay factor).

extension DeltaRule {
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
        GatedDeltaRule.chunkedForward(y: y, state: state, saved: saved, q: q, k: k, v: v, beta: beta, g: nil,
                                      shape: shape, chunk: chunk)
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
    ///   - saved: what `chunkedForward` saved with the same `chunk` (not nil).
    ///   - chunk: the forward's chunk length.
    public static func chunkedBackward(
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
        dv: UnsafeMutablePointer<Float>, dbeta: UnsafeMutablePointer<Float>,
        dstate: UnsafeMutablePointer<Float>,
        dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        beta: UnsafePointer<Float>,
        saved: UnsafePointer<Float>?,
        shape: SequenceShape, chunk: Int
    ) {
        GatedDeltaRule.chunkedBackward(dq: dq, dk: dk, dv: dv, dbeta: dbeta, dg: nil, dstate: dstate, dy: dy,
                                       q: q, k: k, v: v, beta: beta, g: nil, saved: saved, shape: shape, chunk: chunk)
    }
}
