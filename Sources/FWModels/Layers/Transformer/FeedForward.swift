import FWCore

/// The position-wise feed-forward network of a Transformer block, applied
/// to every row of `x [..., D]` independently:
///
/// ```
/// z = x W1^T + b1          W1 [F, D], b1 [F]        "<name>.up.weight", "<name>.up.bias"
/// a = relu(z)              [..., F]
/// y = a W2^T + b2          W2 [D, F], b2 [D]        "<name>.down.weight", "<name>.down.bias"
/// ```
///
/// Backward, in the reverse order (parameter gradients accumulate):
///
/// ```
/// da = dy W2,   dW2 += dy^T a,   db2 += sum_rows dy
/// dz = da * (a > 0)
/// dx = dz W1,   dW1 += dz^T x,   db1 += sum_rows dz
/// ```
public struct FeedForward: Sendable {
    /// Width D of an input and output row.
    public let modelSize: Int
    /// Width F of the hidden layer.
    public let hiddenSize: Int
    /// `D -> F`, named `<name>.up`.
    public let up: Linear
    /// `F -> D`, named `<name>.down`.
    public let down: Linear

    /// Registers `<name>.up` (`[F, D]` weight, `[F]` bias) then `<name>.down`
    /// (`[D, F]`, `[D]`) in `store`: weights `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`,
    /// biases zero (`Linear`'s defaults).
    public init(_ modelSize: Int, _ hiddenSize: Int, name: String,
                store: inout ParameterStore, rng: inout SeededRNG) {
        precondition(modelSize > 0 && hiddenSize > 0,
                     "FeedForward: sizes must be positive, got \(modelSize) -> \(hiddenSize)")
        self.modelSize = modelSize
        self.hiddenSize = hiddenSize
        up = Linear(modelSize, hiddenSize, name: "\(name).up", store: &store, rng: &rng)
        down = Linear(hiddenSize, modelSize, name: "\(name).down", store: &store, rng: &rng)
    }

    /// What the backward needs: the input and the hidden activations.
    public struct Cache: Sendable {
        /// The forward's input `x [..., D]`.
        public let input: Tensor
        /// `a = relu(x W1^T + b1)`, `[..., F]`.
        public let hidden: Tensor
    }

    /// `y [..., D] = relu(x W1^T + b1) W2^T + b2` for `x [..., D]`.
    ///
    /// - Throws: `FWError.shapeMismatch` naming `FeedForward x` unless the last axis is D.
    public func forward(_ x: Tensor, store: ParameterStore) throws -> (y: Tensor, cache: Cache) {
        try checkRows(x, "FeedForward x")
        let z = try up(x, store)
        let a = ActivationFunction.relu(z)
        let y = try down(a, store)
        return (y, Cache(input: x, hidden: a))
    }

    /// Accumulates dW1, db1, dW2, db2 into `store.gradients` and returns `dx [..., D]`.
    ///
    /// - Throws: `FWError.shapeMismatch` naming `FeedForward dy` unless `dy` has the input's shape.
    public func backward(_ dy: Tensor, cache: Cache, store: inout ParameterStore) throws -> Tensor {
        try dy.checkShape("FeedForward dy", cache.input.shape)
        let da = try down.backward(dy, input: cache.hidden, store: &store)       // [..., F]
        let dz = try ActivationFunction.relu.backward(da, output: cache.hidden)  // through relu
        return try up.backward(dz, input: cache.input, store: &store)            // [..., D]
    }

    private func checkRows(_ x: Tensor, _ name: String) throws {
        guard x.rank >= 1, x.shape.last == modelSize else {
            throw FWError.shapeMismatch(tensor: name, expected: "[..., \(modelSize)]", got: x.shape)
        }
    }
}
