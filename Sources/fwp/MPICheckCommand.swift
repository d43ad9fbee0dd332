import ArgumentParser
import FastWeights
import FWDistributed
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `fwp mpi-check`: is this MPI set-up fit for `fwp train lm --distributed`?
struct MPICheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mpi-check",
        abstract: "Check and time MPI's all-reduce, as fwp train lm --distributed uses it (run under mpirun -np N).",
        discussion: """
            Every rank reports its host and threads; the all-reduce of --floats numbers is compared \
            with a serial Float64 sum (within the fp32 summation bound, the same bits on every rank) \
            and timed (median of --repeats). Exit 2 when the check fails.
            """)

    @Option(help: "Numbers per all-reduce (one model's gradients: its parameter count).") var floats: Int = 1_000_000
    @Option(help: "Timed all-reduces.") var repeats: Int = 20

    func run() throws {
        try SizeLimits.check(floats, in: 1...(1 << 30), "--floats")
        try SizeLimits.check(repeats, in: 1...100_000, "--repeats")
        let group = try MPIGroup.start()
        do {
            var host = [CChar](repeating: 0, count: 256)
            gethostname(&host, 255)
            let name = host.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            try group.barrier()
            for r in 0..<group.size {
                if r == group.rank {
                    print("rank \(r) of \(group.size): host \(name), \(ThreadOwnership.workers) thread(s), \(ThreadOwnership.onlineCores) core(s)")
                    fflush(nil)
                }
                try group.barrier()
            }
            let result = try AllReduceCheck.run(group, floats: floats, repeats: repeats)
            let ok = try group.allReduceSum([result.passed ? 0 : 1])[0] == 0
            if group.rank == 0 {
                print(String(format: "all-reduce of %d floats (%.1f MB) over %d ranks: max error %.3g (%.2f of the fp32 bound), %@; %.3f ms (%.2f GB/s per rank)",
                             result.floats, Double(result.bytes) / 1e6, result.ranks, result.maxError, result.worstRatio,
                             result.identicalOnEveryRank ? "the same bits on every rank" : "DIFFERENT bits on the ranks",
                             result.seconds * 1e3, Double(result.bytes) / result.seconds / 1e9))
                print(ok ? "mpi-check: passed" : "mpi-check: FAILED")
            }
            group.finish()
            Glibc.exit(ok ? 0 : 2)
        } catch {
            printError("fwp: error: " + CommandLineWords.escaped("\(error)") + " (rank \(group.rank) of \(group.size))")
            group.abort(code: 2)
        }
    }
}
