import XCTest
import Foundation
import FWTestSupport

/// `fwp train synthetic` and `fwp reproduce schlag2021` on tiny runs: the
/// files they write (the JSON rows' fields), reuse of finished runs, and one
/// stderr line with exit status 2 for bad options.
final class SyntheticCommandTests: XCTestCase {
    var cli: CommandRunner!

    override func setUpWithError() throws { cli = try CommandRunner.make() }
    override func tearDown() { cli.remove() }

    let tiny = ["--key-size", "4", "--steps", "40", "--eval-every", "20", "--eval-sequences", "3"]

    func assertFails(_ args: [String], mentioning needle: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try cli.run(args)
        XCTAssertEqual(r.status, 2, "status for \(args): \(r.err)", file: file, line: line)
        XCTAssertEqual(r.err.split(separator: "\n").count, 1, "stderr should be one line: \(r.err)", file: file, line: line)
        XCTAssertTrue(r.err.contains(needle), "expected '\(needle)' in: \(r.err)", file: file, line: line)
    }

    func testTrainWritesLogAndSummary() throws {
        let r = try cli.run(["train", "synthetic", "--setting", "2", "--size", "4", "--model", "delta:dpfp:1",
                             "--out", "run", "--quiet"] + tiny)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.hasPrefix("delta:dpfp:1 S=4 (d_dot 8): best eval loss"), r.out)
        XCTAssertEqual(cli.files(in: "run"), ["log.csv", "summary.json"])
        let log = try String(contentsOfFile: cli.path("run/log.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(log.first, "step,seconds,train_loss,eval_loss,eval_accuracy_pct")
        let summary = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cli.path("run/summary.json")))) as? [String: Any])
        XCTAssertEqual(summary["dotSize"] as? Int, 8)
        XCTAssertNotNil(summary["bestLoss"] as? Double)
    }

    func testReproduceWritesRowsAndReusesRuns() throws {
        let args = ["reproduce", "schlag2021", "--setting", "1", "--models", "sum:elu1,softmax", "--sizes", "3,6",
                    "--out", "out", "--jobs", "2"] + tiny
        let r = try cli.run(args + ["--quiet"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("Linear"), r.out)
        for ext in ["json", "csv", "md", "svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: cli.path("out/schlag2021-setting1.\(ext)")), ext)
        }
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cli.path("out/schlag2021-setting1.json")))) as? [[String: Any]])
        XCTAssertEqual(rows.count, 4)
        for key in ["model", "rule", "phi", "d_dot", "S", "loss", "steps", "seconds"] {
            XCTAssertNotNil(rows[0][key], "row field \(key)")
        }
        XCTAssertEqual(Set(rows.compactMap { $0["rule"] as? String }), ["sum", "softmax"])
        XCTAssertEqual(rows.first { $0["phi"] as? String == "elu1" }?["d_dot"] as? Int, 4)
        let svg = try String(contentsOfFile: cli.path("out/schlag2021-setting1.svg"), encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("polyline"))

        // A second run reuses all four summaries and prints the same table.
        let again = try cli.run(args)
        XCTAssertEqual(again.status, 0, again.err)
        XCTAssertEqual(again.err.components(separatedBy: "(reused)").count - 1, 4, again.err)
        XCTAssertEqual(again.out.split(separator: "\n").dropLast(), r.out.split(separator: "\n").dropLast())
    }

    func testBadOptionsExitTwo() throws {
        try assertFails(["train", "synthetic", "--setting", "3", "--size", "4", "--model", "softmax"], mentioning: "--setting must be 1")
        try assertFails(["train", "synthetic", "--setting", "1", "--size", "4", "--model", "linear"], mentioning: "model must be softmax")
        try assertFails(["train", "synthetic", "--setting", "1", "--size", "4", "--model", "sum:dpfp:9", "--key-size", "4"],
                        mentioning: "dpfp:9 needs --key-size >= 5")
        try assertFails(["train", "synthetic", "--setting", "1", "--size", "0", "--model", "softmax"], mentioning: "--size must be 1...2147483647, got 0")
        try assertFails(["train", "synthetic", "--setting", "1", "--size", "4", "--model", "softmax", "--favor-eval", "once"],
                        mentioning: "--favor-eval must be fresh or fixed")
        try assertFails(["reproduce", "schlag2021", "--setting", "1", "--scale", "huge"], mentioning: "--scale must be small or paper")
        try assertFails(["reproduce", "schlag2021", "--setting", "1", "--sizes", "4,x"], mentioning: "--sizes: 'x'")
        try assertFails(["reproduce", "schlag2021", "--setting", "2", "--quick", "--scale", "paper"], mentioning: "--quick runs at --scale small")
        XCTAssertFalse(FileManager.default.fileExists(atPath: cli.path("results")), "nothing written on a usage error")
    }
}
