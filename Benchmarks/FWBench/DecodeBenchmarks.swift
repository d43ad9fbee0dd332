import FastWeights
import Foundation

/// The decode rows of `make bench`: generating one byte at a time at batch 1
/// with `LanguageModelStream`, per mixer, after a prompt of `context` bytes.
/// A fast weight model's per-token cost does not depend on the context (its
/// state has a fixed size); softmax attention reads a key/value cache that
/// grows with it. Model: 4 blocks, D = 128, 8 heads of 16, feed-forward 512.
public enum DecodeBenchmarks {
    /// One configuration to measure.
    public struct Case: Sendable {
        public var mixer: LanguageModelMixer
        /// Bytes fed before the timed tokens.
        public var context: Int
        public var layers = 4, modelSize = 128, heads = 8, feedForward = 512
    }

    /// Every mixer at each context.
    public static func standardCases(contexts: [Int] = [256, 2048, 16_384]) -> [Case] {
        contexts.flatMap { T in LanguageModelMixer.allCases.map { Case(mixer: $0, context: T) } }
    }

    /// Feeds `context` bytes, then times `feed` of the following bytes
    /// (best of several runs of 64 tokens, each from a copy of the primed
    /// stream). FLOPs per token: 2 per weight of the blocks' matrices and
    /// the head, plus the mixing (fast weights: about 8 H dv Dphi for the
    /// reads and the write, plus DeltaNet's convolutions; softmax: 4 H dk
    /// per cached position): `LanguageModelFlops`.
    public static func run(_ c: Case, peak: Double) throws -> BenchRow {
        var m = LanguageModelConfig(mixer: c.mixer)
        m.layers = c.layers; m.modelSize = c.modelSize; m.heads = c.heads; m.feedForwardSize = c.feedForward
        var rng = SeededRNG(seed: 5)
        var store = ParameterStore()
        let model = try CharLanguageModel(config: m, store: &store, rng: &rng)
        var stream = try LanguageModelStream(model: model, store: store)
        Measure.resetPeakResident()
        var byte: UInt8 = 65
        for i in 0..<c.context { _ = try stream.feed(UInt8(32 + (i * 7 + Int(byte)) % 90)); byte &+= 1 }
        let timed = 64
        let primed = stream
        let seconds = Measure.bestSeconds(minRuns: 2, minSeconds: 0.3) {
            var s = primed
            for t in 0..<timed { _ = try! s.feed(UInt8(40 + t % 60)) }
        } / Double(timed)
        let dense = 2 * LanguageModelFlops.denseWeights(m)
        let mixing = LanguageModelFlops.mixing(m, keys: Double(c.context))
        let flops = dense + Double(c.layers) * mixing
        return BenchRow(
            op: "decode", algo: c.mixer.rawValue, pass: "step", B: 1, H: c.heads, T: c.context,
            dk: m.headSize, dv: m.valueSize, chunk: nil, seconds: seconds, tokens_per_s: 1 / seconds,
            gflops: flops / seconds / 1e9, sgemm_peak_gflops: peak, peak_fraction: flops / seconds / 1e9 / peak,
            peak_rss_mib: Measure.peakResidentMiB(), blas_core: BLASCore.name, threads: 1)
    }

    /// "softmax decoding is slower than every fast weight mixer from context N on".
    public static func crossoverSummary(_ rows: [BenchRow]) -> String {
        let decode = rows.filter { $0.op == "decode" }
        let contexts = Set(decode.map(\.T)).sorted()
        var parts: [String] = []
        for T in contexts {
            let at = decode.filter { $0.T == T }
            guard let softmax = at.first(where: { $0.algo == "softmax" }) else { continue }
            let fast = at.filter { $0.algo != "softmax" }
            let slowest = fast.map(\.tokens_per_s).min() ?? .nan
            parts.append(String(format: "context %d: softmax %.0f tokens/s, fast weights %.0f-%.0f", T, softmax.tokens_per_s,
                                slowest, fast.map(\.tokens_per_s).max() ?? .nan))
        }
        let first = contexts.first { T in
            let at = decode.filter { $0.T == T }
            guard let s = at.first(where: { $0.algo == "softmax" })?.tokens_per_s else { return false }
            return at.filter { $0.algo != "softmax" }.allSatisfy { $0.tokens_per_s > s }
        }
        return "decode (batch 1): " + parts.joined(separator: "; ")
            + (first.map { "; every fast weight mixer decodes faster than softmax from context \($0) on" } ?? "; softmax is not overtaken at these contexts")
    }
}
