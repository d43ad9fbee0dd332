import FWCore
import FWOps

/// The language model's multi-head fast weight programmer, x `[B, T, D]` ->
/// y `[B, T, D]`, whose whole recurrent state is carried from one segment to
/// the next, including the attention denominator's key sum z:
///
/// ```
/// p       = x Wqkv^T                            Wqkv [P, D], P = 3 H dk (+ H, delta); a row is [q heads | k heads | v heads | beta logits]
/// q, k, v = split(p)                            [B, H, T, dk] (no scaling of q and k before phi)
/// beta    = sigmoid(p[beta block])              [B, H, T]  (delta rule)
/// k'_t, q'_t = n(phi(k_t)), n(phi(q_t))          [Dphi]
///
/// without the denominator:  S_t = S_{t-1} + v_t k'_t^T                       (sum)
///                           S_t = S_{t-1} + beta_t (v_t - S_{t-1} k'_t) k'_t^T (delta)
///                           o_t = S_t q'_t
/// with the denominator:     S_t = S_{t-1} + v_t k'_t^T,  z_t = z_{t-1} + k'_t
///                           o_t = S_t q'_t / (z_t . q'_t + eps)             eps = 1e-5
/// y       = c merge(o) Wout^T                   c = outputScale (1/sqrt(dk) in the LM), Wout [D, H dk]
/// ```
///
/// **Carrying z.** With the denominator the state is `[S; z^T]`, shape
/// `[B, H, dk + 1, Dphi]`: row dk is z. The engine's op starts the
/// denominator from z_0 = 0 only, so this layer runs the plain sum rule on
/// the values `v'_t = [v_t; 1]` instead: its state rows 0..<dk are S, and row
/// dk accumulates `1 * k'_t^T`, i.e. z, from the carried z_0; its output row
/// dk is `z_t . q'_t`. The division happens here. This is the recurrence
/// itself (the state after two segments equals the state after one pass over
/// both), not a reset at the boundary; the op's own denominator (its "ones
/// column") is the same construction with z_0 fixed at 0.
///
/// Parameters: `<name>.qkv.weight [P, D]` and `<name>.out.weight [D, H dk]`
/// (the layout and initialisation of `FastWeightLayer`). FAVOR+'s Omega is
/// drawn fresh for every training forward and fixed (drawn at init, after the
/// weights) for evaluation, `FastWeightLayerConfig.FavorProjectionPolicy.fixedForEvaluation`.
public struct CarriedFastWeightLayer: Sendable {
    /// eps of the denominator, the official layers' 1e-5 (the op's own is 1e-6).
    public static let denominatorEpsilon: Float = 1e-5

    /// D, the width of x and y.
    public let modelSize: Int
    /// H, the number of heads.
    public let heads: Int
    /// dk = dv, the width of a query, key and value per head.
    public let headSize: Int
    /// The write rule.
    public let rule: FastWeightRule
    /// phi, applied to every key and query.
    public let featureMap: FeatureMap
    /// n, applied to phi(k) and phi(q).
    public let normalization: FeatureNormalization
    /// Whether the outputs are divided by `z_t . q'_t + eps` (sum rule only).
    public let denominator: Bool
    /// c, the factor on every head's output before the output projection.
    public let outputScale: Float
    /// The op this layer runs: `rule` without the op's denominator (see the type's doc).
    public let op: FastWeightProgrammer
    /// Fused projection D -> P, no bias.
    public let qkv: Linear
    /// Output projection H dk -> D, no bias.
    public let out: Linear
    /// The Omega `[m, dk]` of evaluation (favor only), drawn at init.
    public let evaluationOmega: Tensor?

    /// Dphi, the size of a feature vector.
    public var featureSize: Int { featureMap.outputSize(inputSize: headSize) }
    /// P = 3 H dk (+ H for the delta rule's beta logits).
    public var projectionSize: Int { heads * 3 * headSize + (rule.needs(.beta) ? heads : 0) }
    /// Rows of one head's state: dk, plus one (z) with the denominator.
    public var stateRows: Int { headSize + (denominator ? 1 : 0) }
    /// The carried state's shape, `[B, H, dk (+ 1), Dphi]`.
    public func stateShape(batch B: Int) -> [Int] { [B, heads, stateRows, featureSize] }

    /// Registers `<name>.qkv.weight [P, D]` and `<name>.out.weight [D, H dk]`
    /// (U(-1/sqrt(fan in), 1/sqrt(fan in))) and, for favor, draws the
    /// evaluation Omega from `rng` after them.
    ///
    /// - Throws: `FWError.invalidArgument` for sizes below 1, D not divisible
    ///   by H, a feature map not defined at dk, a pair the op rejects, or the
    ///   denominator with the delta rule or a map that can be negative.
    public init(modelSize: Int, heads: Int, rule: FastWeightRule, featureMap: FeatureMap,
                normalization: FeatureNormalization, denominator: Bool, outputScale: Float,
                algorithm: FWPAlgorithm? = nil, name: String,
                store: inout ParameterStore, rng: inout SeededRNG) throws {
        guard modelSize >= 1, heads >= 1, modelSize % heads == 0 else {
            throw FWError.invalidArgument("CarriedFastWeightLayer: modelSize \(modelSize) must be a positive multiple of heads \(heads)")
        }
        let dk = modelSize / heads
        try featureMap.validate(inputSize: dk)
        if rule.needs(.g) {
            throw FWError.invalidArgument("CarriedFastWeightLayer: the \(rule) rule needs a log-decay g, which this layer does not compute")
        }
        if denominator {
            // Checked here: the op itself runs without its own denominator.
            _ = try FastWeightProgrammer(rule: rule, featureMap: featureMap, normalization: normalization, denominator: true)
        }
        op = try FastWeightProgrammer(rule: rule, featureMap: featureMap, normalization: normalization,
                                      denominator: false, algorithm: algorithm)
        self.modelSize = modelSize
        self.heads = heads
        self.headSize = dk
        self.rule = rule
        self.featureMap = featureMap
        self.normalization = normalization
        self.denominator = denominator
        self.outputScale = outputScale
        let p = heads * 3 * dk + (rule.needs(.beta) ? heads : 0)
        qkv = Linear(modelSize, p, bias: false, name: "\(name).qkv", store: &store, rng: &rng)
        out = Linear(modelSize, modelSize, bias: false, name: "\(name).out", store: &store, rng: &rng)
        if case let .favor(m) = featureMap {
            evaluationOmega = try FavorProjection.draw(features: m, inputSize: dk, rng: &rng)
        } else {
            evaluationOmega = nil
        }
    }

    /// The Omega a forward uses: nil unless favor; a fresh draw from `rng`
    /// when training, the one drawn at init otherwise (rng untouched).
    public func omega(training: Bool, rng: inout SeededRNG) throws -> Tensor? {
        guard case let .favor(m) = featureMap else { return nil }
        if training { return try FavorProjection.draw(features: m, inputSize: headSize, rng: &rng) }
        return evaluationOmega
    }

    /// Everything the backward reads, kept by the forward.
    public struct Cache: Sendable {
        /// Batch size and sequence length of the forward.
        public let B: Int, T: Int
        /// The input x, `[B, T, D]`.
        let x: Tensor
        /// beta = sigmoid(.), `[B, H, T]` (delta rule; empty otherwise).
        let beta: [Float]
        /// c merge(o), `[B*T, H*dk]` (the output projection's input).
        let merged: [Float]
        /// The op's cache.
        let fwp: FWPCache
        /// With the denominator, the op's outputs `[S_t q'_t ; z_t . q'_t]`, `[B, H, T, dk + 1]`.
        let numerators: [Float]
        /// The Omega `[m, dk]` this forward used (favor only).
        public let omega: Tensor?
    }
}
