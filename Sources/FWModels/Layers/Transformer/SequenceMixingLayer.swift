import FWCore

/// A layer that mixes information across the time steps of a batch of
/// sequences: the attention slot of a `TransformerBlock`.
///
/// ```
/// y[B, T, D] = mix(x[B, T, D])          (causal: y[b, t] may read x[b, s] only for s <= t)
/// ```
///
/// Conforming layers (the fast weight layer, causal softmax attention, the
/// test mixers) keep `ParameterSlice`s into a `ParameterStore` and follow the
/// package's forward/backward pairing: the forward reads the store's values
/// and returns what its backward needs in a `Cache`; the backward
/// *accumulates* parameter gradients into `store.gradients` and returns
/// dL/dx.
public protocol SequenceMixingLayer: Sendable {
    /// What the forward saves for the backward (inputs, intermediate
    /// results, any random draws such as a FAVOR+ projection).
    associatedtype Cache: Sendable

    /// The width D of an input and output row.
    var modelSize: Int { get }

    /// `x [B, T, D]` -> `y [B, T, D]` with the parameters in `store`.
    ///
    /// - Parameters:
    ///   - x: the input `[B, T, D]`, `D == modelSize`.
    ///   - store: the parameters (read only).
    ///   - training: true in a training step (a layer may then draw, e.g., a
    ///     fresh random projection); false in evaluation.
    ///   - rng: the generator for any such draw.
    /// - Returns: `y [B, T, D]` and the cache for `backward`.
    /// - Throws: `FWError.shapeMismatch` naming `x` for a wrong shape.
    func forward(_ x: Tensor, store: ParameterStore, training: Bool,
                 rng: inout SeededRNG) throws -> (y: Tensor, cache: Cache)

    /// Given `dy = dL/dy [B, T, D]` and the forward's cache, accumulates
    /// dL/d(parameters) into `store.gradients` and returns `dx = dL/dx [B, T, D]`.
    func backward(_ dy: Tensor, cache: Cache, store: inout ParameterStore) throws -> Tensor
}
