import FWCore
import FWOps

/// The sequence mixer of every block of a `CharLanguageModel`: causal softmax
/// attention, one of the six fast weight programmers of Schlag, Irie &
/// Schmidhuber (2021, Table 2), or flash-linear-attention's DeltaNet and
/// Gated DeltaNet layers (`DeltaNetLayer`), spelled as in configuration files.
///
/// | mixer | rule | phi | n (on phi(q), phi(k)) | output | lmtool-fwp `attn_type` |
/// |---|---|---|---|---|---|
/// | `softmax` | (softmax attention) | - | - | `softmax(q k^T / sqrt(dk)) v` | 2 |
/// | `linear` | sum | elu1 | none | `c S_t q'_t / (z_t . q'_t + eps)` | 34 (= 4) |
/// | `delta` | delta, beta = sigmoid | elu1 | sum | `c S_t q'_t` | 24 |
/// | `dpfp-sum` | sum | dpfp:nu | none | `c S_t q'_t / (z_t . q'_t + eps)` | 6 |
/// | `dpfp-delta` | delta | dpfp:nu | sum | `c S_t q'_t` | 26 |
/// | `favor-sum` | sum | favor:m | none | `c S_t q'_t / (z_t . q'_t + eps)` | 35 (= 5) |
/// | `favor-delta` | delta | favor:m | sum | `c S_t q'_t` | 25 |
/// | `deltanet` | delta | identity (after conv + silu) | l2 | `RMSNorm(c S_t q'_t)` | - |
/// | `gated-deltanet` | gated-delta, a_t = exp(g_t) | identity (after conv + silu) | l2 | `RMSNorm(c S_t q'_t) silu(gate)` | - |
///
/// with `c = 1/sqrt(dk)` (the official layers' output scale), `eps = 1e-5`,
/// and no scaling of q and k before phi (`LanguageModel.md` says where each
/// choice comes from). The two DeltaNet mixers are `DeltaNetLayerConfig`'s
/// `.deltaNet` (dv = dk) and `.gatedDeltaNet` (dv = 2 dk) presets at the
/// model's D and H, dk = D / H (`Layers/DeltaNet/DeltaNet.md`).
public enum LanguageModelMixer: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    /// Causal softmax attention (the Transformer row).
    case softmax
    /// Katharopoulos et al.'s linear transformer: sum rule, elu1, the attention denominator.
    case linear
    /// The delta rule with elu1 and sum normalisation (Schlag et al.'s "Linear + delta").
    case delta
    /// The sum rule with DPFP features and the attention denominator.
    case dpfpSum = "dpfp-sum"
    /// The delta rule with DPFP features and sum normalisation.
    case dpfpDelta = "dpfp-delta"
    /// Performer: the sum rule with FAVOR+ features and the attention denominator.
    case favorSum = "favor-sum"
    /// The delta rule with FAVOR+ features and sum normalisation.
    case favorDelta = "favor-delta"
    /// FLA's DeltaNet: short convolutions + silu, l2-normalised q and k, the delta rule, RMS norm.
    case deltaNet = "deltanet"
    /// FLA's Gated DeltaNet: DeltaNet with the decay a_t = exp(g_t) and the silu output gate, dv = 2 dk.
    case gatedDeltaNet = "gated-deltanet"

    /// The spelling: `softmax`, `linear`, `delta`, `dpfp-sum`, `dpfp-delta`,
    /// `favor-sum`, `favor-delta`, `deltanet`, `gated-deltanet`.
    public var description: String { rawValue }

    /// Parses a spelling; throws `FWError.invalidArgument` listing the valid ones.
    public init(parsing text: String) throws {
        guard let mixer = LanguageModelMixer(rawValue: text) else {
            throw FWError.invalidArgument("unknown mixer '\(text)' (expected \(LanguageModelMixer.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self = mixer
    }

    /// True for the eight fast weight mixers: their state is carried from
    /// one segment to the next; softmax attention has none.
    public var carriesState: Bool { self != .softmax }

    /// True for `deltanet` and `gated-deltanet`, whose blocks hold a
    /// `DeltaNetLayer` (and carry its short-convolution states beside S).
    public var isDeltaNet: Bool { self == .deltaNet || self == .gatedDeltaNet }

    /// The write rule, nil for softmax.
    public var rule: FastWeightRule? {
        switch self {
        case .softmax: return nil
        case .linear, .dpfpSum, .favorSum: return .sum
        case .delta, .dpfpDelta, .favorDelta, .deltaNet: return .delta
        case .gatedDeltaNet: return .gatedDelta
        }
    }

    /// True for the sum-rule mixers, which divide by `z_t . q'_t + eps`
    /// (and so carry the key sum `z` beside `S`).
    public var usesDenominator: Bool { rule == .sum }

    /// The normalisation of phi(q) and phi(k): `l2` for the DeltaNet mixers,
    /// `sum` for the other delta rules, `none` otherwise.
    public var normalization: FeatureNormalization {
        if isDeltaNet { return .l2 }
        return rule == .delta ? .sum : .none
    }

    /// phi for this mixer (nil for softmax), given DPFP's nu and FAVOR+'s m
    /// (identity for the DeltaNet mixers: their q and k pass through conv + silu first).
    public func featureMap(dpfpOrder: Int, favorFeatures: Int) -> FeatureMap? {
        switch self {
        case .softmax: return nil
        case .deltaNet, .gatedDeltaNet: return .identity
        case .linear, .delta: return .elu1
        case .dpfpSum, .dpfpDelta: return .dpfp(order: dpfpOrder)
        case .favorSum, .favorDelta: return .favor(features: favorFeatures)
        }
    }

    /// The `--attn_type` of IDSIA/lmtool-fwp whose layer this mixer follows
    /// (nil for the DeltaNet mixers: they follow fla-org/flash-linear-attention).
    public var officialAttentionType: Int? {
        switch self {
        case .deltaNet, .gatedDeltaNet: return nil
        case .softmax: return 2
        case .linear: return 34
        case .delta: return 24
        case .dpfpSum: return 6
        case .dpfpDelta: return 26
        case .favorSum: return 35
        case .favorDelta: return 25
        }
    }
}
