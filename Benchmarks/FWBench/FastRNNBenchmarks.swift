import FastWeights

/// The fast-weights RNN rows of `make bench` (Ba et al. 2016, docs/contract.md
/// section 5): explicit and attention forms, forward and forward+backward,
/// at B=64, N=128, Din=64, S=1, T=64 and 512.
public enum FastRNNBenchmarks {
    /// One configuration to measure.
    public struct Case: Sendable {
        public var algorithm: FastWeightsRNNAlgorithm
        public var backward: Bool
        public var B = 64, T = 64, N = 128, Din = 64, S = 1
    }

    /// The table.
    public static func standardCases(lengths: [Int] = [64, 512]) -> [Case] {
        var cases: [Case] = []
        for T in lengths {
            for algorithm in [FastWeightsRNNAlgorithm.explicit, .attention] {
                for backward in [false, true] { cases.append(Case(algorithm: algorithm, backward: backward, T: T)) }
            }
        }
        return cases
    }

    /// Measures one case; `peak` is the sgemm peak (GFLOP/s) at n = N.
    public static func run(_ c: Case, peak: Double) throws -> BenchRow {
        var rng = SeededRNG(seed: 2)
        let parameters = FastWeightsRNNParameters(hidden: c.N, input: c.Din, rng: &rng)
        let x = rng.normalTensor([c.B, c.T, c.Din])
        let dh = rng.normalTensor([c.B, c.T, c.N])
        let config = FastWeightsRNNConfig(lambda: 0.95, eta: 0.5, innerSteps: c.S, activation: .relu)
        Measure.resetPeakResident()
        let seconds = Measure.bestSeconds(minRuns: 2, minSeconds: 0.5) {
            let (_, cache) = try! FastWeightsRNN.forward(x: x, parameters: parameters, config: config, algorithm: c.algorithm)
            if c.backward { _ = try! FastWeightsRNN.backward(dh: dh, cache: cache) }
        }
        let rss = Measure.peakResidentMiB()
        let flops = FastWeightsRNN.flops(batch: c.B, time: c.T, hidden: c.N, input: c.Din, innerSteps: c.S,
                                         algorithm: c.algorithm, backward: c.backward)
        return BenchRow(
            op: "fast-rnn", algo: c.algorithm.rawValue, pass: c.backward ? "forward+backward" : "forward",
            B: c.B, H: 1, T: c.T, dk: c.Din, dv: c.N, chunk: nil, seconds: seconds,
            tokens_per_s: Double(c.B * c.T) / seconds, gflops: flops / seconds / 1e9,
            sgemm_peak_gflops: peak, peak_fraction: flops / seconds / 1e9 / peak,
            peak_rss_mib: rss, blas_core: BLASCore.name, threads: ThreadOwnership.workers)
    }
}
