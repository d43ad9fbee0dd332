import FWCore

/// How a parameter's values are drawn when it is registered in a `ParameterStore`.
///
/// Random initialisers draw from the `SeededRNG` passed to `register`, in
/// row-major order, so a store built twice from the same seed is identical.
public enum ParameterInitializer: Sendable, Equatable {
    /// All zeros (biases, layer-norm shifts).
    case zeros
    /// All ones (layer-norm gains).
    case ones
    /// Every entry `value`.
    case constant(Float)
    /// Independent `N(0, std^2)` entries.
    case normal(std: Float)
    /// Independent `U(low, high)` entries.
    case uniform(low: Float, high: Float)
    /// `U(-1/sqrt(fanIn), 1/sqrt(fanIn))`, `fanIn` = the last axis (PyTorch's
    /// default for `nn.Linear` weights `[out, in]`).
    case uniformFanIn
    /// Exactly these values (row-major); the count must match the shape
    /// (for initialisers computed elsewhere, e.g. orthogonal matrices).
    case values([Float])

    /// Fills `out[0..<count]` for a parameter of `shape`.
    func fill(_ out: UnsafeMutablePointer<Float>, shape: [Int], rng: inout SeededRNG) {
        let count = shape.reduce(1, *)
        switch self {
        case .zeros:
            for i in 0..<count { out[i] = 0 }
        case .ones:
            for i in 0..<count { out[i] = 1 }
        case let .constant(value):
            for i in 0..<count { out[i] = value }
        case let .normal(std):
            for i in 0..<count { out[i] = std * rng.normal() }
        case let .uniform(low, high):
            for i in 0..<count { out[i] = low + (high - low) * rng.uniform() }
        case .uniformFanIn:
            let fanIn = max(1, shape.last ?? 1)
            let bound = 1 / Float(fanIn).squareRoot()
            for i in 0..<count { out[i] = -bound + 2 * bound * rng.uniform() }
        case let .values(values):
            precondition(values.count == count,
                         "ParameterInitializer.values: \(values.count) values for shape \(describeShape(shape))")
            for i in 0..<count { out[i] = values[i] }
        }
    }
}
