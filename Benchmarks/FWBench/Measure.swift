import FastWeights
import Foundation

/// glibc's `malloc_trim` (malloc.h is not in Swift's Glibc module).
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32

/// Timing and memory probes for the benchmarks.
public enum Measure {
    /// Best wall-clock seconds of `body` over repetitions: one warm-up call,
    /// then at least `minRuns` calls and until `minSeconds` have passed.
    public static func bestSeconds(minRuns: Int = 3, minSeconds: Double = 0.6, _ body: () -> Void) -> Double {
        body()
        var best = Double.infinity
        var total = 0.0
        var runs = 0
        while runs < minRuns || total < minSeconds {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
            best = min(best, dt)
            total += dt
            runs += 1
            if runs >= 50 { break }
        }
        return best
    }

    /// Resets the kernel's record of this process's peak resident memory
    /// (Linux: writing 5 to /proc/self/clear_refs), so the next
    /// `peakResidentMiB()` reports the peak of what runs in between.
    public static func resetPeakResident() {
        // Give back freed heap first (the tool keeps it, see MemoryPolicy), so
        // the peak measured next is this pass's own.
        _ = glibcMallocTrim(0)
        if let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") {
            h.write("5".data(using: .utf8)!)
            try? h.close()
        }
    }

    /// Peak resident memory (VmHWM) in MiB, or -1 when unavailable.
    public static func peakResidentMiB() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? -1
            return kb / 1024
        }
        return -1
    }

    /// Aggregate sgemm GFLOP/s of square `n x n` products run on `threads`
    /// workers at once, each with single-threaded OpenBLAS: the same thread
    /// arrangement the batched ops use, so op/peak is a fair ratio.
    public static func sgemmPeak(n: Int, threads: Int) -> Double {
        var rng = SeededRNG(seed: 7)
        let a = rng.normalTensor([n, n]), b = rng.normalTensor([n, n])
        // Enough products per call that thread start-up does not dominate.
        let reps = max(1, Int(4e8 / (2 * Double(n * n * n))))
        let c = UnsafeMutablePointer<Float>.allocate(capacity: threads * n * n)
        defer { c.deallocate() }
        let cBox = UncheckedSendable(c)
        let seconds = a.storage.withUnsafeBufferPointer { ap in
            b.storage.withUnsafeBufferPointer { bp in
                let ins = UncheckedSendable((ap.baseAddress!, bp.baseAddress!))
                return bestSeconds(minRuns: 3, minSeconds: 0.5) {
                    ThreadOwnership.onWorkers(threads) { w in
                        let (ap, bp) = ins.value
                        for _ in 0..<reps {
                            BLAS.sgemm(.none, .none, m: n, n: n, k: n, alpha: 1, a: ap, lda: n,
                                       b: bp, ldb: n, beta: 0, c: cBox.value + w * n * n, ldc: n)
                        }
                    }
                }
            }
        }
        return Double(threads) * Double(reps) * 2 * Double(n * n * n) / seconds / 1e9
    }
}
