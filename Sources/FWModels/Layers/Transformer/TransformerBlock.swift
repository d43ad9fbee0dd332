import FWCore

/// One pre-norm Transformer block over `x [B, T, D]` with any sequence mixer
/// (fast weight layer, softmax attention, ...):
///
/// ```
/// u = LN1(x)                      "<name>.ln1.weight", "<name>.ln1.bias"
/// h = x + Mixer(u)                residual around the mixer
/// w = LN2(h)                      "<name>.ln2.weight", "<name>.ln2.bias"
/// y = h + FF(w)                   "<name>.ff.up.*", "<name>.ff.down.*"
/// ```
///
/// Backward, in the reverse order (parameter gradients accumulate):
///
/// ```
/// dh = dy + LN2'(FF'(dy))         both residual paths into h
/// dx = dh + LN1'(Mixer'(dh))      both residual paths into x
/// ```
///
/// Parameters are registered in the order LN1, mixer, LN2, FF. There is no
/// dropout; `training` and `rng` are passed on to the mixer.
public struct TransformerBlock<Mixer: SequenceMixingLayer>: Sendable {
    /// Width D of a row.
    public let modelSize: Int
    /// The layer norm before the mixer.
    public let norm1: LayerNorm
    /// The sequence mixer (attention).
    public let mixer: Mixer
    /// The layer norm before the feed-forward network.
    public let norm2: LayerNorm
    /// The feed-forward network `D -> F -> D`.
    public let feedForward: FeedForward

    /// Registers `<name>.ln1`, then the mixer `makeMixer` builds (it should
    /// name its parameters, e.g., `<name>.mix.*`), then `<name>.ln2` and
    /// `<name>.ff` (hidden width `feedForwardSize`).
    ///
    /// - Throws: what `makeMixer` throws, or `FWError.invalidArgument` when
    ///   the mixer's `modelSize` is not `modelSize`.
    public init(modelSize: Int, feedForwardSize: Int, name: String,
                store: inout ParameterStore, rng: inout SeededRNG,
                makeMixer: (_ store: inout ParameterStore, _ rng: inout SeededRNG) throws -> Mixer) throws {
        precondition(modelSize > 0 && feedForwardSize > 0,
                     "TransformerBlock: sizes must be positive, got D = \(modelSize), F = \(feedForwardSize)")
        self.modelSize = modelSize
        norm1 = LayerNorm(modelSize, name: "\(name).ln1", store: &store)
        mixer = try makeMixer(&store, &rng)
        guard mixer.modelSize == modelSize else {
            throw FWError.invalidArgument("TransformerBlock '\(name)': mixer model size \(mixer.modelSize) != \(modelSize)")
        }
        norm2 = LayerNorm(modelSize, name: "\(name).ln2", store: &store)
        feedForward = FeedForward(modelSize, feedForwardSize, name: "\(name).ff", store: &store, rng: &rng)
    }

    /// What the backward needs from the forward.
    public struct Cache: Sendable {
        /// The block's input `x [B, T, D]`.
        public let input: Tensor
        /// LN1's statistics.
        public let norm1: LayerNorm.Saved
        /// The mixer's cache.
        public let mixer: Mixer.Cache
        /// `h = x + Mixer(LN1(x))`, `[B, T, D]`.
        public let residual: Tensor
        /// LN2's statistics.
        public let norm2: LayerNorm.Saved
        /// The feed-forward network's cache.
        public let feedForward: FeedForward.Cache
    }

    /// `y [B, T, D]` for `x [B, T, D]` (see the type's equations).
    ///
    /// - Throws: `FWError.shapeMismatch` naming `TransformerBlock x` unless
    ///   `x` is `[B, T, D]`, or naming `mixer y` when the mixer returns a wrong shape.
    public func forward(_ x: Tensor, store: ParameterStore, training: Bool,
                        rng: inout SeededRNG) throws -> (y: Tensor, cache: Cache) {
        guard x.rank == 3, x.shape[2] == modelSize else {
            throw FWError.shapeMismatch(tensor: "TransformerBlock x", expected: "[B, T, \(modelSize)]", got: x.shape)
        }
        let (u, saved1) = try norm1(x, store)
        let (m, mixerCache) = try mixer.forward(u, store: store, training: training, rng: &rng)
        try m.checkShape("mixer y", x.shape)
        let h = adding(x, m)                                   // h = x + Mixer(LN1(x))
        let (w, saved2) = try norm2(h, store)
        let (f, ffCache) = try feedForward.forward(w, store: store)
        let y = adding(h, f)                                   // y = h + FF(LN2(h))
        return (y, Cache(input: x, norm1: saved1, mixer: mixerCache, residual: h, norm2: saved2, feedForward: ffCache))
    }

    /// Accumulates every parameter gradient of the block (LN1, mixer, LN2,
    /// FF) into `store.gradients` and returns `dx [B, T, D]`.
    ///
    /// - Throws: `FWError.shapeMismatch` naming `TransformerBlock dy` unless
    ///   `dy` has the input's shape.
    public func backward(_ dy: Tensor, cache: Cache, store: inout ParameterStore) throws -> Tensor {
        try dy.checkShape("TransformerBlock dy", cache.input.shape)
        // y = h + FF(LN2(h)): dh = dy + LN2'(FF'(dy)).
        let dw = try feedForward.backward(dy, cache: cache.feedForward, store: &store)
        let dhNorm = try norm2.backward(dw, input: cache.residual, saved: cache.norm2, store: &store)
        let dh = adding(dy, dhNorm)
        // h = x + Mixer(LN1(x)): dx = dh + LN1'(Mixer'(dh)).
        let du = try mixer.backward(dh, cache: cache.mixer, store: &store)
        try du.checkShape("mixer dx", cache.input.shape)
        let dxNorm = try norm1.backward(du, input: cache.input, saved: cache.norm1, store: &store)
        return adding(dh, dxNorm)
    }
}

/// `a + b` elementwise (same shape): the residual sums of every pre-norm
/// block (`TransformerBlock`, `LanguageModelBlock`).
func adding(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "adding: shapes \(describeShape(a.shape)) and \(describeShape(b.shape))")
    var out = a
    out.withUnsafeMutableBufferPointer { o in
        b.withUnsafeBufferPointer { bb in
            for i in 0..<o.count { o[i] += bb[i] }
        }
    }
    return out
}
