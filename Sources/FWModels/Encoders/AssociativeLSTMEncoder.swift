import FWCore
import FWOps

/// The associative LSTM (Danihelka et al. 2016) as an encoder, a baseline of
/// Ba et al. 2016, Table 1: an LSTM whose cell is a complex holographic memory
/// kept in `copies` redundant copies under fixed random key permutations (see
/// `AssociativeLSTM` in FWOps for the equations). N must be even (N/2 complex units).
///
/// Registers `<name>.W [9N/2, N]`, `<name>.U [9N/2, Din]`, `<name>.b [9N/2]`.
/// The permutations are not trained: they are drawn from `rng` after the
/// weights and kept in the encoder (the same seed gives the same ones).
public struct AssociativeLSTMEncoder: RecurrentEncoder {
    public let inputSize: Int
    public let hiddenSize: Int
    /// Number of redundant memory copies.
    public var copies: Int { permutations.count }
    /// The fixed key permutations, one per copy.
    public let permutations: [[Int]]
    /// `W [9N/2, N]`, `U [9N/2, Din]`, `b [9N/2]`, blocks i, f, o, r_i, r_o, u.
    public let W: ParameterSlice, U: ParameterSlice, b: ParameterSlice

    /// Registers the parameters, drawn as `AssociativeLSTMParameters(hidden:input:copies:rng:forgetBias:)`.
    public init(input: Int, hidden: Int, copies: Int, name: String = "encoder", forgetBias: Float = 1,
                store: inout ParameterStore, rng: inout SeededRNG) {
        inputSize = input
        hiddenSize = hidden
        let p = AssociativeLSTMParameters(hidden: hidden, input: input, copies: copies, rng: &rng,
                                          forgetBias: forgetBias)
        permutations = p.permutations
        W = store.register("\(name).W", shape: p.W.shape, initializer: .values(p.W.storage))
        U = store.register("\(name).U", shape: p.U.shape, initializer: .values(p.U.storage))
        b = store.register("\(name).b", shape: p.b.shape, initializer: .values(p.b.storage))
    }

    /// The op's parameters, copied out of `store`.
    public func parameters(_ store: ParameterStore) -> AssociativeLSTMParameters {
        AssociativeLSTMParameters(W: store.tensor(W), U: store.tensor(U), b: store.tensor(b),
                                  permutations: permutations)
    }

    public func forward(_ x: Tensor, store: ParameterStore) throws -> (h: Tensor, cache: AssociativeLSTMCache) {
        // Per-step products of a few rows: single-threaded OpenBLAS (threads only spin here).
        try ThreadOwnership.withBLASThreads(1) { try AssociativeLSTM.forward(x: x, parameters: parameters(store)) }
    }

    public func backward(_ dh: Tensor, cache: AssociativeLSTMCache, store: inout ParameterStore) throws -> Tensor {
        let grads = try ThreadOwnership.withBLASThreads(1) { try AssociativeLSTM.backward(dh: dh, cache: cache) }
        try store.accumulateGradient(W, grads.dW)
        try store.accumulateGradient(U, grads.dU)
        try store.accumulateGradient(b, grads.db)
        return grads.dx
    }
}
