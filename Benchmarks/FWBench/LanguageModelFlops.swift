import FastWeights

/// Per-token FLOP counts of one `CharLanguageModel` forward, shared by the
/// LM step rows and the decode rows.
enum LanguageModelFlops {
    /// The multiply-adds per token of the blocks' weight matrices and the
    /// head: per block the mixer's projections (`4 D^2`: q, k, v (+ beta)
    /// and out; DeltaNet: `P D + D H dv`, P its fused row) and the
    /// feed-forward `2 D F`, plus the head `256 D`.
    static func denseWeights(_ m: LanguageModelConfig) -> Double {
        let (D, F) = (Double(m.modelSize), Double(m.feedForwardSize))
        let mixer = m.mixer.isDeltaNet ? Double(m.projectionSize) * D + D * Double(m.heads * m.valueSize) : 4 * D * D
        return Double(m.layers) * (mixer + 2 * D * F) + D * 256
    }

    /// The FLOPs per token of one block's mixing in a forward, with `keys`
    /// earlier positions visible to softmax: softmax `4 H dk keys`; the fast
    /// weights about `8 H dv Dphi` for the reads and the write (DeltaNet:
    /// Dphi = dk, plus its three K-tap convolutions, `2 K (2 H dk + H dv)`).
    static func mixing(_ m: LanguageModelConfig, keys: Double) -> Double {
        let (H, dk, dv) = (Double(m.heads), Double(m.headSize), Double(m.valueSize))
        if m.mixer == .softmax { return 4 * H * dk * keys }
        let conv = m.convStateShape(batch: 1).map { 2 * Double($0[1] + 1) * Double($0[2]) } ?? 0
        return 8 * H * dv * Double(m.featureSize) + conv
    }
}
