import FWCore

extension FastWeightProgrammer {
    /// The default chunk length of the chunked algorithm.
    public static let defaultChunk = 64

    /// The engine's choice of algorithm when the caller leaves it open.
    ///
    /// The recurrent form's rank-1 writes and reads stay in cache and win at
    /// small state sizes and short sequences; the chunked form's `sgemm`s win
    /// once the state is large enough. The threshold is measured by
    /// `make bench` on this machine class (see README, "Choosing the algorithm").
    public static func automaticAlgorithm(rule: FastWeightRule, T: Int, dphi: Int, dv: Int) -> FWPAlgorithm {
        if T < recurrentBelowT { return .recurrent }
        return dphi * dv < recurrentBelowStateSize ? .recurrent : .chunked(size: defaultChunk)
    }

    /// Sequences shorter than this run recurrently.
    static let recurrentBelowT = 16
    /// States with fewer entries than this run recurrently.
    static let recurrentBelowStateSize = 32 * 32
}
