import FWCore

/// The delta rule fast weight programmer (Schlag et al. 2021) on one `(b, h)`
/// sequence: forward and backward kernels in two forms that compute the same
/// function (docs/contract.md section 4).
///
/// For t = 1..T, with S `[dv, dphi]` (S_0 given or zero):
///
/// ```
/// vbar_t = S_{t-1} k_t
/// S_t    = S_{t-1} + beta_t (v_t - vbar_t) k_t^T
/// y_t    = S_t q_t
/// ```
///
/// * **recurrent** (`DeltaRule+Recurrent.swift`, through the shared
///   `FusedRecurrence` with a_t = 1): token by token, one fused SIMD step
///   per token. The forward saves the state at the start of every segment of
///   ceil(sqrt(T)) steps and vbar_t `[T, dv]`; the backward
///   recomputes each segment's states from its checkpoint (never all T
///   states, O(sqrt(T) d^2) memory), so it sees exactly the forward's states.
/// * **chunked** (`DeltaRule+Chunked.swift`): the WY/UT form of Yang et al.
///   (2024); chunks of C steps become `sgemm`s and one triangular solve. The
///   forward saves the state at the start of every chunk and the corrected
///   values Unew; the backward recomputes the rest of the WY form per chunk. The derivation is in `DeltaRule.md`.
///
/// All pointers are raw row-major arrays of one sequence: `q`, `k` `[T, dphi]`
/// (already feature-mapped and normalised), `v` `[T, dv]`, `beta` `[T]`,
/// `y` `[T, dv]`; the state is kept transposed, S^T `[dphi, dv]` (see
/// `SequenceShape`). Kernels never start threads and allocate their scratch
/// once per call. Sizes and pointers are programmer contracts (checked with
/// `precondition`); the batched op validates user input before calling here.
public enum DeltaRule {
    /// Floats the recurrent forward saves for its backward: the state S^T at
    /// the start of every segment of `SumRule.recurrentSegment(T)` steps, as
    /// for the other rules, then vbar_t `[T, dv]` (the backward rebuilds u_t
    /// from it bit for bit instead of re-reading S^T k).
    public static func recurrentSavedCount(_ shape: SequenceShape) -> Int {
        FusedRecurrence.savedCount(shape, delta: true)
    }

    /// Floats the chunked forward saves for its backward: the state S^T at
    /// the start of every chunk (`chunkCount * dphi * dv`), then the corrected
    /// values Unew of every step (`T * dv`).
    public static func chunkedSavedCount(_ shape: SequenceShape, chunk: Int) -> Int {
        precondition(chunk >= 1, "DeltaRule.chunkedSavedCount: chunk \(chunk) < 1")
        return shape.chunkCount(chunk) * shape.stateCount + shape.T * shape.dv
    }

    /// Floating-point operations the recurrent form performs (multiply-add =
    /// 2): `backward: false` counts the forward, `true` forward + backward.
    ///
    /// Per step the forward does two reads and one rank-1 write of the state
    /// (6 dphi dv) and 2 dv for u_t = beta_t (v_t - vbar_t); the backward
    /// recomputes the write (4 dphi dv), then does five matrix-vector
    /// products and two rank-1 updates (14 dphi dv) and about 6 dv of vector work.
    public static func recurrentFlops(_ shape: SequenceShape, backward: Bool) -> Double {
        let t = Double(shape.T), dphi = Double(shape.dphi), dv = Double(shape.dv)
        let forward = t * (6 * dphi * dv + 2 * dv)
        let back = t * (18 * dphi * dv + 6 * dv)
        return backward ? forward + back : forward
    }

    /// Floating-point operations the chunked form performs (multiply-add = 2),
    /// including the upper triangles of `K K^T`, `Q K^T` and the masked
    /// `C x C` products it computes in full: `backward: false` counts the
    /// forward, `true` forward + backward (whose recomputation of the WY form
    /// is counted too). Element-wise work (scaling, masks, row sums) is
    /// counted as well; it is a few percent.
    public static func chunkedFlops(_ shape: SequenceShape, chunk: Int, backward: Bool) -> Double {
        precondition(chunk >= 1, "DeltaRule.chunkedFlops: chunk \(chunk) < 1")
        var total = 0.0
        var start = 0
        while start < shape.T {
            let c = min(chunk, shape.T - start)
            total += chunkFlops(c: Double(c), dphi: Double(shape.dphi), dv: Double(shape.dv), backward: backward)
            start += c
        }
        return total
    }

    /// Flops of one chunk of `c` rows (see `chunkedFlops`).
    static func chunkFlops(c: Double, dphi: Double, dv: Double, backward: Bool) -> Double {
        let n = dphi + dv
        // Prepare the WY form: G = K K^T (full), L = I + strict-lower(B G)
        // (c (c-1) / 2), B [K|V] (c n), the unit-lower solve for [W|U] (c (c-1) n).
        let prepare = 2 * c * c * dphi + c * (c - 1) / 2 + c * n + c * (c - 1) * n
        // Run the state: Unew = U - W S^T, S^T += K^T Unew.
        let state = 4 * c * dphi * dv
        // Outputs: Y = Q S^T + tril(Q K^T) Unew (full C x C products).
        let outputs = 2 * c * dphi * dv + 2 * c * c * dphi + 2 * c * c * dv
        let forward = prepare + state + outputs
        if !backward { return forward }
        // Backward = the forward's prepare and P again (Unew is saved), then:
        let recompute = prepare + 2 * c * c * dphi
        let back =
            2 * c * c * dv + 2 * c * dphi * dv      // dUnew = P^T dY + K dS^T_out
            + 2 * c * dphi * dv                     // dK = Unew dS^T_out^T
            + 2 * c * c * dv                        // dP = tril(dY Unew^T)
            + 2 * c * c * dphi + 2 * c * dphi * dv  // dQ = dP K + dY S_in
            + 2 * c * c * dphi                      // dK += dP^T Q
            + 4 * c * dphi * dv                     // dS^T_in = dS^T_out + Q^T dY - W^T dUnew
            + 2 * c * dphi * dv                     // dW = -dUnew S_in
            + c * (c - 1) * n                       // [dXk|dXv] = L^{-T} [dW|dU]
            + 4 * c * n                             // dV, dbeta, dK += B dXk
            + 2 * c * c * n + 3 * c * (c - 1) / 2   // dA = -strict-lower([dXk|dXv] [W|U]^T), dbeta
            + 2 * c * c * dphi                      // dK += (B dA + (B dA)^T) K
        return forward + recompute + back
    }
}
