import FWCore

extension FastWeightProgrammer {
    /// The chunk length `fwp op` uses for `--algo chunked` without `--chunk` (docs/contract.md section 6).
    public static let defaultChunk = 64

    /// The chunk length of the engine's own choice: fastest at the bench
    /// shape for both rules (T = 1024, d = 32..128; see README, "Benchmarks").
    public static let automaticChunk = 32

    /// The engine's choice of algorithm when the caller leaves it open: the
    /// rule's own (`FastWeightRuleKernel.automaticAlgorithm`), following the
    /// crossover `make bench` measured on this machine class (2 cores,
    /// OpenBLAS Zen kernels, forward+backward, T = 1024): chunked everywhere
    /// except the delta rule with at most 64 state entries.
    public static func automaticAlgorithm(rule: FastWeightRule, T: Int, dphi: Int, dv: Int) -> FWPAlgorithm {
        rule.kernel.automaticAlgorithm(T: T, dphi: dphi, dv: dv)
    }

    /// Floating-point operations of one sequence (forward, or forward + backward).
    public static func flops(rule: FastWeightRule, algorithm: FWPAlgorithm, shape: SequenceShape,
                             backward: Bool) -> Double {
        rule.kernel.flops(algorithm, shape, backward: backward)
    }
}
