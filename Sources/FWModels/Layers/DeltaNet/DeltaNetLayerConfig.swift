import FWCore
import FWOps

/// The shape and options of one `DeltaNetLayer`: DeltaNet (Yang et al.
/// 2024) or Gated DeltaNet (Yang et al. 2025) as flash-linear-attention
/// defines them (fla/layers/delta_net.py, fla/layers/gated_deltanet.py).
///
/// ```
/// x [B, T, D] --one Linear--> [q | k | v | b | a | g]      (a: gated; g: output gate)
///   q, k, v --ShortConvolution + silu (K taps, causal)--> per head: q, k [dk], v [dv]
///   beta = m sigmoid(b)                   m = 2 with negativeEigenvalues, else 1
///   g_t  = -exp(A_log) softplus(a + dt_bias)                  (gated)
///   o    = dk^(-1/2) FWP(rule, identity, l2)(q, k, v; beta, g)  rule = gated-delta or delta
///   o'   = RMSNorm(o) * w * silu(g)   or   RMSNorm(o) * w       per head over dv
/// y = merge(o') Wout^T                    Wout [D, H dv]
/// ```
///
/// `validate()` checks the sizes and builds the op, with one-line
/// `FWError.invalidArgument` messages.
public struct DeltaNetLayerConfig: Equatable, Sendable {
    /// D, the width of the layer's input and output.
    public var modelSize: Int
    /// H, the number of heads.
    public var heads: Int
    /// dk, the width of a query and key per head.
    public var headSize: Int
    /// dv, the width of a value per head.
    public var valueSize: Int
    /// Gated DeltaNet (the `gated-delta` rule with the decay gate) instead of DeltaNet (`delta`).
    public var gated: Bool
    /// The silu output gate in the output norm (FLA's `use_gate`).
    public var outputGate: Bool
    /// beta = 2 sigmoid(.) in (0, 2) instead of sigmoid(.) (FLA's `allow_neg_eigval`).
    public var negativeEigenvalues: Bool
    /// K, the short convolution's kernel length (FLA's `conv_size`, default 4).
    public var convolutionSize: Int
    /// eps of the output RMS norm (FLA's `norm_eps`, default 1e-5).
    public var normEpsilon: Float
    /// The op's algorithm; nil lets the engine choose.
    public var algorithm: FWPAlgorithm?

    /// A configuration; call `validate()` (the layer's init does) to check it.
    public init(modelSize: Int, heads: Int, headSize: Int, valueSize: Int? = nil, gated: Bool,
                outputGate: Bool, negativeEigenvalues: Bool = false, convolutionSize: Int = 4,
                normEpsilon: Float = 1e-5, algorithm: FWPAlgorithm? = nil) {
        self.modelSize = modelSize
        self.heads = heads
        self.headSize = headSize
        self.valueSize = valueSize ?? headSize
        self.gated = gated
        self.outputGate = outputGate
        self.negativeEigenvalues = negativeEigenvalues
        self.convolutionSize = convolutionSize
        self.normEpsilon = normEpsilon
        self.algorithm = algorithm
    }

    /// FLA's `DeltaNet` defaults: no decay, no output gate (plain RMSNorm), dv = dk unless given.
    public static func deltaNet(modelSize: Int, heads: Int, headSize: Int, valueSize: Int? = nil) -> DeltaNetLayerConfig {
        DeltaNetLayerConfig(modelSize: modelSize, heads: heads, headSize: headSize, valueSize: valueSize,
                            gated: false, outputGate: false)
    }

    /// FLA's `GatedDeltaNet` defaults: the decay gate and the silu output gate,
    /// dv = 2 dk (`expand_v = 2`) unless given.
    public static func gatedDeltaNet(modelSize: Int, heads: Int, headSize: Int, valueSize: Int? = nil) -> DeltaNetLayerConfig {
        DeltaNetLayerConfig(modelSize: modelSize, heads: heads, headSize: headSize, valueSize: valueSize ?? 2 * headSize,
                            gated: true, outputGate: true)
    }

    /// The write rule: `gated-delta` or `delta`.
    public var rule: FastWeightRule { gated ? .gatedDelta : .delta }

    /// The scale of q after its l2 norm, dk^(-1/2) (FLA's default `scale`).
    public var queryScale: Float { 1 / Float(headSize).squareRoot() }

    // The fused projection's row, in this order (head-major inside each block):
    // [q: H dk | k: H dk | v: H dv | b: H | a: H (gated) | g: H dv (output gate)].

    /// First column of q's block (0).
    public var queryColumn: Int { 0 }
    /// First column of k's block.
    public var keyColumn: Int { heads * headSize }
    /// First column of v's block.
    public var valueColumn: Int { 2 * heads * headSize }
    /// First column of beta's logits.
    public var betaColumn: Int { valueColumn + heads * valueSize }
    /// First column of the decay's logits (gated; the end of beta's block otherwise).
    public var decayColumn: Int { betaColumn + heads }
    /// First column of the output gate's logits (the end of the decay's block).
    public var gateColumn: Int { decayColumn + (gated ? heads : 0) }
    /// P, the width of the fused projection's row.
    public var projectionSize: Int { gateColumn + (outputGate ? heads * valueSize : 0) }

    /// Checks the sizes and builds the op: `FastWeightProgrammer(rule, identity, l2)`.
    ///
    /// - Throws: `FWError.invalidArgument` for a size below 1, an epsilon
    ///   that is not positive and finite, or a chunk size below 1.
    @discardableResult
    public func validate() throws -> FastWeightProgrammer {
        for (name, value) in [("modelSize", modelSize), ("heads", heads), ("headSize", headSize),
                              ("valueSize", valueSize), ("convolutionSize", convolutionSize)] {
            if value < 1 {
                throw FWError.invalidArgument("DeltaNetLayerConfig: \(name) must be at least 1, got \(value)")
            }
        }
        if !(normEpsilon > 0 && normEpsilon.isFinite) {
            throw FWError.invalidArgument("DeltaNetLayerConfig: normEpsilon must be positive and finite, got \(normEpsilon)")
        }
        do {
            return try FastWeightProgrammer(rule: rule, featureMap: .identity, normalization: .l2, algorithm: algorithm)
        } catch let FWError.invalidArgument(message) {
            throw FWError.invalidArgument("DeltaNetLayerConfig: \(message)")
        }
    }
}
