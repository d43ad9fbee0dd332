import FWCore
import FWOps

/// The IRNN (Le, Jaitly & Hinton 2015) as an encoder, a baseline of Ba et al.
/// 2016, Table 1:
///
/// ```
/// h_t = relu(W h_{t-1} + U x_t + b)       W [N, N] = I at the start, U [N, Din], b [N]
/// ```
///
/// Registers `<name>.W`, `<name>.U`, `<name>.b` with `IRNNParameters`'
/// initialisation (W = I, U ~ N(0, 1/Din), b = 0). The op is `IRNN` (FWOps).
public struct IRNNEncoder: RecurrentEncoder {
    public let inputSize: Int
    public let hiddenSize: Int
    /// `W [N, N]`, `U [N, Din]`, `b [N]`.
    public let W: ParameterSlice, U: ParameterSlice, b: ParameterSlice

    /// Registers the parameters, drawn as `IRNNParameters(hidden:input:rng:recurrentScale:)`.
    public init(input: Int, hidden: Int, name: String = "encoder", recurrentScale: Float = 1,
                store: inout ParameterStore, rng: inout SeededRNG) {
        inputSize = input
        hiddenSize = hidden
        let p = IRNNParameters(hidden: hidden, input: input, rng: &rng, recurrentScale: recurrentScale)
        W = store.register("\(name).W", shape: p.W.shape, initializer: .values(p.W.storage))
        U = store.register("\(name).U", shape: p.U.shape, initializer: .values(p.U.storage))
        b = store.register("\(name).b", shape: p.b.shape, initializer: .values(p.b.storage))
    }

    /// The op's parameters, copied out of `store`.
    public func parameters(_ store: ParameterStore) -> IRNNParameters {
        IRNNParameters(W: store.tensor(W), U: store.tensor(U), b: store.tensor(b))
    }

    public func forward(_ x: Tensor, store: ParameterStore) throws -> (h: Tensor, cache: IRNNCache) {
        // Per-step products of a few rows: single-threaded OpenBLAS (threads only spin here).
        try ThreadOwnership.withBLASThreads(1) { try IRNN.forward(x: x, parameters: parameters(store)) }
    }

    public func backward(_ dh: Tensor, cache: IRNNCache, store: inout ParameterStore) throws -> Tensor {
        let grads = try ThreadOwnership.withBLASThreads(1) { try IRNN.backward(dh: dh, cache: cache) }
        try store.accumulateGradient(W, grads.dW)
        try store.accumulateGradient(U, grads.dU)
        try store.accumulateGradient(b, grads.db)
        return grads.dx
    }
}
