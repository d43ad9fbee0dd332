import FWCore

/// The sum rule as a rule of the batched op (registry: `FastWeightRule.sum`).
extension SumRule: FastWeightRuleKernel {
    public static var gates: [FWPGate] { [] }
    public static var allowsDenominator: Bool { true }

    /// With 256-bit vectors (FWP_WIDE_SIMD) recurrent up to
    /// `recurrentMaxStateSize` entries (the fused step), else chunked; the
    /// portable build's fused step lost to chunked at 16 x 16 (0.84x), so it
    /// stays chunked there. See `FastWeightProgrammer.automaticAlgorithm`.
    public static func automaticAlgorithm(T: Int, dphi: Int, dv: Int) -> FWPAlgorithm {
        #if FWP_WIDE_SIMD
        FastWeightProgrammer.recurrentWhenSmall(dphi: dphi, dv: dv)
        #else
        .chunked(size: FastWeightProgrammer.automaticChunk)
        #endif
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
        switch algorithm {
        case .recurrent:
            recurrentForward(y: y, state: state, saved: saved, q: q, k: k, v: v, shape: shape)
        case let .chunked(c):
            chunkedForward(y: y, state: state, saved: saved, q: q, k: k, v: v, shape: shape, chunk: c)
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
        switch algorithm {
        case .recurrent:
            recurrentBackward(dq: dq, dk: dk, dv: dv, dstate: dstate, dy: dy, q: q, k: k, v: v,
                              saved: saved, shape: shape)
        case let .chunked(c):
            chunkedBackward(dq: dq, dk: dk, dv: dv, dstate: dstate, dy: dy, q: q, k: k, v: v,
                            saved: saved, shape: shape, chunk: c)
        }
    }
}

/// The team form of its chunked kernel (`Rules/TeamChunked.swift`).
extension SumRule: TeamChunkedRuleKernel {}
