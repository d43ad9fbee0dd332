import FWCore
import FWOps

/// The fast-weights RNN of Ba et al. 2016 (docs/contract.md section 5) as an encoder,
/// its slow parameters in a `ParameterStore`:
///
/// ```
/// z_t     = W h_{t-1} + C x_t + b                     W [N, N], C [N, Din], b [N]
/// h_t^(0) = f(z_t)
/// h_t^(s) = f(LN(z_t + A_{t-1} h_t^(s-1)))            s = 1..S, LN gain g [N], bias c [N]
/// A_t     = lambda A_{t-1} + eta h_t h_t^T
/// ```
///
/// Registers `<name>.W`, `<name>.C`, `<name>.b`, `<name>.g`, `<name>.c` (in
/// that order). The paper's setting is the default: lambda 0.95, eta 0.5,
/// S = 1, layer norm, ReLU. The op is `FastWeightsRNN` (FWOps).
public struct FastWeightsEncoder: RecurrentEncoder {
    /// How the recurrent matrix W starts.
    public enum RecurrentInitialization: Sendable, Equatable {
        /// W ~ N(0, 1/N) (docs/contract.md section 7's test distribution).
        case normal
        /// W = scale * I (an IRNN-style start; the paper's A.1 is not explicit for this task).
        case scaledIdentity(Float)
    }

    public let inputSize: Int
    public let hiddenSize: Int
    /// lambda, eta, S and f.
    public let config: FastWeightsRNNConfig
    /// Which form of the op runs (both compute the same function).
    public let algorithm: FastWeightsRNNAlgorithm
    /// `W [N, N]`, `C [N, Din]`, `b [N]`, layer-norm gain `g [N]` and bias `c [N]`.
    public let W: ParameterSlice, C: ParameterSlice, b: ParameterSlice, g: ParameterSlice, c: ParameterSlice

    /// Registers the slow parameters: W (see `recurrentInitialization`), C ~ N(0, 1/Din),
    /// b = 0, g = 1, c = 0. Draws W first (when random), then C.
    public init(input: Int, hidden: Int, name: String = "encoder",
                config: FastWeightsRNNConfig = FastWeightsRNNConfig(),
                algorithm: FastWeightsRNNAlgorithm = .explicit,
                recurrentInitialization: RecurrentInitialization = .normal,
                store: inout ParameterStore, rng: inout SeededRNG) {
        precondition(input >= 1 && hidden >= 1, "FastWeightsEncoder: input \(input), hidden \(hidden)")
        inputSize = input
        hiddenSize = hidden
        self.config = config
        self.algorithm = algorithm
        switch recurrentInitialization {
        case .normal:
            W = store.register("\(name).W", shape: [hidden, hidden],
                               initializer: .normal(std: 1 / Float(hidden).squareRoot()), rng: &rng)
        case let .scaledIdentity(scale):
            var eye = [Float](repeating: 0, count: hidden * hidden)
            for i in 0..<hidden { eye[i * hidden + i] = scale }
            W = store.register("\(name).W", shape: [hidden, hidden], initializer: .values(eye))
        }
        C = store.register("\(name).C", shape: [hidden, input],
                           initializer: .normal(std: 1 / Float(input).squareRoot()), rng: &rng)
        b = store.register("\(name).b", shape: [hidden], initializer: .zeros)
        g = store.register("\(name).g", shape: [hidden], initializer: .ones)
        c = store.register("\(name).c", shape: [hidden], initializer: .zeros)
    }

    /// The op's parameters, copied out of `store`.
    public func parameters(_ store: ParameterStore) -> FastWeightsRNNParameters {
        FastWeightsRNNParameters(W: store.tensor(W), C: store.tensor(C), b: store.tensor(b),
                                 g: store.tensor(g), c: store.tensor(c))
    }

    public func forward(_ x: Tensor, store: ParameterStore) throws -> (h: Tensor, cache: FastWeightsRNNCache) {
        try FastWeightsRNN.forward(x: x, parameters: parameters(store), config: config, algorithm: algorithm)
    }

    public func backward(_ dh: Tensor, cache: FastWeightsRNNCache, store: inout ParameterStore) throws -> Tensor {
        let grads = try FastWeightsRNN.backward(dh: dh, cache: cache)
        try store.accumulateGradient(W, grads.dW)
        try store.accumulateGradient(C, grads.dC)
        try store.accumulateGradient(b, grads.db)
        try store.accumulateGradient(g, grads.dg)
        try store.accumulateGradient(c, grads.dc)
        return grads.dx
    }
}
