import FastWeights
import Foundation

/// One row of the language-modelling table: a mixer, truncated or carried.
struct Schlag2021LMRowPlan: Equatable, Sendable {
    /// The table's name, e.g. "Delta Net".
    var name: String
    var mixer: LanguageModelMixer
    var mode: LanguageModelRunConfig.ContextMode
    /// Sinusoidal positions added to the embeddings (only the extra softmax row).
    var positionalEncoding = false
    /// n on phi(q), phi(k) in place of the mixer's own (the l2 rows of the carry diagnosis).
    var normalization: FeatureNormalization? = nil
    /// phi in place of the mixer's own (the identity rows of the carry diagnosis).
    var phi: FeatureMap? = nil

    /// phi as the report names it: the override, else the mixer's (`Schlag2021LMReport.phi`).
    var phiName: String { phi?.description ?? Schlag2021LMReport.phi(mixer) }
    /// n on phi(q), phi(k) as the report names it: the override, else the mixer's ("-" for softmax).
    var normalizationName: String { mixer == .softmax ? "-" : (normalization ?? mixer.normalization).description }

    /// The row's folder and config file name under DIR/runs/, e.g. `delta`,
    /// `delta-carry`, `delta-l2-carry`, `delta-identity-l2`, `softmax-pe`.
    var folderName: String {
        mixer.rawValue + (phi.map { "-\($0)" } ?? "") + (normalization.map { "-\($0)" } ?? "")
            + (mode == .truncated ? "" : "-" + mode.rawValue) + (positionalEncoding ? "-pe" : "")
    }
}

/// Schlag et al. 2021, section 6.3 (WikiText-103, small config) at CPU
/// scale on Shakespeare: the rows, the one configuration every row shares,
/// and the paper's numbers.
enum Schlag2021LM {
    /// The truncated rows (Table 2), then the carry-over rows (Table 4).
    static let rows: [Schlag2021LMRowPlan] = [
        .init(name: "Transformer (softmax)", mixer: .softmax, mode: .truncated),
        .init(name: "Linear Transformer", mixer: .linear, mode: .truncated),
        .init(name: "Delta Net", mixer: .delta, mode: .truncated),
        .init(name: "DPFP, sum rule", mixer: .dpfpSum, mode: .truncated),
        .init(name: "DPFP, delta rule", mixer: .dpfpDelta, mode: .truncated),
        .init(name: "Performer (FAVOR+)", mixer: .favorSum, mode: .truncated),
        .init(name: "Performer, delta rule", mixer: .favorDelta, mode: .truncated),
        // Not in the paper (no numbers): flash-linear-attention's DeltaNet and Gated DeltaNet layers
        // (short convolutions, l2-normalised q and k, RMS-normed output; the gated one decays S).
        .init(name: "DeltaNet (FLA)", mixer: .deltaNet, mode: .truncated),
        .init(name: "Gated DeltaNet (FLA)", mixer: .gatedDeltaNet, mode: .truncated),
        .init(name: "Linear Transformer, carried", mixer: .linear, mode: .carry),
        .init(name: "Delta Net, carried", mixer: .delta, mode: .carry),
        // The carried rows read contiguous streams, the truncated ones random windows; these two
        // rows read the carried rows' streams from empty fast weights: Table 4's comparison at
        // one data order (the paper's loader reads streams for both tables).
        .init(name: "Linear Transformer, streams", mixer: .linear, mode: .streams),
        .init(name: "Delta Net, streams", mixer: .delta, mode: .streams),
        // Every row above has no positional encoding (the official carry-over set-up); the fast
        // weight mixers are recurrent and need none, but softmax attention then sees positions
        // only through its causal mask. This row gives it sinusoidal positions.
        .init(name: "Transformer (softmax), positions", mixer: .softmax, mode: .truncated, positionalEncoding: true),
        // Why carrying hurts the paper's Delta Net here (README, "What it shows"): sum-normalised
        // keys are nearly parallel, so a write erases little along the directions in which keys
        // differ and a carried state keeps stale content there. The same rule with l2-normalised
        // keys (and FLA's DeltaNet, whose keys are l2-normalised) can erase what it overwrites.
        .init(name: "Delta Net, l2 keys", mixer: .delta, mode: .truncated, normalization: .l2),
        .init(name: "Delta Net, l2 keys, carried", mixer: .delta, mode: .carry, normalization: .l2),
        .init(name: "Delta Net, identity phi, l2 keys", mixer: .delta, mode: .truncated, normalization: .l2, phi: .identity),
        .init(name: "Delta Net, identity phi, l2 keys, carried", mixer: .delta, mode: .carry, normalization: .l2, phi: .identity),
        .init(name: "DeltaNet (FLA), carried", mixer: .deltaNet, mode: .carry),
    ]

    /// The paper's WikiText-103 perplexities (valid, test), small config:
    /// Table 2 (truncated) and Table 4 (carried). nil: no such row in the paper.
    static func paper(_ row: Schlag2021LMRowPlan) -> (valid: Double, test: Double)? {
        if row.normalization != nil || row.phi != nil { return nil }   // not the paper's layer
        switch (row.mixer, row.mode) {
        case (.softmax, .truncated): return (33.0, 34.1)   // (the paper's Transformer has positions)
        case (.linear, .truncated): return (37.1, 38.3)
        case (.delta, .truncated): return (34.1, 35.2)
        case (.favorSum, .truncated): return (39.0, 39.6)
        case (.favorDelta, .truncated): return (36.1, 37.2)
        case (.delta, .carry): return (27.8, 29.4)
        case (.linear, .carry): return (.infinity, .infinity)   // "> 260": diverged
        default: return nil
        }
    }

    /// The configuration every row shares (the mixer and mode set per row).
    static func config(mixer: LanguageModelMixer, mode: LanguageModelRunConfig.ContextMode, data: String,
                       quick: Bool, positionalEncoding: Bool = false,
                       normalization: FeatureNormalization? = nil, phi: FeatureMap? = nil) -> LanguageModelRunConfig {
        var m = LanguageModelConfig(mixer: mixer)
        m.positionalEncoding = positionalEncoding
        m.normalization = normalization
        m.phi = phi
        if quick {
            m.layers = 2; m.modelSize = 64; m.heads = 4; m.feedForwardSize = 256
        } else {
            m.layers = 4; m.modelSize = 128; m.heads = 8; m.feedForwardSize = 512
        }
        m.dropout = 0
        var c = LanguageModelRunConfig(model: m, data: data)
        c.mode = mode
        if quick {
            c.context = 128; c.batchSize = 8; c.maxSteps = quickSteps; c.evalEvery = 100; c.evalBytes = 8192
            c.warmupSteps = 20
        } else {
            c.context = 256; c.batchSize = 16; c.maxSteps = fullSteps; c.evalEvery = 100; c.evalBytes = 32_768
            c.warmupSteps = 100
        }
        c.learningRate = 2e-3
        c.minLearningRateFactor = 0.1
        c.clipNorm = 0.25
        return c
    }

    static let fullSteps = 700
    static let quickSteps = 1000
}
