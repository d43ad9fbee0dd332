import FWCore
import FWOps

/// The shape and math of one `FastWeightLayer` (a multi-head fast weight
/// programmer, Schlag et al. 2021).
///
/// ```
/// x [B, T, D] --fused Linear--> q, k [B, H, T, dk], v [B, H, T, dv], beta [B, H, T]
///             --FastWeightProgrammer(rule, phi, n, denominator, algorithm)--> [B, H, T, dv]
///             --merge heads, Linear H*dv -> D--> y [B, T, D]
/// ```
///
/// `validate()` checks everything `FastWeightProgrammer.init` checks (the
/// feature map against the normalisation and the denominator, the chunk
/// size) plus the sizes, with one-line `FWError.invalidArgument` messages.
public struct FastWeightLayerConfig: Equatable, Sendable {
    /// How FAVOR+'s random matrix Omega `[M, dk]` is chosen (only for `favor:M`).
    public enum FavorProjectionPolicy: String, Equatable, Sendable, CaseIterable {
        /// A fresh Omega for every forward, in training and in evaluation
        /// (drawn from the `rng` passed to `forward`), as the paper's code does.
        case freshPerForward
        /// A fresh Omega for every training forward; evaluation uses one
        /// Omega drawn when the layer was built (deterministic evaluation).
        case fixedForEvaluation
    }

    /// D, the width of the layer's input and output.
    public var modelSize: Int
    /// H, the number of heads.
    public var heads: Int
    /// dk, the width of a query and key per head.
    public var headSize: Int
    /// dv, the width of a value per head (default dk).
    public var valueSize: Int
    /// The write rule (sum or delta).
    public var rule: FastWeightRule
    /// phi, applied to every key and query.
    public var featureMap: FeatureMap
    /// n, applied to phi(k) and phi(q).
    public var normalization: FeatureNormalization
    /// The attention denominator `z_t . q'_t + 1e-6` (sum rule, non-negative phi).
    public var denominator: Bool
    /// The op's algorithm; nil lets the engine choose.
    public var algorithm: FWPAlgorithm?
    /// How Omega is drawn for `favor:M` (ignored for other maps).
    public var favorProjection: FavorProjectionPolicy

    /// A configuration; `valueSize` nil means dk. Call `validate()` (the
    /// layer's init does) to check it.
    public init(modelSize: Int, heads: Int, headSize: Int, valueSize: Int? = nil,
                rule: FastWeightRule, featureMap: FeatureMap, normalization: FeatureNormalization = .none,
                denominator: Bool = false, algorithm: FWPAlgorithm? = nil,
                favorProjection: FavorProjectionPolicy = .freshPerForward) {
        self.modelSize = modelSize
        self.heads = heads
        self.headSize = headSize
        self.valueSize = valueSize ?? headSize
        self.rule = rule
        self.featureMap = featureMap
        self.normalization = normalization
        self.denominator = denominator
        self.algorithm = algorithm
        self.favorProjection = favorProjection
    }

    /// Width of the fused projection's output row:
    /// `H*dk (q) + H*dk (k) + H*dv (v)` and, for the delta rule, `+ H (beta)`.
    public var projectionSize: Int {
        heads * (2 * headSize + valueSize) + (rule.needs(.beta) ? heads : 0)
    }

    /// Checks the sizes and builds the op the configuration describes.
    ///
    /// - Throws: `FWError.invalidArgument` for a size below 1, a feature map
    ///   not defined at dk (e.g. `dpfp:N` with N > 2 dk - 1), or any
    ///   combination `FastWeightProgrammer.init` rejects.
    @discardableResult
    public func validate() throws -> FastWeightProgrammer {
        for (name, value) in [("modelSize", modelSize), ("heads", heads), ("headSize", headSize), ("valueSize", valueSize)] {
            if value < 1 {
                throw FWError.invalidArgument("FastWeightLayerConfig: \(name) must be at least 1, got \(value)")
            }
        }
        // The layer projects beta (sigmoid(w . x)) but no log-decay yet.
        if rule.needs(.g) {
            throw FWError.invalidArgument("FastWeightLayerConfig: the \(rule) rule needs a log-decay g, which this layer does not compute")
        }
        do {
            try featureMap.validate(inputSize: headSize)
            return try FastWeightProgrammer(rule: rule, featureMap: featureMap, normalization: normalization,
                                            denominator: denominator, algorithm: algorithm)
        } catch let FWError.invalidArgument(message) {
            throw FWError.invalidArgument("FastWeightLayerConfig: \(message)")
        }
    }
}
