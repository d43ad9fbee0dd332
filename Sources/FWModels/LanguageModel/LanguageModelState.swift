import FWCore

/// What a `CharLanguageModel` carries from one segment of a byte stream to
/// the next: every fast-weight block's fast weights and, for the sum-rule
/// mixers with the attention denominator, its key sum, and for the DeltaNet
/// mixers the windows of their short convolutions, for each of B streams.
///
/// ```
/// fastWeights[l]  [B, H, dv, Dphi]    S of block l (contract layout: row i = value dim i;
///                                      dv = dk and Dphi = phi's width, DeltaNet: [B, H, dv, dk])
/// keySums[l]      [B, H, Dphi]         z = sum of the keys n(phi(k)) written so far (linear, dpfp-sum, favor-sum)
/// convStates[l]   [B, K-1, C]          the last K-1 inputs of block l's q, k, v convolutions, oldest
///                                      first, channels [q: H dk | k: H dk | v: H dv] (deltanet, gated-deltanet)
/// position        tokens consumed per stream since the empty state
/// ```
///
/// Empty arrays for softmax (no state), `keySums` empty for the delta
/// rules and `convStates` empty but for the DeltaNet mixers. The state is a
/// value: the model returns it detached from the computation (the next
/// segment's gradients stop at it: truncated backpropagation through time
/// at the boundary).
public struct LanguageModelState: Sendable, Equatable {
    /// Per block l, `[B, H, dv, Dphi]` (empty for softmax).
    public var fastWeights: [Tensor]
    /// Per block l, `[B, H, Dphi]` for the mixers with the denominator (empty otherwise).
    public var keySums: [Tensor]
    /// Per block l, `[B, K-1, 2 H dk + H dv]` for the DeltaNet mixers (empty otherwise).
    public var convStates: [Tensor]
    /// B, the number of streams.
    public var batchSize: Int
    /// Tokens consumed per stream since the empty state (the positional encoding's offset).
    public var position: Int

    /// A state of the given parts (checked against the model when used).
    public init(fastWeights: [Tensor], keySums: [Tensor], convStates: [Tensor] = [], batchSize: Int, position: Int) {
        self.fastWeights = fastWeights
        self.keySums = keySums
        self.convStates = convStates
        self.batchSize = batchSize
        self.position = position
    }

    /// The state before any token: zero fast weights, key sums and conv
    /// windows for B streams at position 0 (no tensors for softmax). Passing
    /// it is the same as passing nil.
    ///
    /// - Throws: `FWError.invalidArgument` for B < 1 or an invalid `config`.
    public static func empty(config: LanguageModelConfig, batchSize B: Int) throws -> LanguageModelState {
        try config.validate()
        guard B >= 1 else { throw FWError.invalidArgument("LanguageModelState: batchSize must be at least 1, got \(B)") }
        guard config.mixer.carriesState else { return LanguageModelState(fastWeights: [], keySums: [], batchSize: B, position: 0) }
        let (H, dv, dphi) = (config.heads, config.valueSize, config.featureSize)
        let weights = (0..<config.layers).map { _ in Tensor(shape: [B, H, dv, dphi]) }
        let sums = config.mixer.usesDenominator ? (0..<config.layers).map { _ in Tensor(shape: [B, H, dphi]) } : []
        let convs = config.convStateShape(batch: B).map { shape in (0..<config.layers).map { _ in Tensor(shape: shape) } } ?? []
        return LanguageModelState(fastWeights: weights, keySums: sums, convStates: convs, batchSize: B, position: 0)
    }

    /// Bytes of the state's numbers.
    public var byteCount: Int {
        ((fastWeights + keySums + convStates).reduce(0) { $0 + $1.count }) * 4
    }
}

extension LanguageModelConfig {
    /// The shape of one block's carried conv windows, `[B, K-1, 2 H dk + H dv]`
    /// (nil but for the DeltaNet mixers).
    public func convStateShape(batch B: Int) -> [Int]? {
        guard let c = deltaNetConfig else { return nil }
        return [B, c.convolutionSize - 1, 2 * c.heads * c.headSize + c.heads * c.valueSize]
    }
}
