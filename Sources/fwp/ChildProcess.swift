import FastWeights
import Foundation

/// Runs helper programs (`python3 -m pip`, `tar`) as child processes:
/// found on PATH, stdin from /dev/null (nothing can wait for input), stdout
/// and stderr captured in files of a scratch folder (no pipe can fill up).
enum ChildProcess {
    /// What a finished child printed, and its exit status.
    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String

        /// The first non-empty line of stderr (tar: the cause comes first).
        var firstLine: String {
            stderr.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty } ?? "no message"
        }

        /// The line of stderr that best says what went wrong (pip): the last one
        /// starting with `ERROR:` or containing `error`, else the last non-empty one.
        var reason: String {
            let lines = stderr.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            return lines.last { $0.hasPrefix("ERROR:") } ?? lines.last { $0.lowercased().contains("error") } ?? lines.last
                ?? "no message"
        }
    }

    /// The first executable file called `name` in the folders of PATH, or nil.
    static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for folder in path.split(separator: ":", omittingEmptySubsequences: true) {
            let candidate = "\(folder)/\(name)"
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDir), !isDir.boolValue,
               FileManager.default.isExecutableFile(atPath: candidate) {
                return candidate
            }
        }
        return nil
    }

    /// Runs `executable arguments...` to completion; `scratch` is a folder
    /// for the captured output; `environment` entries are set on top of this
    /// process's. Throws `FWError.invalidArgument` only when the child
    /// cannot be started.
    static func run(_ executable: String, _ arguments: [String], scratch: String,
                    environment: [String: String] = [:]) throws -> Outcome {
        let tag = UUID().uuidString
        let outPath = "\(scratch)/.stdout-\(tag)", errPath = "\(scratch)/.stderr-\(tag)"
        defer {
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
        guard FileManager.default.createFile(atPath: outPath, contents: nil),
              FileManager.default.createFile(atPath: errPath, contents: nil),
              let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath) else {
            throw FWError.file(path: scratch, reason: "cannot write the output of \(executable)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        // Foundation's waitUntilExit polls every 50 ms; the handler wakes us at once.
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do {
            try process.run()
        } catch {
            throw FWError.invalidArgument("cannot run \(executable): \(error.localizedDescription)")
        }
        exited.wait()
        try? out.close()
        try? err.close()
        func text(_ path: String) -> String { String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self) }
        return Outcome(status: process.terminationStatus, stdout: text(outPath), stderr: text(errPath))
    }
}
