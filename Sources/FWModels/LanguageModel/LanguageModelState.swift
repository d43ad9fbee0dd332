import FWCore

/// What a `CharLanguageModel` carries from one segment of a byte stream to
/// the next: every fast-weight block's fast weights and, for the sum-rule
/// mixers with the attention denominator, its key sum, for each of B streams.
///
/// ```
/// fastWeights[l]  [B, H, dk, Dphi]    S of block l (contract layout: row i = value dim i)
/// keySums[l]      [B, H, Dphi]         z = sum of the keys n(phi(k)) written so far (linear, dpfp-sum, favor-sum)
/// position        tokens consumed per stream since the empty state
/// ```
///
/// Empty arrays for softmax (no state) and `keySums` empty for the delta
/// rules. The state is a value: the model returns it detached from the
/// computation (the next segment's gradients stop at it: truncated
/// backpropagation through time at the boundary).
public struct LanguageModelState: Sendable, Equatable {
    /// Per block l, `[B, H, dk, Dphi]` (empty for softmax).
    public var fastWeights: [Tensor]
    /// Per block l, `[B, H, Dphi]` for the mixers with the denominator (empty otherwise).
    public var keySums: [Tensor]
    /// B, the number of streams.
    public var batchSize: Int
    /// Tokens consumed per stream since the empty state (the positional encoding's offset).
    public var position: Int

    /// A state of the given parts (checked against the model when used).
    public init(fastWeights: [Tensor], keySums: [Tensor], batchSize: Int, position: Int) {
        self.fastWeights = fastWeights
        self.keySums = keySums
        self.batchSize = batchSize
        self.position = position
    }

    /// The state before any token: zero fast weights and key sums for B
    /// streams at position 0 (no tensors for softmax). Passing it is the
    /// same as passing nil.
    ///
    /// - Throws: `FWError.invalidArgument` for B < 1 or an invalid `config`.
    public static func empty(config: LanguageModelConfig, batchSize B: Int) throws -> LanguageModelState {
        try config.validate()
        guard B >= 1 else { throw FWError.invalidArgument("LanguageModelState: batchSize must be at least 1, got \(B)") }
        guard config.mixer.carriesState else { return LanguageModelState(fastWeights: [], keySums: [], batchSize: B, position: 0) }
        let (H, dk, dphi) = (config.heads, config.headSize, config.featureSize)
        let weights = (0..<config.layers).map { _ in Tensor(shape: [B, H, dk, dphi]) }
        let sums = config.mixer.usesDenominator ? (0..<config.layers).map { _ in Tensor(shape: [B, H, dphi]) } : []
        return LanguageModelState(fastWeights: weights, keySums: sums, batchSize: B, position: 0)
    }

    /// Bytes of the state's numbers.
    public var byteCount: Int { (fastWeights.reduce(0) { $0 + $1.count } + keySums.reduce(0) { $0 + $1.count }) * 4 }
}
