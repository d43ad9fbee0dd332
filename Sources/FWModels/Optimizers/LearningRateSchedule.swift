#if canImport(Glibc)
import Glibc
#endif

/// A learning rate as a function of the step, scaling a base rate.
///
/// `step` counts updates already taken: 0 for the first update (llm.c's
/// convention), so `rate(base:step:)` is called with `adam.step` before
/// `adam.update`.
///
/// ```
/// constant                      base
/// linearWarmup(W)               base * min(1, (step + 1) / W)
/// cosine(W, T, minFactor)       warm-up as above for step < W, then
///                               base * (f + (1 - f) * 0.5 * (1 + cos(pi * r))),
///                               r = min(1, (step - W) / (T - W)), f = minFactor
/// step(every: k, factor: g)     base * g^floor(step / k)
/// ```
public enum LearningRateSchedule: Sendable, Equatable {
    /// The base rate at every step.
    case constant
    /// Linear ramp from `base / steps` to `base` over the first `steps` updates, then constant.
    case linearWarmup(steps: Int)
    /// Linear warm-up over `warmupSteps`, then cosine decay to `minFactor * base`
    /// at `totalSteps` (and held there after).
    case cosine(warmupSteps: Int, totalSteps: Int, minFactor: Float)
    /// Multiplies the rate by `factor` every `every` updates.
    case step(every: Int, factor: Float)

    /// The rate for update number `step` (0-based) with base rate `base`.
    public func rate(base: Float, step: Int) -> Float {
        switch self {
        case .constant:
            return base
        case let .linearWarmup(w):
            if w <= 0 || step >= w { return base }
            return base * Float(step + 1) / Float(w)
        case let .cosine(w, total, minFactor):
            if w > 0 && step < w { return base * Float(step + 1) / Float(w) }
            let span = total - w
            let r = span <= 0 ? 1 : min(1, Double(step - w) / Double(span))
            let coefficient = 0.5 * (1 + cos(Double.pi * r))
            return base * (minFactor + (1 - minFactor) * Float(coefficient))
        case let .step(every, factor):
            if every <= 0 { return base }
            return base * Float(pow(Double(factor), Double(step / every)))
        }
    }
}
