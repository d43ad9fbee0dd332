import FWCore
import FWOps

/// One pre-norm block of the `CharLanguageModel` over `x [B, T, D]`, with
/// dropout on both branches before their residual adds and, for the
/// fast-weight mixers, the state carried in and out:
///
/// ```
/// u        = LN1(x)                        "<name>.ln1.*"
/// m, S_T   = Mixer(u; S_0)                 "<name>.mix.*"   (softmax: no state)
/// h        = x + Drop(m)
/// w        = LN2(h)                        "<name>.ln2.*"
/// y        = h + Drop(FF(w))               "<name>.ff.*"
/// ```
///
/// Backward, in the reverse order (parameter gradients accumulate; the
/// dropout masks are the forward's; dL/dS_0 is not returned: the model
/// truncates backpropagation at the segment boundary):
///
/// ```
/// dh = dy + LN2'(FF'(Drop'(dy)))
/// dx = dh + LN1'(Mixer'(Drop'(dh)))
/// ```
///
/// Random draws of a training forward, in order: the mixer's Omega (favor),
/// the mixer-output mask, the feed-forward-output mask (none at p = 0).
public struct LanguageModelBlock: Sendable {
    /// The sequence mixer.
    public enum Mixer: Sendable {
        /// Causal softmax attention (no state).
        case softmax(SoftmaxAttentionLayer)
        /// A fast weight programmer with carried state.
        case fastWeights(CarriedFastWeightLayer)
        /// DeltaNet / Gated DeltaNet with carried fast weights and conv windows.
        case deltaNet(DeltaNetLayer)
    }

    /// What a stateful mixer carries from one segment to the next.
    public enum CarriedState: Sendable, Equatable {
        /// `CarriedFastWeightLayer`'s `[B, H, dk (+ 1), Dphi]` (z as the last row).
        case fastWeights(Tensor)
        /// `DeltaNetLayer`'s fast weights `[B, H, dv, dk]` and conv states `[B, K-1, C]`.
        case deltaNet(DeltaNetLayer.State)
    }

    /// The mixer's part of the cache.
    enum MixerCache: Sendable {
        case softmax(SoftmaxAttentionLayer.Cache)
        case fastWeights(CarriedFastWeightLayer.Cache)
        case deltaNet(DeltaNetLayer.Cache)
    }

    /// What the backward needs from the forward.
    public struct Cache: Sendable {
        /// The block's input `x [B, T, D]`.
        let input: Tensor
        let norm1: LayerNorm.Saved
        let mixer: MixerCache
        /// The mask on the mixer's output (nil: identity).
        let mixerMask: [Float]?
        /// `h [B, T, D]`.
        let residual: Tensor
        let norm2: LayerNorm.Saved
        let feedForward: FeedForward.Cache
        /// The mask on the feed-forward output (nil: identity).
        let feedForwardMask: [Float]?
    }

    /// D.
    public let modelSize: Int
    /// The layer norm before the mixer.
    public let norm1: LayerNorm
    /// The mixer.
    public let mixer: Mixer
    /// The layer norm before the feed-forward network.
    public let norm2: LayerNorm
    /// `D -> F (ReLU) -> D`.
    public let feedForward: FeedForward
    /// The dropout on both branches.
    public let dropout: Dropout

    /// Registers `<name>.ln1`, `<name>.mix.qkv`, `<name>.mix.out` (then, for
    /// favor, draws the evaluation Omega; the DeltaNet mixers register
    /// `DeltaNetLayer`'s `<name>.mix.proj`, `.q_conv`, ..., `.out` instead),
    /// `<name>.ln2`, `<name>.ff` for `config`'s mixer and sizes (`config` must be valid).
    public init(config: LanguageModelConfig, name: String, store: inout ParameterStore, rng: inout SeededRNG) throws {
        let D = config.modelSize
        modelSize = D
        norm1 = LayerNorm(D, name: "\(name).ln1", store: &store)
        let mix = config.mixer
        if let dn = config.deltaNetConfig {
            mixer = .deltaNet(try DeltaNetLayer(dn, name: "\(name).mix", store: &store, rng: &rng))
        } else if let rule = mix.rule, let map = config.featureMap {
            mixer = .fastWeights(try CarriedFastWeightLayer(
                modelSize: D, heads: config.heads, rule: rule, featureMap: map, normalization: config.featureNormalization,
                denominator: mix.usesDenominator, outputScale: config.attentionOutputScale,
                name: "\(name).mix", store: &store, rng: &rng))
        } else {
            mixer = .softmax(try SoftmaxAttentionLayer(modelSize: D, heads: config.heads, headSize: config.headSize,
                                                       name: "\(name).mix", store: &store, rng: &rng))
        }
        norm2 = LayerNorm(D, name: "\(name).ln2", store: &store)
        feedForward = FeedForward(D, config.feedForwardSize, name: "\(name).ff", store: &store, rng: &rng)
        dropout = Dropout(rate: Float(config.dropout))
    }

    /// The shape of the fast-weight state this block carries, `[B, H, dk (+ 1), Dphi]`
    /// (DeltaNet: `[B, H, dv, dk]`, beside its conv states), or nil for softmax.
    public func stateShape(batch B: Int) -> [Int]? {
        switch mixer {
        case let .fastWeights(layer): return layer.stateShape(batch: B)
        case let .deltaNet(layer): return layer.fastWeightShape(batch: B)
        case .softmax: return nil
        }
    }

    /// `y [B, T, D]` for `x [B, T, D]`, the mixer starting from
    /// `initialState` (zero when nil; must be nil for softmax and of the
    /// mixer's kind otherwise), and the mixer's state after the segment (nil
    /// for softmax). The cache is nil unless `saveForBackward`.
    ///
    /// - Throws: `FWError.invalidArgument` for a state of another mixer;
    ///   what the mixer throws (shapes named).
    public func forward(_ x: Tensor, initialState: CarriedState?, store: ParameterStore, training: Bool,
                        rng: inout SeededRNG, saveForBackward: Bool) throws -> (y: Tensor, state: CarriedState?, cache: Cache?) {
        let (u, saved1) = try norm1(x, store)
        let m: Tensor, state: CarriedState?, mixerCache: MixerCache?
        switch (mixer, initialState) {
        case let (.softmax(layer), nil):
            let r = try layer.forward(u, store: store, training: training, rng: &rng)
            (m, state, mixerCache) = (r.y, nil, .softmax(r.cache))
        case let (.fastWeights(layer), s0) where s0 == nil || s0?.fastWeightTensor != nil:
            let omega = try layer.omega(training: training, rng: &rng)
            let r = try layer.forward(u, store: store, omega: omega, initialState: s0?.fastWeightTensor,
                                      saveForBackward: saveForBackward)
            (m, state, mixerCache) = (r.y, .fastWeights(r.state), r.cache.map { .fastWeights($0) })
        case let (.deltaNet(layer), s0) where s0 == nil || s0?.deltaNetState != nil:
            let r = try layer.forward(u, store: store, initialState: s0?.deltaNetState)
            (m, state, mixerCache) = (r.y, .deltaNet(r.state), .deltaNet(r.cache))
        default:
            throw FWError.invalidArgument("LanguageModelBlock: an initial state of another mixer")
        }
        let (md, mixerMask) = dropout.forward(m, training: training, rng: &rng)
        let h = adding(x, md)                                  // h = x + Drop(Mixer(LN1(x)))
        let (w, saved2) = try norm2(h, store)
        let (f, ffCache) = try feedForward.forward(w, store: store)
        let (fd, ffMask) = dropout.forward(f, training: training, rng: &rng)
        let y = adding(h, fd)                                  // y = h + Drop(FF(LN2(h)))
        guard saveForBackward, let mixerCache else { return (y, state, nil) }
        return (y, state, Cache(input: x, norm1: saved1, mixer: mixerCache, mixerMask: mixerMask, residual: h,
                                norm2: saved2, feedForward: ffCache, feedForwardMask: ffMask))
    }

    /// Accumulates every parameter gradient of the block into
    /// `store.gradients` and returns `dx [B, T, D]` (the state's gradient is
    /// dropped: truncated backpropagation at the segment's start).
    public func backward(_ dy: Tensor, cache: Cache, store: inout ParameterStore) throws -> Tensor {
        try dy.checkShape("LanguageModelBlock dy", cache.input.shape)
        // y = h + Drop(FF(LN2(h))).
        let df = try dropout.backward(dy, mask: cache.feedForwardMask)
        let dw = try feedForward.backward(df, cache: cache.feedForward, store: &store)
        let dh = adding(dy, try norm2.backward(dw, input: cache.residual, saved: cache.norm2, store: &store))
        // h = x + Drop(Mixer(LN1(x))).
        let dm = try dropout.backward(dh, mask: cache.mixerMask)
        let du: Tensor
        switch (mixer, cache.mixer) {
        case let (.softmax(layer), .softmax(c)):
            du = try layer.backward(dm, cache: c, store: &store)
        case let (.fastWeights(layer), .fastWeights(c)):
            du = try layer.backward(dm, dstate: nil, cache: c, store: &store).dx
        case let (.deltaNet(layer), .deltaNet(c)):
            du = try layer.backward(dm, dstate: nil, cache: c, store: &store).dx
        default:
            preconditionFailure("LanguageModelBlock.backward: a cache of another mixer")
        }
        return adding(dh, try norm1.backward(du, input: cache.input, saved: cache.norm1, store: &store))
    }
}

extension LanguageModelBlock.CarriedState {
    /// The tensor of a `.fastWeights` state (nil for DeltaNet's).
    var fastWeightTensor: Tensor? {
        if case let .fastWeights(t) = self { return t }
        return nil
    }

    /// The layer state of a `.deltaNet` state (nil for the other kind).
    var deltaNetState: DeltaNetLayer.State? {
        if case let .deltaNet(s) = self { return s }
        return nil
    }
}
