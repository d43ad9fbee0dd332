import FWCore

extension FastWeightProgrammer {
    /// The chunk length `fwp op` uses for `--algo chunked` without `--chunk` (docs/contract.md section 6).
    public static let defaultChunk = 64

    /// The chunk length of the engine's own choice: fastest at the bench
    /// shape for both rules (T = 1024, d = 32..128; see README, "Benchmarks").
    public static let automaticChunk = 32

    /// The engine's choice of algorithm when the caller leaves it open,
    /// following the crossover `make bench` measured on this machine class
    /// (2 cores, OpenBLAS Zen kernels, forward+backward, T = 1024):
    ///
    /// * sum rule: chunked was faster at every d measured (4 to 128: 1.5x-2.4x);
    /// * delta rule: recurrent is faster at d = 8 (1.14x) and even at d = 4;
    ///   chunked wins from d = 16 on (1.7x-1.8x).
    ///
    /// So the delta rule runs recurrently when the state has at most 64
    /// entries (Dphi * Dv <= 64, e.g. 8 x 8), everything else chunked.
    public static func automaticAlgorithm(rule: FastWeightRule, T: Int, dphi: Int, dv: Int) -> FWPAlgorithm {
        if rule == .delta && dphi * dv <= recurrentMaxStateSize { return .recurrent }
        return .chunked(size: automaticChunk)
    }

    /// Delta-rule states with at most this many entries run recurrently.
    static let recurrentMaxStateSize = 64
}
