import FWCore

/// Sizes of one `(b, h)` sequence as the rule kernels see it.
///
/// The rule kernels (`SumRule`, `DeltaRule`) work on one sequence at a time,
/// on raw row-major pointers:
///
/// * `q`, `k`: `[T, dphi]` — the feature-mapped, normalised q'_t and k'_t;
/// * `v`: `[T, dv]`; `beta`: `[T]` (delta rule);
/// * `y`: `[T, dv]`;
/// * the state is kept **transposed** inside the engine: `S^T`, `[dphi, dv]`,
///   so that a chunk's read `Q S^T` is a plain NN `sgemm` (docs/contract.md section 4
///   leaves the internal layout free; only files use `[Dv, Dphi]`).
///
/// The batched op (`FastWeightProgrammer`) applies the feature map and the
/// normalisation, then runs a kernel per sequence in parallel
/// (`ThreadOwnership.forEachSequence`); kernels never start threads.
public struct SequenceShape: Sendable, Equatable {
    /// Time steps.
    public var T: Int
    /// Size of the feature vectors k'_t and q'_t.
    public var dphi: Int
    /// Size of the values v_t and outputs y_t.
    public var dv: Int

    public init(T: Int, dphi: Int, dv: Int) {
        self.T = T
        self.dphi = dphi
        self.dv = dv
    }

    /// Number of floats in one state `S^T`.
    public var stateCount: Int { dphi * dv }

    /// Number of chunks of length `chunk` covering `T` (the last may be partial).
    public func chunkCount(_ chunk: Int) -> Int { T / chunk + (T % chunk == 0 ? 0 : 1) }  // no T + chunk overflow
}
