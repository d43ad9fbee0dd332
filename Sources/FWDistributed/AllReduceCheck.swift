import Dispatch
import FWCore
import FWModels

/// Checks a data-parallel group's all-reduce against a serial sum and times
/// it, so a user can trust (and price) a cluster before training on it.
///
/// Rank r contributes `x_r[i]`, standard normal from a generator seeded
/// by (seed, r). Every rank can make every contribution, so each one sums
/// them serially in Float64 and compares with what the all-reduce gave:
///
/// ```
/// |allreduce(x)[i] - sum_r x_r[i]|  <=  size * 2^-24 * sum_r |x_r[i]|    (fp32 summation error)
/// ```
///
/// and the result must be the same bits on every rank (they would
/// otherwise take different optimiser steps).
public enum AllReduceCheck {
    /// What one check found (the same on every rank, except `maxError`, `worstRatio`).
    public struct Result: Sendable {
        public var ranks: Int
        public var floats: Int
        /// Largest |error| and its ratio to the bound (<= 1 passes).
        public var maxError: Double
        public var worstRatio: Double
        /// Every rank holds the same bits.
        public var identicalOnEveryRank: Bool
        /// Median seconds of one all-reduce of `floats` numbers.
        public var seconds: Double
        /// Bytes one rank hands to the all-reduce (4 per float).
        public var bytes: Int { 4 * floats }
        public var passed: Bool { worstRatio <= 1 && identicalOnEveryRank }
    }

    /// `x_r`: rank r's contribution.
    static func contribution(rank: Int, floats: Int, seed: UInt64) -> [Float] {
        var rng = SeededRNG(seed: seed ^ (UInt64(rank) &* 0x9E37_79B9_7F4A_7C15))
        return (0..<floats).map { _ in rng.normal() }
    }

    /// Runs the check (collective: every rank calls it with the same arguments).
    public static func run(_ group: DataParallelGroup, floats: Int, repeats: Int, seed: UInt64 = 2026) throws -> Result {
        precondition(floats > 0 && repeats > 0)
        var x = contribution(rank: group.rank, floats: floats, seed: seed)
        try x.withUnsafeMutableBufferPointer { try group.allReduceSum($0) }
        var serial = [Double](repeating: 0, count: floats)
        var magnitude = [Double](repeating: 0, count: floats)
        for r in 0..<group.size {
            let c = contribution(rank: r, floats: floats, seed: seed)
            for i in 0..<floats { serial[i] += Double(c[i]); magnitude[i] += abs(Double(c[i])) }
        }
        var maxError = 0.0, worst = 0.0
        let eps = Double(Float.ulpOfOne) / 2
        for i in 0..<floats {
            let e = abs(Double(x[i]) - serial[i])
            maxError = max(maxError, e)
            let bound = Double(group.size) * eps * magnitude[i]
            worst = max(worst, bound > 0 ? e / bound : (e > 0 ? .infinity : 0))
        }
        let same = try group.allAgree(Fingerprint.of(x))
        var times: [Double] = []
        var buffer = [Float](repeating: 1, count: floats)
        for _ in 0..<repeats {
            try group.barrier()
            let t0 = DispatchTime.now().uptimeNanoseconds
            try buffer.withUnsafeMutableBufferPointer { try group.allReduceSum($0) }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
        }
        times.sort()
        // The slowest rank's median is the step's cost.
        let median = try group.allReduceSum([times[times.count / 2]])[0] / Double(group.size)
        return Result(ranks: group.size, floats: floats, maxError: maxError, worstRatio: worst,
                      identicalOnEveryRank: same, seconds: median)
    }
}
