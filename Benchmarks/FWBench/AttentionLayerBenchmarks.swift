import FastWeights

/// The model-layer rows of `make bench`: one multi-head attention layer
/// (`[B, T, D] -> [B, T, D]`, D = 256, H = 8 heads of 32), forward+backward,
/// as a delta-rule fast weight programmer (DPFP nu = 1, sum-normalised,
/// the engine's automatic algorithm) and as causal softmax attention, at
/// growing T: where linear-time fast weights overtake quadratic softmax.
public enum AttentionLayerBenchmarks {
    /// One configuration to measure.
    public struct Case: Sendable {
        /// "fwp-layer" or "softmax-layer".
        public var layer: String
        public var B = 4, T = 256, D = 256, H = 8, dk = 32
    }

    /// Both layers at each length, B * T = 4096 tokens per call.
    public static func standardCases(lengths: [Int] = [256, 1024, 4096]) -> [Case] {
        lengths.flatMap { T in
            ["fwp-layer", "softmax-layer"].map { Case(layer: $0, B: max(1, 4096 / T), T: T) }
        }
    }

    /// Measures forward+backward of one case. FLOPs: the projections
    /// (2 n D P forward, twice that backward) plus the mixing: for the FWP
    /// layer the op's own count (`FastWeightProgrammer.flops`), for softmax
    /// 2 * 2 * B H (T^2 / 2) dk forward (QK^T and PV over the causal half),
    /// twice that backward.
    public static func run(_ c: Case, peak: Double) throws -> BenchRow {
        var rng = SeededRNG(seed: 3)
        var store = ParameterStore()
        let x = rng.normalTensor([c.B, c.T, c.D])
        let dy = rng.normalTensor([c.B, c.T, c.D])
        let n = Double(c.B * c.T)
        let projectionFlops: Double
        let mixingFlops: Double
        let seconds: Double
        Measure.resetPeakResident()
        if c.layer == "fwp-layer" {
            let config = FastWeightLayerConfig(modelSize: c.D, heads: c.H, headSize: c.dk, rule: .delta,
                                               featureMap: .dpfp(order: 1), normalization: .sum)
            let layer = try FastWeightLayer(config, name: "mix", store: &store, rng: &rng)
            projectionFlops = 3 * 2 * n * Double(c.D) * Double(config.projectionSize + c.H * c.dk)
            let shape = SequenceShape(T: c.T, dphi: 2 * c.dk, dv: c.dk)
            let algorithm = FastWeightProgrammer.automaticAlgorithm(rule: .delta, T: c.T, dphi: 2 * c.dk, dv: c.dk)
            mixingFlops = Double(c.B * c.H) * FastWeightProgrammer.flops(rule: .delta, algorithm: algorithm, shape: shape, backward: true)
            seconds = Measure.bestSeconds(minRuns: 2, minSeconds: 0.5) {
                var r = rng
                let (_, cache) = try! layer.forward(x, store: store, training: true, rng: &r)
                _ = try! layer.backward(dy, cache: cache, store: &store)
            }
        } else {
            let layer = try SoftmaxAttentionLayer(modelSize: c.D, heads: c.H, headSize: c.dk, name: "mix", store: &store, rng: &rng)
            projectionFlops = 3 * 2 * n * Double(c.D) * Double(4 * c.H * c.dk)
            mixingFlops = 3 * 2 * 2 * Double(c.B * c.H) * Double(c.T) * Double(c.T) / 2 * Double(c.dk)
            seconds = Measure.bestSeconds(minRuns: 2, minSeconds: 0.5) {
                var r = rng
                let (_, cache) = try! layer.forward(x, store: store, training: true, rng: &r)
                _ = try! layer.backward(dy, cache: cache, store: &store)
            }
        }
        let flops = projectionFlops + mixingFlops
        return BenchRow(
            op: c.layer, algo: c.layer == "fwp-layer" ? "delta dpfp:1" : "causal softmax", pass: "forward+backward",
            B: c.B, H: c.H, T: c.T, dk: c.dk, dv: c.dk, chunk: nil, seconds: seconds,
            tokens_per_s: n / seconds, gflops: flops / seconds / 1e9,
            sgemm_peak_gflops: peak, peak_fraction: flops / seconds / 1e9 / peak,
            peak_rss_mib: Measure.peakResidentMiB(), blas_core: BLASCore.name, threads: ThreadOwnership.workers)
    }
}
