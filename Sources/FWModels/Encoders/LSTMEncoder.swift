import FWCore
import FWOps

/// A standard LSTM (forget gate, no peepholes) as an encoder, a baseline of
/// Ba et al. 2016, Table 1:
///
/// ```
/// [a_i, a_f, a_g, a_o] = U x_t + W h_{t-1} + b        W [4N, N], U [4N, Din], b [4N]
/// c_t = sigmoid(a_f) c_{t-1} + sigmoid(a_i) tanh(a_g),   h_t = sigmoid(a_o) tanh(c_t)
/// ```
///
/// Registers `<name>.W`, `<name>.U`, `<name>.b` with `LSTMParameters`'
/// initialisation (U(-1/sqrt(N), 1/sqrt(N)), forget bias 1). The op is `LSTM` (FWOps).
public struct LSTMEncoder: RecurrentEncoder {
    public let inputSize: Int
    public let hiddenSize: Int
    /// `W [4N, N]`, `U [4N, Din]`, `b [4N]`, gate blocks i, f, g, o.
    public let W: ParameterSlice, U: ParameterSlice, b: ParameterSlice

    /// Registers the parameters, drawn as `LSTMParameters(hidden:input:rng:forgetBias:)`.
    public init(input: Int, hidden: Int, name: String = "encoder", forgetBias: Float = 1,
                store: inout ParameterStore, rng: inout SeededRNG) {
        inputSize = input
        hiddenSize = hidden
        let p = LSTMParameters(hidden: hidden, input: input, rng: &rng, forgetBias: forgetBias)
        W = store.register("\(name).W", shape: p.W.shape, initializer: .values(p.W.storage))
        U = store.register("\(name).U", shape: p.U.shape, initializer: .values(p.U.storage))
        b = store.register("\(name).b", shape: p.b.shape, initializer: .values(p.b.storage))
    }

    /// The op's parameters, copied out of `store`.
    public func parameters(_ store: ParameterStore) -> LSTMParameters {
        LSTMParameters(W: store.tensor(W), U: store.tensor(U), b: store.tensor(b))
    }

    public func forward(_ x: Tensor, store: ParameterStore) throws -> (h: Tensor, cache: LSTMCache) {
        // Per-step products of a few rows: single-threaded OpenBLAS (threads only spin here).
        try ThreadOwnership.withBLASThreads(1) { try LSTM.forward(x: x, parameters: parameters(store)) }
    }

    public func backward(_ dh: Tensor, cache: LSTMCache, store: inout ParameterStore) throws -> Tensor {
        let grads = try ThreadOwnership.withBLASThreads(1) { try LSTM.backward(dh: dh, cache: cache) }
        try store.accumulateGradient(W, grads.dW)
        try store.accumulateGradient(U, grads.dU)
        try store.accumulateGradient(b, grads.db)
        return grads.dx
    }
}
