import FWCore
import FWOps

/// The shape of a `CharLanguageModel` (bytes in, next-byte logits out),
/// Codable so that a training run can store it beside its checkpoint.
///
/// ```
/// x_0    = sqrt(D) E[byte] (+ PE[position])     E [256, D]
/// x_l    = Block_l(x_{l-1}),  l = 1..layers       pre-norm, mixer = `mixer`, FF width `feedForwardSize`
/// logits = LN_f(x_L) E^T + b   (tied)   or   LN_f(x_L) W^T + b   (untied, W [256, D])
/// ```
///
/// H heads of size dk = D / H (values dv = dk, but 2 dk for `gated-deltanet`,
/// its preset's `expand_v = 2`). `dropout` is the rate p of the inverted
/// dropout on the embedding output and on the mixer and feed-forward outputs
/// before each residual add. `favorFeatures` (m) and `dpfpOrder` (nu) are
/// used only by the favor and dpfp mixers. JSON keys are the property
/// names; a missing key takes the default of `init` (only `mixer` is required).
public struct LanguageModelConfig: Codable, Equatable, Sendable {
    /// The vocabulary: the 256 byte values.
    public static let vocabularySize = 256

    /// The mixer of every block.
    public var mixer: LanguageModelMixer
    /// N, the number of blocks.
    public var layers: Int
    /// D, the width of the residual stream.
    public var modelSize: Int
    /// H, the number of heads (D must be divisible by H).
    public var heads: Int
    /// F, the hidden width of each block's feed-forward network.
    public var feedForwardSize: Int
    /// p, the dropout rate in [0, 1).
    public var dropout: Double
    /// Whether the output projection is the embedding table (`logits = h E^T + b`).
    public var tiedEmbeddings: Bool
    /// m, FAVOR+'s number of random features (Dphi = 2m; favor mixers only).
    public var favorFeatures: Int
    /// nu, DPFP's order (Dphi = 2 dk nu; dpfp mixers only).
    public var dpfpOrder: Int
    /// Whether the sinusoidal positional encoding is added to the embeddings
    /// (positions count from the start of the stream, carried across segments).
    public var positionalEncoding: Bool
    /// n on phi(q) and phi(k) in place of the mixer's own (`mixer.normalization`:
    /// sum for the delta rules, none for the sum rules); nil keeps the mixer's.
    /// For the six fast weight mixers of the paper only (e.g. `delta` with `l2`,
    /// the delta rule whose writes replace a value along a unit-length key).
    public var normalization: FeatureNormalization?
    /// phi in place of the mixer's own (`mixer.featureMap`), for the six
    /// fast weight mixers of the paper; nil keeps the mixer's. E.g. `delta`
    /// with `identity` and `l2`: keys of both signs on the unit sphere.
    public var phi: FeatureMap?

    /// A configuration; call `validate()` (the model's init does).
    /// Defaults follow the paper's small WikiText-103 setting where it
    /// applies to bytes (D 128, 8 heads of 16, dropout 0.1, tied
    /// embeddings, m 16, nu 2, no positional encoding as in its carried-state
    /// runs), with 4 blocks of F 512.
    public init(mixer: LanguageModelMixer, layers: Int = 4, modelSize: Int = 128, heads: Int = 8,
                feedForwardSize: Int = 512, dropout: Double = 0.1, tiedEmbeddings: Bool = true,
                favorFeatures: Int = 16, dpfpOrder: Int = 2, positionalEncoding: Bool = false,
                normalization: FeatureNormalization? = nil, phi: FeatureMap? = nil) {
        self.mixer = mixer
        self.layers = layers
        self.modelSize = modelSize
        self.heads = heads
        self.feedForwardSize = feedForwardSize
        self.dropout = dropout
        self.tiedEmbeddings = tiedEmbeddings
        self.favorFeatures = favorFeatures
        self.dpfpOrder = dpfpOrder
        self.positionalEncoding = positionalEncoding
        self.normalization = normalization
        self.phi = phi
    }

    private enum CodingKeys: String, CodingKey {
        case mixer, layers, modelSize, heads, feedForwardSize, dropout, tiedEmbeddings,
             favorFeatures, dpfpOrder, positionalEncoding, normalization, phi
    }

    /// Decodes a configuration; every key but `mixer` may be missing (then
    /// it takes `init`'s default). Call `validate()` on the result.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = LanguageModelConfig(mixer: try c.decode(LanguageModelMixer.self, forKey: .mixer))
        self = d
        layers = try c.decodeIfPresent(Int.self, forKey: .layers) ?? d.layers
        modelSize = try c.decodeIfPresent(Int.self, forKey: .modelSize) ?? d.modelSize
        heads = try c.decodeIfPresent(Int.self, forKey: .heads) ?? d.heads
        feedForwardSize = try c.decodeIfPresent(Int.self, forKey: .feedForwardSize) ?? d.feedForwardSize
        dropout = try c.decodeIfPresent(Double.self, forKey: .dropout) ?? d.dropout
        tiedEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tiedEmbeddings) ?? d.tiedEmbeddings
        favorFeatures = try c.decodeIfPresent(Int.self, forKey: .favorFeatures) ?? d.favorFeatures
        dpfpOrder = try c.decodeIfPresent(Int.self, forKey: .dpfpOrder) ?? d.dpfpOrder
        positionalEncoding = try c.decodeIfPresent(Bool.self, forKey: .positionalEncoding) ?? d.positionalEncoding
        normalization = try c.decodeIfPresent(FeatureNormalization.self, forKey: .normalization)
        phi = try c.decodeIfPresent(FeatureMap.self, forKey: .phi)
    }

    // MARK: derived sizes

    /// dk = D / H, the width of a query, key and value per head.
    public var headSize: Int { modelSize / max(heads, 1) }

    /// phi of the fast-weight mixers (nil for softmax).
    public var featureMap: FeatureMap? {
        guard let own = mixer.featureMap(dpfpOrder: dpfpOrder, favorFeatures: favorFeatures) else { return nil }
        return mixer.isDeltaNet ? own : (phi ?? own)
    }

    /// n on phi(q) and phi(k): `normalization` when set, else the mixer's own.
    public var featureNormalization: FeatureNormalization { normalization ?? mixer.normalization }

    /// Dphi, the size of phi(k) (0 for softmax).
    public var featureSize: Int { featureMap?.outputSize(inputSize: headSize) ?? 0 }

    /// c, the factor on every head's output before the output projection:
    /// 1/sqrt(dk) for the fast-weight mixers (the official layers'
    /// `self.scale * layer_out`), 1 for softmax (its 1/sqrt(dk) is inside the softmax).
    public var attentionOutputScale: Float {
        mixer.carriesState ? 1 / Float(headSize).squareRoot() : 1
    }

    /// The `DeltaNetLayer` of the `deltanet` (`.deltaNet` preset, dv = dk) and
    /// `gated-deltanet` (`.gatedDeltaNet` preset, dv = 2 dk) mixers at D, H,
    /// dk = D / H; nil for the other mixers.
    public var deltaNetConfig: DeltaNetLayerConfig? {
        switch mixer {
        case .deltaNet: return .deltaNet(modelSize: modelSize, heads: heads, headSize: headSize)
        case .gatedDeltaNet: return .gatedDeltaNet(modelSize: modelSize, heads: heads, headSize: headSize)
        default: return nil
        }
    }

    /// dv, the width of a value per head (the rows of each head's S): dk,
    /// or the DeltaNet preset's (2 dk for `gated-deltanet`).
    public var valueSize: Int { deltaNetConfig?.valueSize ?? headSize }

    /// The width of the fused input projection: 3D, plus H beta logits for
    /// the delta rules; for the DeltaNet mixers the layer's
    /// `[q | k | v | b | a | g]` row (`DeltaNetLayerConfig.projectionSize`).
    public var projectionSize: Int {
        deltaNetConfig?.projectionSize ?? 3 * modelSize + (mixer.rule == .delta ? heads : 0)
    }

    /// The number of trainable scalars the model registers. Per block:
    /// two layer norms, the mixer (`P D + D D`; DeltaNet: `P D` + the three
    /// conv kernels `(2 H dk + H dv) K` + (gated) A_log and dt_bias `2H` +
    /// the norm's `dv` + `D H dv`) and the feed-forward network.
    /// (Exact for a valid configuration: `validate()` keeps it below 2^53.)
    public var parameterCount: Int { Int(parameterCountInDouble) }

    /// The same count in Double: cannot overflow, so the checks can read it
    /// before the sizes are known to be sane (exact below 2^53).
    var parameterCountInDouble: Double {
        let (V, D, F, P) = (Double(LanguageModelConfig.vocabularySize), Double(modelSize), Double(feedForwardSize),
                            Double(projectionSize))
        var mix = P * D + D * D
        if let c = deltaNetConfig {
            let (H, dk, dv) = (Double(c.heads), Double(c.headSize), Double(c.valueSize))
            mix = P * D + (2 * H * dk + H * dv) * Double(c.convolutionSize) + (c.gated ? 2 * H : 0) + dv + D * H * dv
        }
        let block = 2 * D + mix + 2 * D + (F * D + F) + (D * F + D)
        return V * D + Double(layers) * block + 2 * D + (tiedEmbeddings ? V : V * D + V)
    }

    // MARK: validation

    /// Throws `FWError.invalidArgument` with a one-line message naming the
    /// first field that is out of range: every size in 1...`SizeLimits.maxExtent`,
    /// D divisible by H, dropout in [0, 1), the fused projections' widths
    /// within OpenBLAS's sizes, fewer than 2^53 parameters, `dpfpOrder` in
    /// 1...2dk-1 and Dphi within bounds for the dpfp and favor mixers.
    public func validate() throws {
        let max = SizeLimits.maxExtent
        for (name, value) in [("layers", layers), ("modelSize", modelSize), ("heads", heads),
                              ("feedForwardSize", feedForwardSize), ("favorFeatures", favorFeatures),
                              ("dpfpOrder", dpfpOrder)] {
            try SizeLimits.check(value, in: 1...max, "LanguageModelConfig: \(name)")
        }
        guard modelSize % heads == 0 else {
            throw FWError.invalidArgument("LanguageModelConfig: modelSize \(modelSize) is not divisible by heads \(heads)")
        }
        guard dropout.isFinite, dropout >= 0, dropout < 1 else {
            throw FWError.invalidArgument("LanguageModelConfig: dropout must be in [0, 1), got \(dropout)")
        }
        // The fused projection is a BLAS extent too (D <= 2^31 - 1 leaves 3D unchecked).
        let p = try SizeLimits.product([3, modelSize], "LanguageModelConfig: the fused projection 3 * modelSize") + heads
        guard p <= max else {
            throw FWError.invalidArgument("LanguageModelConfig: the fused projection 3 * modelSize + heads = \(p) exceeds \(max), the largest size OpenBLAS takes")
        }
        if let c = deltaNetConfig {
            // The layer's projection and value widths are BLAS extents too (gated: 6D + 2H and 2D).
            // (D passed the check above, so H dv <= 2D and the sum cannot overflow.)
            let values = c.heads * c.valueSize
            let width = 2 * modelSize + values + (c.outputGate ? values : 0) + 2 * heads
            guard values <= max, width <= max else {
                throw FWError.invalidArgument("LanguageModelConfig: the \(mixer.rawValue) projection of \(width) columns (H dv = \(values)) exceeds \(max), the largest size OpenBLAS takes")
            }
            do {
                try c.validate()
            } catch let FWError.invalidArgument(message) {
                throw FWError.invalidArgument("LanguageModelConfig: \(message)")
            }
        }
        // Far beyond any machine's memory, and beyond what an Int count (and Double) holds exactly.
        let count = parameterCountInDouble
        guard count < 9.007e15 else {
            throw FWError.invalidArgument("LanguageModelConfig: \(layers) layers of modelSize \(modelSize) and feedForwardSize \(feedForwardSize) would have \(Float(count)) parameters, more than 2^53")
        }
        if let map = featureMap {
            do {
                try map.validate(inputSize: headSize)
            } catch let FWError.invalidArgument(message) {
                throw FWError.invalidArgument("LanguageModelConfig: \(message) (head size = modelSize / heads)")
            }
        }
        for (name, given) in [("normalization", normalization?.description), ("phi", phi?.description)] {
            if let given, mixer == .softmax || mixer.isDeltaNet {
                throw FWError.invalidArgument("LanguageModelConfig: \(name) \(given) is for the fast weight mixers linear, delta, dpfp-*, favor-*; \(mixer.rawValue) has its own")
            }
        }
        if normalization != nil || phi != nil, let map = featureMap {
            do {
                try FeatureNormalization.validate(map: map, normalization: featureNormalization)
            } catch let FWError.invalidArgument(message) {
                throw FWError.invalidArgument("LanguageModelConfig: \(message)")
            }
            if mixer.usesDenominator && !map.isNonNegative {
                throw FWError.invalidArgument("LanguageModelConfig: the \(mixer.rawValue) mixer divides by z . q' and needs a non-negative phi, not \(map)")
            }
        }
    }

    // MARK: memory

    /// An estimate in bytes (Double, so it cannot overflow) of what one
    /// training step `lossAndGradients` over `[batch, context]` tokens
    /// allocates at its peak: the parameters with their gradients and Adam's
    /// two moments, every block's saved activations (the fast weight
    /// programmer's saved states per chunk of 32, or softmax's `[B, H, T, T]`
    /// probabilities), the logits and their gradient, and one block's
    /// backward temporaries. Pass it to `MemoryBudget.check` before building
    /// a run; `evaluate` and `logits` need less.
    public func memoryEstimate(batch: Int, context: Int) -> Double {
        let (b, t) = (Double(batch), Double(context))
        let n = b * t
        let (D, H, F) = (Double(modelSize), Double(heads), Double(feedForwardSize))
        let P = Double(projectionSize), V = Double(LanguageModelConfig.vocabularySize)
        let parameters = 4 * parameterCountInDouble
        // Per row and block: x, u, mixer output, its mask, h, w, FF's z and a,
        // FF output, its mask, y.
        var perRow = 9 * D + 2 * F
        var perSequence = 0.0
        var backwardRow = 2 * P + 10 * D + 2 * F
        var backwardSequence = 0.0
        if mixer.carriesState {
            let dphi = Double(featureSize), dvi = Double(valueSize) + (mixer.usesDenominator ? 1 : 0)
            // p, q, k, v', beta, q', k', the op's outputs, o, merged, and what
            // the op saves (a state per chunk of 32, a few rows per step).
            perRow += P + 2 * D + 2 * H * dvi + H + 2 * H * dphi + 2 * D
                + H * ((dphi * dvi) / 32 + dphi + 2 * dvi + 2)
            perSequence += 2 * H * dphi * dvi
            backwardRow += 4 * H * dphi + 2 * H * dvi
            backwardSequence += 2 * H * dphi * dvi
            if let c = deltaNetConfig {
                // DeltaNet also keeps the convolutions' pre-activations and
                // outputs (C = 2 H dk + H dv), the gates' logits, the normed
                // heads, its r and g.
                let C = Double(2 * c.heads * c.headSize + c.heads * c.valueSize)
                perRow += 2 * C + 3 * H * dvi + 3 * H
                backwardRow += 2 * C + 2 * H * dvi
            }
        } else {
            // p, q, k, v, heads, merged and the probabilities [T, T] per head.
            perRow += 7 * D + H * t
            backwardRow += 3 * D
            backwardSequence += Double(ThreadOwnership.workers) * t * t / max(b, 1)
        }
        let activations = Double(layers) * (n * perRow + b * perSequence)
        let backward = n * backwardRow + b * backwardSequence
        let head = n * (3 * V + 4 * D)
        return MemoryBudget.floats(parameters + activations + backward + head)
    }
}
