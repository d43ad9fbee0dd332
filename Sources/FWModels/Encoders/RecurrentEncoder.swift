import FWCore

/// A recurrent layer `x [B, T, Din] -> h [B, T, N]` whose parameters live in
/// a `ParameterStore` (registered under a prefix when the encoder is made).
///
/// A forward/backward pair in llm.c's manner:
///
/// ```
/// let (h, cache) = try encoder.forward(x, store: store)        // h [B, T, N]
/// let dx = try encoder.backward(dh, cache: cache, store: &store) // dx [B, T, Din]
/// ```
///
/// `backward` *accumulates* dL/d(parameters) into `store.gradients` (`+=`,
/// summed over the batch) and returns dL/dx. One file per model:
/// `FastWeightsEncoder`, `IRNNEncoder`, `LSTMEncoder`, `AssociativeLSTMEncoder`.
public protocol RecurrentEncoder: Sendable {
    /// What `backward` needs from `forward`.
    associatedtype Cache

    /// Din, the width of an input step.
    var inputSize: Int { get }
    /// N, the width of a hidden state.
    var hiddenSize: Int { get }

    /// Every hidden state `h [B, T, N]` of `x [B, T, Din]`, and the cache for `backward`.
    func forward(_ x: Tensor, store: ParameterStore) throws -> (h: Tensor, cache: Cache)

    /// Backpropagation through time from `dh [B, T, N]` (dL/dh_t for every step):
    /// adds the parameter gradients into `store.gradients` and returns dL/dx `[B, T, Din]`.
    func backward(_ dh: Tensor, cache: Cache, store: inout ParameterStore) throws -> Tensor
}

extension ParameterStore {
    /// `gradients[slice] += tensor` (an op's fresh gradient into the store's accumulator).
    /// Throws `FWError.shapeMismatch` naming the parameter unless `tensor` has its shape.
    public mutating func accumulateGradient(_ slice: ParameterSlice, _ tensor: Tensor) throws {
        try tensor.checkShape("gradient of '\(slice.name)'", slice.shape)
        withPointers { p in
            let g = p.gradient(slice)
            tensor.withUnsafeBufferPointer { t in
                for i in 0..<slice.count { g[i] += t[i] }
            }
        }
    }
}
