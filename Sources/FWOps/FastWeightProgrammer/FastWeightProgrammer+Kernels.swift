import FWCore

/// Dispatch from (rule, algorithm) to the per-sequence kernels in
/// `SumRule/` and `DeltaRule/`.
extension FastWeightProgrammer {
    /// Floats a kernel saves per sequence for its backward.
    static func savedCount(rule: FastWeightRule, algorithm: FWPAlgorithm, shape: SequenceShape) -> Int {
        switch (rule, algorithm) {
        case (.sum, .recurrent): return SumRule.recurrentSavedCount(shape)
        case let (.sum, .chunked(c)): return SumRule.chunkedSavedCount(shape, chunk: c)
        case (.delta, .recurrent): return DeltaRule.recurrentSavedCount(shape)
        case let (.delta, .chunked(c)): return DeltaRule.chunkedSavedCount(shape, chunk: c)
        }
    }

    /// Floating-point operations of one sequence (forward, or forward + backward).
    public static func flops(rule: FastWeightRule, algorithm: FWPAlgorithm, shape: SequenceShape,
                             backward: Bool) -> Double {
        switch (rule, algorithm) {
        case (.sum, .recurrent): return SumRule.recurrentFlops(shape, backward: backward)
        case let (.sum, .chunked(c)): return SumRule.chunkedFlops(shape, chunk: c, backward: backward)
        case (.delta, .recurrent): return DeltaRule.recurrentFlops(shape, backward: backward)
        case let (.delta, .chunked(c)): return DeltaRule.chunkedFlops(shape, chunk: c, backward: backward)
        }
    }

    static func kernelForward(
        rule: FastWeightRule, algorithm: FWPAlgorithm,
        y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>, saved: UnsafeMutablePointer<Float>?,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, beta: UnsafePointer<Float>?,
        shape: SequenceShape
    ) {
        switch (rule, algorithm) {
        case (.sum, .recurrent):
            SumRule.recurrentForward(y: y, state: state, saved: saved, q: q, k: k, v: v, shape: shape)
        case let (.sum, .chunked(c)):
            SumRule.chunkedForward(y: y, state: state, saved: saved, q: q, k: k, v: v, shape: shape, chunk: c)
        case (.delta, .recurrent):
            DeltaRule.recurrentForward(y: y, state: state, saved: saved, q: q, k: k, v: v, beta: beta!, shape: shape)
        case let (.delta, .chunked(c)):
            DeltaRule.chunkedForward(y: y, state: state, saved: saved, q: q, k: k, v: v, beta: beta!,
                                     shape: shape, chunk: c)
        }
    }

    static func kernelBackward(
        rule: FastWeightRule, algorithm: FWPAlgorithm,
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        dbeta: UnsafeMutablePointer<Float>?, dstate: UnsafeMutablePointer<Float>,
        dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, beta: UnsafePointer<Float>?,
        finalState: UnsafePointer<Float>, saved: UnsafePointer<Float>?, shape: SequenceShape
    ) {
        switch (rule, algorithm) {
        case (.sum, .recurrent):
            SumRule.recurrentBackward(dq: dq, dk: dk, dv: dv, dstate: dstate, dy: dy, q: q, k: k, v: v,
                                      finalState: finalState, saved: saved, shape: shape)
        case let (.sum, .chunked(c)):
            SumRule.chunkedBackward(dq: dq, dk: dk, dv: dv, dstate: dstate, dy: dy, q: q, k: k, v: v,
                                    finalState: finalState, saved: saved, shape: shape, chunk: c)
        case (.delta, .recurrent):
            DeltaRule.recurrentBackward(dq: dq, dk: dk, dv: dv, dbeta: dbeta!, dstate: dstate, dy: dy,
                                        q: q, k: k, v: v, beta: beta!, finalState: finalState, saved: saved,
                                        shape: shape)
        case let (.delta, .chunked(c)):
            DeltaRule.chunkedBackward(dq: dq, dk: dk, dv: dv, dbeta: dbeta!, dstate: dstate, dy: dy,
                                      q: q, k: k, v: v, beta: beta!, finalState: finalState, saved: saved,
                                      shape: shape, chunk: c)
        }
    }
}
