import FWCore

/// The gated delta rule (Gated DeltaNet, Yang et al. 2025) on one `(b, h)`
/// sequence (docs/contract.md section 4b), a_t = exp(g_t), g_t <= 0:
///
/// ```
/// vbar_t = a_t S_{t-1} k_t,   S_t = a_t S_{t-1} + beta_t (v_t - vbar_t) k_t^T,   y_t = S_t q_t
/// ```
///
/// * **recurrent**: `FusedRecurrence` (token by token; the backward
///   recomputes sqrt(T)-step segments from checkpoints).
/// * **chunked** (`GatedDeltaRule+Chunked.swift`): the decay-weighted WY
///   form from the shared `ChunkStages`: `A = strict-lower(diag(beta) (K K^T o Gam))`,
///   `[W | U] = (I + A)^{-1} diag(beta) [diag(e^G) K | V]`, `Unew = U - W S^T`,
///   `Y = diag(e^G) Q S^T + (tril(Q K^T) o Gam) Unew`,
///   `S^T <- e^{G_C} S^T + K^T diag(e^{G_C - G}) Unew`. The forward saves the
///   chunk-start states and Unew.
///
/// Derivation: `GatedRules.md`.
public enum GatedDeltaRule: FastWeightRuleKernel {
    public static var gates: [FWPGate] { [.beta, .g] }

    /// Recurrent (the fused step) up to 16 x 16 states, chunked above (the
    /// numbers: `FastWeightProgrammer+Algorithm.swift`).
    public static func automaticAlgorithm(T: Int, dphi: Int, dv: Int) -> FWPAlgorithm {
        FastWeightProgrammer.recurrentWhenSmall(dphi: dphi, dv: dv)
    }

    public static func savedCount(_ algorithm: FWPAlgorithm, _ shape: SequenceShape) -> Int {
        switch algorithm {
        case .recurrent: return FusedRecurrence.savedCount(shape, delta: true)
        case let .chunked(c): return DeltaRule.chunkedSavedCount(shape, chunk: c)
        }
    }

    public static func flops(_ algorithm: FWPAlgorithm, _ shape: SequenceShape, backward: Bool) -> Double {
        switch algorithm {
        case .recurrent: return FusedRecurrence.flops(shape, delta: true, gated: true, backward: backward)
        case let .chunked(c): return DeltaRule.chunkedFlops(shape, chunk: c, backward: backward)
        }
    }

    public static func forward(
        _ algorithm: FWPAlgorithm,
        y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>, saved: UnsafeMutablePointer<Float>?,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, gates: GatePointers,
        shape: SequenceShape
    ) {
        guard let beta = gates.beta, let g = gates.g else { preconditionFailure("GatedDeltaRule: no beta or g") }
        switch algorithm {
        case .recurrent:
            FusedRecurrence.forward(y: y, state: state, saved: saved, q: q, k: k, v: v, beta: beta, g: g, shape: shape)
        case let .chunked(c):
            chunkedForward(y: y, state: state, saved: saved, q: q, k: k, v: v, beta: beta, g: g, shape: shape, chunk: c)
        }
    }

    public static func backward(
        _ algorithm: FWPAlgorithm,
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        dgates: GateGradientPointers, dstate: UnsafeMutablePointer<Float>,
        dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, gates: GatePointers,
        saved: UnsafePointer<Float>?, shape: SequenceShape
    ) {
        guard let beta = gates.beta, let g = gates.g, let dbeta = dgates.beta, let dg = dgates.g else {
            preconditionFailure("GatedDeltaRule: no beta or g")
        }
        switch algorithm {
        case .recurrent:
            FusedRecurrence.backward(dq: dq, dk: dk, dv: dv, dbeta: dbeta, dg: dg, dstate: dstate, dy: dy,
                                     q: q, k: k, v: v, beta: beta, g: g, saved: saved, shape: shape)
        case let .chunked(c):
            chunkedBackward(dq: dq, dk: dk, dv: dv, dbeta: dbeta, dg: dg, dstate: dstate, dy: dy,
                            q: q, k: k, v: v, beta: beta, g: g, saved: saved, shape: shape, chunk: c)
        }
    }
}

/// The team form of its chunked kernel (`Rules/TeamChunked.swift`).
extension GatedDeltaRule: TeamChunkedRuleKernel {}
