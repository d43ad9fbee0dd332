import FWCore

/// The processes of a data-parallel run, as a trainer needs them: every
/// process holds the whole model, computes the gradients of its share of
/// each global batch, and the shares are summed before the optimiser step.
///
/// `FWDistributed.MPIGroup` implements it over MPI; the core library never
/// links MPI. Every call is collective: all `size` processes make the same
/// calls in the same order, and every rank gets the same result.
public protocol DataParallelGroup: AnyObject {
    /// This process, `0..<size`; rank 0 alone writes logs and checkpoints.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }

    /// `buffer[i] <- sum over the ranks of buffer[i]`, in place, the same bits on every rank.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    /// Starts `allReduceSum(buffer)` and returns at once; the sum is in
    /// `buffer` after `waitForStarted()`. `buffer` must stay allocated and
    /// untouched until then. Every rank starts the same reductions in the same order.
    func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    /// Lets the started reductions progress without waiting (call it between pieces of work).
    func progressStarted() throws
    /// Waits until every started reduction is complete.
    func waitForStarted() throws
    /// The elementwise sum over the ranks of `values` (loss sums, counts).
    func allReduceSum(_ values: [Double]) throws -> [Double]
    /// Every rank's `local` (the same count on every rank), back to back in rank order, on every rank.
    func allGather(_ local: [Float]) throws -> [Float]
    /// Whether every rank passed the same `value` (min == max over the ranks).
    func allAgree(_ value: UInt64) throws -> Bool
    /// Waits for every rank.
    func barrier() throws
}

/// The first 64 bits of the SHA-256 of some bytes: the fingerprint that
/// data-parallel ranks compare (configuration, corpus, parameters) before
/// they train together, and that checks an all-reduce gave the same bits everywhere.
public enum Fingerprint {
    public static func of(_ bytes: [UInt8]) -> UInt64 {
        SHA256.hash(bytes).prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The fingerprint of Float32 values (their bit patterns).
    public static func of(_ values: [Float]) -> UInt64 {
        of(values.withUnsafeBytes { Array($0) })
    }
}
