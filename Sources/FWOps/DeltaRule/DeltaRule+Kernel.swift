import FWCore

/// The delta rule as a rule of the batched op (registry: `FastWeightRule.delta`).
extension DeltaRule: FastWeightRuleKernel {
    public static var gates: [FWPGate] { [.beta] }

    /// Recurrent (the fused step) up to 16 x 16 states, chunked above (the
    /// numbers: `FastWeightProgrammer+Algorithm.swift`).
    public static func automaticAlgorithm(T: Int, dphi: Int, dv: Int) -> FWPAlgorithm {
        FastWeightProgrammer.recurrentWhenSmall(dphi: dphi, dv: dv)
    }

    public static func savedCount(_ algorithm: FWPAlgorithm, _ shape: SequenceShape) -> Int {
        switch algorithm {
        case .recurrent: return recurrentSavedCount(shape)
        case let .chunked(c): return chunkedSavedCount(shape, chunk: c)
        }
    }

    public static func flops(_ algorithm: FWPAlgorithm, _ shape: SequenceShape, backward: Bool) -> Double {
        switch algorithm {
        case .recurrent: return recurrentFlops(shape, backward: backward)
        case let .chunked(c): return chunkedFlops(shape, chunk: c, backward: backward)
        }
    }

    public static func forward(
        _ algorithm: FWPAlgorithm,
        y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>, saved: UnsafeMutablePointer<Float>?,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, gates: GatePointers,
        shape: SequenceShape
    ) {
        guard let beta = gates.beta else { preconditionFailure("DeltaRule: no beta") }
        switch algorithm {
        case .recurrent:
            recurrentForward(y: y, state: state, saved: saved, q: q, k: k, v: v, beta: beta, shape: shape)
        case let .chunked(c):
            chunkedForward(y: y, state: state, saved: saved, q: q, k: k, v: v, beta: beta, shape: shape, chunk: c)
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
        guard let beta = gates.beta, let dbeta = dgates.beta else { preconditionFailure("DeltaRule: no beta") }
        switch algorithm {
        case .recurrent:
            recurrentBackward(dq: dq, dk: dk, dv: dv, dbeta: dbeta, dstate: dstate, dy: dy, q: q, k: k, v: v,
                              beta: beta, saved: saved, shape: shape)
        case let .chunked(c):
            chunkedBackward(dq: dq, dk: dk, dv: dv, dbeta: dbeta, dstate: dstate, dy: dy, q: q, k: k, v: v,
                            beta: beta, saved: saved, shape: shape, chunk: c)
        }
    }
}

/// The team form of its chunked kernel (`Rules/TeamChunked.swift`).
extension DeltaRule: TeamChunkedRuleKernel {}
