import ArgumentParser
import FastWeights
#if canImport(Glibc)
import Glibc
#endif

/// `fwp`: train and evaluate the papers' experiments, run any op on `.npy`
/// files, benchmark.
///
/// Exit status: 0 on success, 2 on bad input (one line on stderr naming the
/// problem), 1 on an unexpected failure.
@main
struct FWP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fwp",
        abstract: "Fast weight programmers on OpenBLAS: conformance ops, benchmarks, experiments.",
        discussion: """
            Environment: FWP_THREADS sets the worker count (default: the online cores). \
            When OpenBLAS picks kernels older than the CPU, fwp re-runs itself with a \
            matching OPENBLAS_CORETYPE and says so on stderr; FWP_KEEP_BLAS_CORE=1 turns that off.
            """,
        subcommands: [OpCommand.self, BenchCommand.self, DataCommand.self, TrainCommand.self, EvalCommand.self, GenerateCommand.self, ReproduceCommand.self, MPICheckCommand.self])

    static func main() {
        if let text = ThreadOwnership.requestedWorkers, ThreadOwnership.parseWorkerCount(text) == nil {
            fail("FWP_THREADS must be a whole number from 1 to \(ThreadOwnership.maxWorkers), got '\(text)'")
        }
        ParentWatch.apply()
        BLASCoreFix.reexecIfNeeded()
        MemoryPolicy.keepFreedMemory()
        do {
            var command = try parseAsRoot(CommandLineWords.joiningNegativeValues(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch let error as FWError {
            fail("\(error)")
        } catch {
            if exitCode(for: error) == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            // Usage errors: one line, exit status 2 (as for every bad input).
            let line = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            fail(line)
        }
    }

    /// Prints `fwp: error: <message>` on stderr, as one line (control
    /// characters in file names or file contents are escaped), and exits
    /// with status 2.
    static func fail(_ message: String) -> Never {
        printError("fwp: error: " + CommandLineWords.escaped(message))
        Glibc.exit(2)
    }
}
