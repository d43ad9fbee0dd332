import FWCore

/// The sum rule (linear attention) kernels for one `(b, h)` sequence
/// (docs/contract.md section 4):
///
/// ```
/// S_t = S_{t-1} + v_t k_t^T        S: [dv, dphi]
/// y_t = S_t q_t                    (the query reads the state after step t's write)
/// ```
///
/// `q`, `k` are the already feature-mapped and normalised `[T, dphi]` rows,
/// `v` and `y` are `[T, dv]`; every pointer is row-major. The state is held
/// transposed, `P = S^T` `[dphi, dv]` (see `SequenceShape`), so the update is
/// `P += k_t v_t^T` and the read is `y_t = P^T q_t`.
///
/// Two forms compute the same function:
///
/// * **recurrent** (`SumRule+Recurrent.swift`): token by token, one fused
///   SIMD read-and-write sweep over the state per token (the shared
///   `Rules/FusedRecurrence.swift`, no BLAS call per token); its backward recomputes each segment of
///   ceil(sqrt(T)) states from a checkpoint (O(sqrt(T) d^2) memory, never all
///   T states; see `SumRule.md` for why not reversing the updates).
/// * **chunked** (`SumRule+Chunked.swift`): chunks of `C` steps,
///   `Y_c = Q_c P + tril(Q_c K_c^T) V_c`, `P += K_c^T V_c`, every product an
///   `sgemm`; the forward saves the state at the start of every chunk and the
///   backward walks the chunks in reverse carrying `dL/dP`.
///
/// The derivation of the chunked forward and backward is in `SumRule.md`.
/// The attention denominator is not handled here: the batched op appends a
/// ones column to `v` and divides afterwards.
///
/// Kernels never start threads and allocate their scratch once per call.
/// Outputs are overwritten (never accumulated) and must not alias inputs.
public enum SumRule {
    /// Floats `recurrentForward` saves for `recurrentBackward`: the state at
    /// the start of every segment of `recurrentSegment(T)` steps.
    public static func recurrentSavedCount(_ shape: SequenceShape) -> Int {
        ((shape.T + recurrentSegment(shape.T) - 1) / recurrentSegment(shape.T)) * shape.stateCount
    }

    /// Steps per checkpointed segment of the recurrent backward: ceil(sqrt(T)),
    /// so checkpoints and one segment's recomputed states both hold about
    /// sqrt(T) states.
    public static func recurrentSegment(_ T: Int) -> Int {
        max(1, Int(Double(max(T, 1)).squareRoot().rounded(.up)))
    }

    /// Floats `chunkedForward` saves for `chunkedBackward`: the state `S^T`
    /// `[dphi, dv]` at the start of every chunk, `chunkCount(chunk) * dphi * dv`.
    public static func chunkedSavedCount(_ shape: SequenceShape, chunk: Int) -> Int {
        precondition(chunk >= 1, "SumRule: chunk \(chunk) < 1")
        return shape.chunkCount(chunk) * shape.stateCount
    }

    /// Floating-point operations of the recurrent form (multiply-add = 2).
    ///
    /// The nominal count of the math (the fused kernel does about this):
    /// forward, per step: the write (2 dphi dv) and the read (2 dphi dv).
    /// Backward, per step: the read's adjoint, dq, dk, dv (8 dphi dv) and
    /// the recomputed write: 12 dphi dv.
    /// - Parameter backward: false: forward only; true: forward + backward.
    public static func recurrentFlops(_ shape: SequenceShape, backward: Bool) -> Double {
        let T = Double(shape.T), dd = Double(shape.dphi * shape.dv)
        let forward = 4 * dd * T
        // Backward: 5 rank-1/matrix-vector products per step plus the recomputed write.
        return backward ? forward + 12 * dd * T : forward
    }

    /// Floating-point operations of the chunked form (multiply-add = 2),
    /// counting the masked-out upper triangles, which the `sgemm`s compute.
    ///
    /// Per chunk of `L` steps: forward `Q P`, `Q K^T`, `A V`, `K^T V`:
    /// `2 (2 L dphi dv + L^2 dphi + L^2 dv)`; backward `dY P0^T`, `dY V^T`,
    /// `G K`, `G^T Q`, `V dP^T`, `Q K^T`, `A^T dY`, `K dP`, `Q^T dY`:
    /// `2 (4 L dphi dv + 3 L^2 dphi + 2 L^2 dv)`.
    /// - Parameter backward: false: forward only; true: forward + backward.
    public static func chunkedFlops(_ shape: SequenceShape, chunk: Int, backward: Bool) -> Double {
        precondition(chunk >= 1, "SumRule: chunk \(chunk) < 1")
        let dphi = Double(shape.dphi), dv = Double(shape.dv)
        var total = 0.0
        var t0 = 0
        while t0 < shape.T {
            let L = Double(min(chunk, shape.T - t0))
            total += 2 * (2 * L * dphi * dv + L * L * dphi + L * L * dv)
            if backward { total += 2 * (4 * L * dphi * dv + 3 * L * L * dphi + 2 * L * L * dv) }
            t0 += chunk
        }
        return total
    }

    /// Programmer-error checks shared by every kernel.
    @inline(__always)
    static func check(_ shape: SequenceShape, chunk: Int = 1) {
        precondition(shape.T >= 1 && shape.dphi >= 1 && shape.dv >= 1,
                     "SumRule: invalid shape T=\(shape.T) dphi=\(shape.dphi) dv=\(shape.dv)")
        precondition(chunk >= 1, "SumRule: chunk \(chunk) < 1")
    }
}
