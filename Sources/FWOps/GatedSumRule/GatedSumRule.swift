import FWCore

/// The gated sum rule (decayed linear attention: RetNet, GLA with a scalar
/// gate) on one `(b, h)` sequence (docs/contract.md section 4b), a_t = exp(g_t), g_t <= 0:
///
/// ```
/// S_t = a_t S_{t-1} + v_t k_t^T,   y_t = S_t q_t
/// ```
///
/// * **recurrent**: `FusedRecurrence` (token by token; the backward
///   recomputes sqrt(T)-step segments from checkpoints).
/// * **chunked** (`GatedSumRule+Chunked.swift`): with G the in-chunk
///   cumulative log-decays, `Y = diag(e^G) Q S^T + (tril(Q K^T) o Gam) V`,
///   `S^T <- e^{G_C} S^T + K^T diag(e^{G_C - G}) V`, from the shared
///   `ChunkStages`; the forward saves the chunk-start states.
///
/// Derivation: `GatedDeltaRule/GatedRules.md`.
public enum GatedSumRule: FastWeightRuleKernel {
    public static var gates: [FWPGate] { [.g] }

    /// Recurrent (the fused step) up to 16 x 16 states, chunked above (the
    /// numbers: `FastWeightProgrammer+Algorithm.swift`).
    public static func automaticAlgorithm(T: Int, dphi: Int, dv: Int) -> FWPAlgorithm {
        FastWeightProgrammer.recurrentWhenSmall(dphi: dphi, dv: dv)
    }

    public static func savedCount(_ algorithm: FWPAlgorithm, _ shape: SequenceShape) -> Int {
        switch algorithm {
        case .recurrent: return FusedRecurrence.savedCount(shape, delta: false)
        case let .chunked(c): return shape.chunkCount(c) * shape.stateCount
        }
    }

    public static func flops(_ algorithm: FWPAlgorithm, _ shape: SequenceShape, backward: Bool) -> Double {
        switch algorithm {
        case .recurrent: return FusedRecurrence.flops(shape, delta: false, gated: true, backward: backward)
        case let .chunked(c): return SumRule.chunkedFlops(shape, chunk: c, backward: backward)
        }
    }

    public static func forward(
        _ algorithm: FWPAlgorithm,
        y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>, saved: UnsafeMutablePointer<Float>?,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, gates: GatePointers,
        shape: SequenceShape
    ) {
        guard let g = gates.g else { preconditionFailure("GatedSumRule: no g") }
        switch algorithm {
        case .recurrent:
            FusedRecurrence.forward(y: y, state: state, saved: saved, q: q, k: k, v: v, beta: nil, g: g, shape: shape)
        case let .chunked(c):
            chunkedForward(y: y, state: state, saved: saved, q: q, k: k, v: v, g: g, shape: shape, chunk: c)
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
        guard let g = gates.g, let dg = dgates.g else { preconditionFailure("GatedSumRule: no g") }
        switch algorithm {
        case .recurrent:
            FusedRecurrence.backward(dq: dq, dk: dk, dv: dv, dbeta: nil, dg: dg, dstate: dstate, dy: dy,
                                     q: q, k: k, v: v, beta: nil, g: g, saved: saved, shape: shape)
        case let .chunked(c):
            chunkedBackward(dq: dq, dk: dk, dv: dv, dg: dg, dstate: dstate, dy: dy, q: q, k: k, v: v, g: g,
                            saved: saved, shape: shape, chunk: c)
        }
    }
}

/// The team form of its chunked kernel (`Rules/TeamChunked.swift`).
extension GatedSumRule: TeamChunkedRuleKernel {}
