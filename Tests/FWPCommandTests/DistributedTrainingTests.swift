import XCTest
import Foundation
import FWTestSupport

/// `fwp train lm --distributed` and `fwp mpi-check` under Open MPI's
/// `mpirun` with two ranks on this machine (`make test` installs
/// openmpi-bin). Every launch has a time limit: a hang fails the test.
final class DistributedTrainingTests: XCTestCase {
    var cli: CommandRunner!

    override func setUpWithError() throws {
        guard let mpirun = Self.mpirun else {
            throw XCTSkip("mpirun not found (make test installs openmpi-bin)")
        }
        _ = mpirun
        cli = try CommandRunner.make()
        try GeneratedCorpus.write(works: 6, lines: 120, to: cli.path("data"))
    }

    override func tearDown() { cli?.remove() }

    static var mpirun: String? {
        ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The tiny model of these tests: 30 steps, global batch 4, no dropout.
    let tiny = ["--data", "data", "--mixer", "delta", "--layers", "1", "--model-size", "16", "--heads", "2", "--feed-forward", "32",
                "--context", "16", "--batch", "4", "--steps", "30", "--eval-every", "10", "--eval-bytes", "300", "--warmup", "2",
                "--dropout", "0", "--quiet"]

    /// Runs `mpirun ... -np n fwp <args>` (or several `:`-joined programs) with a time limit.
    func mpi(_ programs: [(np: Int, args: [String])], limit: TimeInterval = 120) throws -> (status: Int32, out: String, err: String, timedOut: Bool) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.mpirun!)
        var args = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]
        for (i, prog) in programs.enumerated() {
            if i > 0 { args.append(":") }
            args += ["-np", "\(prog.np)", CommandRunner.binary.path] + prog.args
        }
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["SWIFT_BACKTRACE"] = "enable=no"
        env["FWP_KEEP_BLAS_CORE"] = "1"
        p.environment = env
        p.currentDirectoryURL = URL(fileURLWithPath: cli.folder)
        // Output into files (no pipe to drain while waiting with a deadline).
        let outPath = cli.path(".mpirun-\(UUID().uuidString).out"), errPath = outPath + ".err"
        for path in [outPath, errPath] where !FileManager.default.createFile(atPath: path, contents: nil) {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { p.waitUntilExit(); done.signal() }
        var timedOut = false
        if done.wait(timeout: .now() + limit) == .timedOut {
            timedOut = true
            kill(p.processIdentifier, SIGKILL)
            done.wait()
        }
        try out.close()
        try err.close()
        let o = (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data()
        let e = (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data()
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self), timedOut)
    }

    /// Every float tensor of a checkpoint (parameters, Adam's moments, the best snapshot), by name.
    func parameters(_ path: String) throws -> [String: [Float]] {
        let raw = try RawSafeTensors([UInt8](try Data(contentsOf: URL(fileURLWithPath: cli.path(path)))))
        var out: [String: [Float]] = [:]
        for entry in raw.entries where entry.dtype == "F32" {
            let bytes = Array(raw.data[entry.begin..<entry.end])
            out[entry.name] = stride(from: 0, to: bytes.count, by: 4).map { i in
                Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
            }
        }
        return out
    }

    func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cli.path(path)))) as? [String: Any])
    }

    /// Two ranks with half the batch each train the same model as one process
    /// with the whole batch: the gradients differ only in the order of the
    /// fp32 sum, so after 30 Adam steps the loss agrees to 1e-5 relative and
    /// every parameter to 1e-4 absolute (the issue asks 1e-3 for the loss).
    func testTwoRanksMatchOneProcess() throws {
        try assertTwoRanksMatchOneProcess(tiny)
        // The distributed run resumes on a different number of processes (one, here).
        let resumed = try cli.run(["train", "lm", "--resume", "two/checkpoint.safetensors", "--steps", "40", "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.err)
        XCTAssertEqual(try json("two/summary.json")["steps"] as? Int, 40)
    }

    /// The same with the fast weights (and the denominator's key sums) carried
    /// across segments: each rank carries its rows, every rank keeps the whole
    /// state, and the checkpoint's carried state matches one process's too.
    func testTwoRanksMatchOneProcessWithCarriedState() throws {
        var carried = tiny
        carried[carried.firstIndex(of: "--mixer")! + 1] = "linear"
        try assertTwoRanksMatchOneProcess(carried + ["--carry-state"], expectState: true)
        // One all-reduce after the backward sums the same numbers as the per-block buckets: the same bits.
        let single = try mpi([(2, ["train", "lm"] + carried + ["--carry-state", "--distributed", "--single-allreduce", "--out", "single"])])
        XCTAssertEqual(single.status, 0, single.err)
        XCTAssertEqual(try parameters("single/checkpoint.safetensors"), try parameters("two/checkpoint.safetensors"))
    }

    func assertTwoRanksMatchOneProcess(_ args: [String], expectState: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        let one = try cli.run(["train", "lm"] + args + ["--out", "one"])
        XCTAssertEqual(one.status, 0, one.err)
        let two = try mpi([(2, ["train", "lm"] + args + ["--distributed", "--out", "two"])])
        XCTAssertFalse(two.timedOut, "mpirun hung: \(two.err)")
        XCTAssertEqual(two.status, 0, two.err)
        XCTAssertTrue(two.out.contains("on 2 processes"), two.out)
        XCTAssertEqual(cli.files(in: "two"), ["checkpoint.safetensors", "log.csv", "summary.json"])

        let a = try json("one/summary.json"), b = try json("two/summary.json")
        let la = try XCTUnwrap(a["final_train_loss"] as? Double), lb = try XCTUnwrap(b["final_train_loss"] as? Double)
        XCTAssertEqual(lb, la, accuracy: 1e-5 * abs(la), "final training loss, 1 process vs 2 ranks")
        XCTAssertEqual(b["processes"] as? Int, 2)
        XCTAssertEqual(b["steps"] as? Int, 30)

        let pa = try parameters("one/checkpoint.safetensors"), pb = try parameters("two/checkpoint.safetensors")
        XCTAssertFalse(pa.isEmpty)
        XCTAssertEqual(Set(pa.keys), Set(pb.keys))
        var worst: Float = 0
        for (name, x) in pa {
            let y = try XCTUnwrap(pb[name])
            XCTAssertEqual(x.count, y.count, name)
            for i in 0..<min(x.count, y.count) { worst = max(worst, abs(x[i] - y[i])) }
        }
        XCTAssertLessThanOrEqual(worst, 1e-4, "largest parameter difference, 1 process vs 2 ranks", file: file, line: line)
        XCTAssertEqual(pa.keys.contains { $0.hasPrefix("extra.state.") }, expectState, "carried state in the checkpoint", file: file, line: line)
    }

    /// The all-reduce against a serial Float64 sum, with three ranks (so the fp32 sum rounds).
    func testAllReduceAgreesWithASerialSum() throws {
        let r = try mpi([(3, ["mpi-check", "--floats", "10007", "--repeats", "3"])])
        XCTAssertFalse(r.timedOut, r.err)
        XCTAssertEqual(r.status, 0, r.out + r.err)
        XCTAssertTrue(r.out.contains("mpi-check: passed"), r.out)
        XCTAssertTrue(r.out.contains("the same bits on every rank"), r.out)
        for rank in 0..<3 { XCTAssertTrue(r.out.contains("rank \(rank) of 3"), r.out) }
    }

    /// Ranks that disagree (another seed), and a rank that fails (no data
    /// folder), end the whole run with a message naming the cause: no hang,
    /// no run folder left behind.
    func testMismatchedOrFailingRanksEndTheRun() throws {
        let mismatch = try mpi([(1, ["train", "lm"] + tiny + ["--distributed", "--out", "m"]),
                                (1, ["train", "lm"] + tiny + ["--seed", "2", "--distributed", "--out", "m"])], limit: 60)
        XCTAssertFalse(mismatch.timedOut, "a mismatched run hung: \(mismatch.err)")
        XCTAssertNotEqual(mismatch.status, 0)
        XCTAssertTrue(mismatch.err.contains("differ in configuration, training data, step or parameters"), mismatch.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cli.path("m/summary.json")))

        var missing = tiny
        missing[missing.firstIndex(of: "--data")! + 1] = "nowhere"
        let failing = try mpi([(1, ["train", "lm"] + tiny + ["--distributed", "--out", "f"]),
                               (1, ["train", "lm"] + missing + ["--distributed", "--out", "f"])], limit: 60)
        XCTAssertFalse(failing.timedOut, "a run with a failing rank hung: \(failing.err)")
        XCTAssertNotEqual(failing.status, 0)
        XCTAssertTrue(failing.err.contains("nowhere") && failing.err.contains("(rank 1 of 2)"), failing.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cli.path("f/summary.json")))

        // A batch that does not split over the ranks is refused on every rank.
        var odd = tiny
        odd[odd.firstIndex(of: "--batch")! + 1] = "3"
        let uneven = try mpi([(2, ["train", "lm"] + odd + ["--distributed", "--out", "u"])], limit: 60)
        XCTAssertFalse(uneven.timedOut, uneven.err)
        XCTAssertNotEqual(uneven.status, 0)
        XCTAssertTrue(uneven.err.contains("--batch 3 does not split over 2 processes"), uneven.err)
    }
}
