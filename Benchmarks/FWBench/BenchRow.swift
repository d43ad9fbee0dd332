import Foundation

/// One measured benchmark row (a line of the table, an object of the JSON).
public struct BenchRow: Codable, Sendable {
    /// `sum`, `delta`, `fast-rnn`, ...
    public var op: String
    /// `recurrent`, `chunked`, `explicit`, `attention`.
    public var algo: String
    /// `forward` or `forward+backward`.
    public var pass: String
    public var B: Int
    public var H: Int
    public var T: Int
    public var dk: Int
    public var dv: Int
    /// Chunk length (chunked rows), else nil.
    public var chunk: Int?
    /// Best wall-clock seconds of one call.
    public var seconds: Double
    /// Tokens (B * T) per second.
    public var tokens_per_s: Double
    /// Flops the algorithm performs, per second, in units of 1e9.
    public var gflops: Double
    /// The same run's sgemm peak at this size class and thread count.
    public var sgemm_peak_gflops: Double
    /// `gflops / sgemm_peak_gflops`.
    public var peak_fraction: Double
    /// The machine's limit: the best sgemm rate of the same run on every
    /// worker thread at once, at n = 1024 or at any row's size class,
    /// whichever is higher (set by `fwp bench` for every row).
    public var machine_peak_gflops: Double = 0
    /// `gflops / machine_peak_gflops`.
    public var machine_peak_fraction: Double = 0
    /// Peak resident memory of the process during the measured pass, MiB.
    public var peak_rss_mib: Double
    /// `openblas_get_corename()`.
    public var blas_core: String
    /// Worker threads (sequences in parallel, single-threaded OpenBLAS inside).
    public var threads: Int
    /// The same row's tokens/s on one worker thread (`FWP_THREADS=1`, the
    /// one-sequence rows of a multi-thread run), else nil.
    public var one_thread_tokens_per_s: Double? = nil
    /// `tokens_per_s / one_thread_tokens_per_s`: what the other cores add.
    public var gain_over_one_thread: Double? = nil
}
