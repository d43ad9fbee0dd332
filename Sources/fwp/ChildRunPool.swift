import FastWeights
import Foundation

/// Runs training runs as child processes of this executable (`fwp train ...`),
/// at most `jobs` at once, each with one thread (FWP_THREADS=1,
/// OPENBLAS_NUM_THREADS=1).
///
/// Who owns the cores: the pool does. The runs of the papers' tables are
/// small (R <= 100, d_key <= 64), so whole runs side by side use 2 cores far
/// better than BLAS threads inside one run; and a run's numbers depend only
/// on its own configuration, never on --jobs.
///
/// Each child writes its result into its own folder; `read(dir)` turns that
/// folder into a `Result` once the child has exited with status 0. While
/// waiting, `progress` (if given) is asked every `progressInterval` seconds
/// for a status line about the running children.
final class ChildRunPool<Result>: @unchecked Sendable {
    let quiet: Bool
    let total: Int
    private let read: @Sendable (String) -> Result?
    private let describe: @Sendable (Result) -> String
    private let readFailure: (@Sendable (String, String) -> Result?)?
    private let lock = NSLock()
    private let slots: DispatchSemaphore
    private let group = DispatchGroup()
    /// Starts children in plan order, one at a time as slots free up.
    private let launcher = DispatchQueue(label: "fwp.ChildRunPool.launcher")
    private var results: [Int: Result] = [:]
    private var running: [Int: (name: String, dir: String)] = [:]
    private var failures: [String] = []
    private var done = 0

    /// - Parameters:
    ///   - read: the result a finished child left in its folder (nil: none).
    ///   - describe: one line about a result, printed when a run finishes.
    ///   - readFailure: turns a failed child's folder and error line into a result
    ///     (e.g. a run that diverged is a row of its own); nil: the failure stands.
    init(jobs: Int, quiet: Bool, total: Int,
         read: @escaping @Sendable (String) -> Result?, describe: @escaping @Sendable (Result) -> String,
         readFailure: (@Sendable (String, String) -> Result?)? = nil) {
        self.quiet = quiet
        self.total = total
        self.read = read
        self.describe = describe
        self.readFailure = readFailure
        slots = DispatchSemaphore(value: jobs)
    }

    /// Records a result (reused or finished) and prints its line.
    func finished(_ index: Int, name: String, result: Result, reused: Bool) {
        lock.lock()
        results[index] = result
        running[index] = nil
        done += 1
        let line = "[\(done)/\(total)] \(name): " + describe(result) + (reused ? " (reused)" : "")
        lock.unlock()
        if !quiet { printError(line) }
    }

    /// Queues one child `fwp arguments...`; it starts when a slot is free.
    /// Returns at once, so that `wait` can report progress meanwhile.
    func launch(_ index: Int, name: String, arguments: [String], dir: String) {
        group.enter()
        launcher.async {
            self.slots.wait()
            self.lock.lock()
            self.running[index] = (name, dir)
            self.lock.unlock()
            DispatchQueue.global().async {
                defer { self.slots.signal(); self.group.leave() }
                self.runChild(index, name: name, arguments: arguments, dir: dir)
            }
        }
    }

    /// Runs one child to its end and records its result or its failure.
    private func runChild(_ index: Int, name: String, arguments: [String], dir: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["FWP_THREADS"] = "1"
        environment["OPENBLAS_NUM_THREADS"] = "1"
        environment["SWIFT_BACKTRACE"] = "enable=no"   // a crash is reported below, not as a backtrace
        environment[ParentWatch.variable] = String(getpid())   // the child ends if this process dies
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            if process.terminationStatus == 0, process.terminationReason == .exit, let result = read(dir) {
                finished(index, name: name, result: result, reused: false)
            } else {
                let reason = Self.failureReason(stderr: message, status: process.terminationStatus,
                                                signalled: process.terminationReason == .uncaughtSignal)
                if let readFailure, let result = readFailure(dir, reason) {
                    finished(index, name: name, result: result, reused: false)
                } else {
                    fail(index, "\(name) (\(dir)): " + reason)
                }
            }
        } catch {
            fail(index, "\(name): cannot start \(Self.executable): \(error)")
        }
    }

    /// Why a child failed, in one line: its own `fwp: error:` line when it
    /// printed one, else the signal that ended it or its exit status.
    static func failureReason(stderr: String, status: Int32, signalled: Bool) -> String {
        let lines = stderr.split(separator: "\n").map(String.init)
        if let error = lines.last(where: { $0.hasPrefix("fwp: error: ") }) {
            return String(error.dropFirst("fwp: error: ".count))
        }
        if signalled { return "crashed with signal \(status)" + (lines.isEmpty ? "" : " (\(lines[0]))") }
        if status == 0 { return "exited without writing its result" }
        return "exit status \(status)" + (lines.last.map { " (\($0))" } ?? "")
    }

    private func fail(_ index: Int, _ message: String) {
        lock.lock()
        failures.append(message)
        running[index] = nil
        lock.unlock()
        if !quiet { printError("failed: \(message)") }
    }

    /// The (name, folder) of every child running now, in plan order.
    var runningNow: [(name: String, dir: String)] {
        lock.lock()
        defer { lock.unlock() }
        return running.keys.sorted().map { running[$0]! }
    }

    /// Waits for every child, printing `progress(runningNow)` every
    /// `progressInterval` seconds (unless quiet); throws if any child failed.
    func wait(progressInterval: Double = 30,
              progress: (([(name: String, dir: String)]) -> String?)? = nil) throws -> [Int: Result] {
        while group.wait(timeout: .now() + progressInterval) == .timedOut {
            if !quiet, let progress, let line = progress(runningNow) { printError(line) }
        }
        lock.lock()
        defer { lock.unlock() }
        if let first = failures.first {
            throw FWError.invalidArgument("\(failures.count) run(s) failed; first: \(first)")
        }
        return results
    }

    /// This program's own executable.
    static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
