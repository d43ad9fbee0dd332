import XCTest
import Foundation
import FWTestSupport

/// Runs the built `fwp` binary (it sits next to the test bundle) in a
/// scratch folder and captures its exit status and output.
struct CommandRunner {
    let folder: String

    static func make() throws -> CommandRunner {
        let folder = NSTemporaryDirectory() + "fwp-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return CommandRunner(folder: folder)
    }

    /// `.build/<config>/fwp`, found beside the `.xctest` bundle.
    static var binary: URL {
        var dir = Bundle.main.bundleURL
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("fwp")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        for b in Bundle.allBundles where b.bundlePath.hasSuffix(".xctest") {
            let candidate = b.bundleURL.deletingLastPathComponent().appendingPathComponent("fwp")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return Bundle.main.bundleURL.appendingPathComponent("fwp")
    }

    func path(_ name: String) -> String { folder + "/" + name }

    func write(_ tensor: Tensor, _ name: String) throws { try NPY.write(tensor, to: path(name)) }

    /// Runs `fwp args...`; returns (status, stdout, stderr).
    @discardableResult
    func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = args
        // A crash must fail the test quickly, not wait on the interactive backtracer.
        var env = ProcessInfo.processInfo.environment
        env["SWIFT_BACKTRACE"] = "enable=no"
        p.environment = env
        p.currentDirectoryURL = URL(fileURLWithPath: folder)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func files(in sub: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path(sub))) ?? []).sorted()
    }

    func remove() { try? FileManager.default.removeItem(atPath: folder) }
}
