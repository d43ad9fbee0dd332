import FastWeights
import Foundation

/// The training-step rows of `make bench`: one whole step of a character
/// LM per mixer, as a user waits for it (the config: byte embedding,
/// 2 pre-norm blocks, D = 128, 8 heads of 16, feed-forward 512, batch
/// 16 x 256 bytes, cross-entropy, gradient clipping, Adam; no dropout).
public enum LanguageModelStepBenchmarks {
    /// One configuration to measure.
    public struct Case: Sendable {
        public var mixer: LanguageModelMixer
        public var layers = 2, modelSize = 128, heads = 8, feedForward = 512, batch = 16, context = 256
    }

    /// Every mixer at the config.
    public static func standardCases() -> [Case] { LanguageModelMixer.allCases.map { Case(mixer: $0) } }

    /// Times zero-gradients, loss and gradients, clipping and the Adam update
    /// (best of several steps on the same batch). FLOPs per step: 6 per
    /// weight of the blocks' matrices and the head per token (forward 2,
    /// backward 4), plus the mixing at 3x its forward count (fast weights
    /// about 8 H dv Dphi per token for the recurrent reads and writes, plus
    /// DeltaNet's short convolutions; softmax 4 H dk per token per earlier
    /// position, T / 2 on average): `LanguageModelFlops`.
    public static func run(_ c: Case, peak: Double) throws -> BenchRow {
        var m = LanguageModelConfig(mixer: c.mixer)
        m.layers = c.layers; m.modelSize = c.modelSize; m.heads = c.heads; m.feedForwardSize = c.feedForward
        m.dropout = 0
        var rng = SeededRNG(seed: 9)
        var store = ParameterStore()
        let model = try CharLanguageModel(config: m, store: &store, rng: &rng)
        var adam = Adam(learningRate: 1e-3)
        let n = c.batch * c.context
        let tokens = (0..<n).map { _ in Int32(rng.next() % 96 + 32) }
        let targets = (0..<n).map { _ in Int32(rng.next() % 96 + 32) }
        Measure.resetPeakResident()
        let seconds = Measure.bestSeconds(minRuns: 3, minSeconds: 1) {
            store.zeroGradients()
            _ = try! model.lossAndGradients(tokens: tokens, targets: targets, batchSize: c.batch, state: nil,
                                            store: &store, training: true, rng: &rng)
            store.clipGradients(maxNorm: 0.25)
            adam.update(&store)
        }
        let dense = 6 * LanguageModelFlops.denseWeights(m)
        let mixing = 3 * LanguageModelFlops.mixing(m, keys: Double(c.context) / 2)
        let flops = Double(n) * (dense + Double(c.layers) * mixing)
        return BenchRow(
            op: "lm-step", algo: c.mixer.rawValue, pass: "forward+backward", B: c.batch, H: c.heads, T: c.context,
            dk: m.headSize, dv: m.valueSize, chunk: nil, seconds: seconds, tokens_per_s: Double(n) / seconds,
            gflops: flops / seconds / 1e9, sgemm_peak_gflops: peak, peak_fraction: flops / seconds / 1e9 / peak,
            peak_rss_mib: Measure.peakResidentMiB(), blas_core: BLASCore.name, threads: ThreadOwnership.workers)
    }
}
