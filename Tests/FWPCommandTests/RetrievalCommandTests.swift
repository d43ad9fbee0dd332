import XCTest
import Foundation
import FWTestSupport

/// `fwp train retrieval`, `fwp eval` and `fwp reproduce ba2016` on tiny
/// runs: the files they write, resume through the command line, and one
/// stderr line with exit status 2 for bad options and malformed checkpoints.
final class RetrievalCommandTests: XCTestCase {
    var cli: CommandRunner!

    override func setUpWithError() throws { cli = try CommandRunner.make() }
    override func tearDown() { cli.remove() }

    /// Sizes that train in well under a second in a debug build.
    let tiny = ["--pairs", "2", "--embedding", "4", "--batch", "8", "--eval-every", "3",
                "--train-examples", "64", "--validation-examples", "20", "--test-examples", "24", "--eval-batch", "10"]

    func train(_ extra: [String]) throws -> (status: Int32, out: String, err: String) {
        try cli.run(["train", "retrieval"] + extra)
    }

    func json(_ path: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cli.path(path))))
    }

    func assertFails(_ args: [String], mentioning needle: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try cli.run(args)
        XCTAssertEqual(r.status, 2, "status for \(args): \(r.err)", file: file, line: line)
        XCTAssertEqual(r.err.split(separator: "\n").count, 1, "stderr should be one line: \(r.err)", file: file, line: line)
        XCTAssertTrue(r.err.contains(needle), "expected '\(needle)' in: \(r.err)", file: file, line: line)
    }

    func testTrainWritesLogSummaryCheckpointAndEvalAgrees() throws {
        let r = try train(["--model", "fast-weights", "--hidden", "6", "--steps", "6", "--out", "run", "--quiet"] + tiny)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.hasPrefix("test error "), r.out)
        XCTAssertEqual(cli.files(in: "run"), ["checkpoint.safetensors", "log.csv", "summary.json"])
        let log = try String(contentsOfFile: cli.path("run/log.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(log.first, "step,seconds,train_loss,train_error_pct,validation_loss,validation_error_pct,best_validation_error_pct")
        XCTAssertEqual(log.dropFirst().map { $0.split(separator: ",")[0] }, ["3", "6"])
        let summary = try XCTUnwrap(try json("run/summary.json") as? [String: Any])
        XCTAssertEqual(summary["model"] as? String, "fast-weights")
        XCTAssertEqual(summary["steps"] as? Int, 6)
        let testError = try XCTUnwrap(summary["test_error_pct"] as? Double)

        // eval rebuilds the model from the checkpoint alone and gets the same test error.
        let e = try cli.run(["eval", "--checkpoint", "run/checkpoint.safetensors", "--json"])
        XCTAssertEqual(e.status, 0, e.err)
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(e.out.utf8)) as? [String: Any])
        XCTAssertEqual(result["test_error_pct"] as? Double, testError)
        XCTAssertEqual(result["parameters"] as? String, "best")
        XCTAssertEqual(result["test_examples"] as? Int, 24)

        // --by-pair: K entries that add up to the whole test split.
        let p = try cli.run(["eval", "--checkpoint", "run/checkpoint.safetensors", "--json", "--by-pair"])
        XCTAssertEqual(p.status, 0, p.err)
        let byPair = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(p.out.utf8)) as? [String: Any])
        let counts = try XCTUnwrap(byPair["test_examples_by_pair"] as? [Int])
        let errors = try XCTUnwrap(byPair["test_error_pct_by_pair"] as? [Double])
        XCTAssertEqual(counts.count, 2)
        XCTAssertEqual(counts.reduce(0, +), 24)
        let wrong = zip(counts, errors).map { Double($0) * $1 / 100 }.reduce(0, +)
        XCTAssertEqual(wrong, testError * 24 / 100, accuracy: 1e-9)
        let text = try cli.run(["eval", "--checkpoint", "run/checkpoint.safetensors", "--by-pair"])
        XCTAssertTrue(text.out.contains("test error by queried pair (1 = oldest): 1: "), text.out)
    }

    /// Train 4 steps, resume to 8 in a second process: the same checkpoint as 8 steps straight.
    func testResumeThroughTheCommandLine() throws {
        XCTAssertEqual(try train(["--model", "irnn", "--hidden", "6", "--steps", "4", "--out", "a", "--quiet"] + tiny).status, 0)
        let r = try train(["--resume", "a/checkpoint.safetensors", "--steps", "8", "--quiet"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(try train(["--model", "irnn", "--hidden", "6", "--steps", "8", "--out", "b", "--quiet"] + tiny).status, 0)
        let a = try SafeTensors.read(cli.path("a/checkpoint.safetensors"))
        let b = try SafeTensors.read(cli.path("b/checkpoint.safetensors"))
        XCTAssertEqual(a.names, b.names)
        for name in a.names { XCTAssertEqual(a.tensors[name], b.tensors[name], name) }
        let log = try String(contentsOfFile: cli.path("a/log.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(log.dropFirst().map { $0.split(separator: ",")[0] }, ["3", "4", "6", "8"])
    }

    func testBadTrainOptions() throws {
        try assertFails(["train", "retrieval", "--model", "gru", "--hidden", "8"], mentioning: "unknown model 'gru'")
        try assertFails(["train", "retrieval", "--hidden", "8"], mentioning: "--model")
        try assertFails(["train", "retrieval", "--model", "lstm", "--hidden", "0"], mentioning: "--hidden")
        try assertFails(["train", "retrieval", "--model", "alstm", "--hidden", "7"], mentioning: "even")
        try assertFails(["train", "retrieval", "--model", "lstm", "--hidden", "8", "--pairs", "27"], mentioning: "--pairs")
        try assertFails(["train", "retrieval", "--model", "lstm", "--hidden", "8", "--lr", "-1"], mentioning: "--lr")
        try assertFails(["train", "retrieval", "--model", "lstm", "--hidden", "8", "--steps", "x"], mentioning: "steps")
        try assertFails(["train", "retrieval", "--model", "fast-weights", "--hidden", "8", "--algorithm", "magic"], mentioning: "magic")
        try assertFails(["train", "retrieval", "--resume", "x.safetensors", "--model", "lstm"], mentioning: "--model cannot be combined with --resume")
        try assertFails(["train", "retrieval", "--resume", "missing.safetensors"], mentioning: "missing.safetensors")
    }

    func testMalformedCheckpoints() throws {
        XCTAssertEqual(try train(["--model", "lstm", "--hidden", "4", "--steps", "3", "--out", "run", "--quiet"] + tiny).status, 0)
        let good = try Data(contentsOf: URL(fileURLWithPath: cli.path("run/checkpoint.safetensors")))
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: cli.path("truncated.safetensors")))
        try Data("not a checkpoint at all".utf8).write(to: URL(fileURLWithPath: cli.path("garbage.safetensors")))
        var contents = try SafeTensors.read(cli.path("run/checkpoint.safetensors"))
        let entries = contents.names.map { SafeTensors.Entry(name: $0, tensor: contents.tensors[$0]!) }
        contents.metadata["config"] = nil
        try SafeTensors.write(entries, metadata: contents.metadata, to: cli.path("noconfig.safetensors"))
        contents.metadata["config"] = "{\"run\": 1}"
        try SafeTensors.write(entries, metadata: contents.metadata, to: cli.path("badconfig.safetensors"))
        try SafeTensors.write(Array(entries.dropFirst()), metadata: contents.metadata, to: cli.path("missing-tensor.safetensors"))

        for (file, needle) in [("truncated.safetensors", "truncated"), ("garbage.safetensors", "garbage.safetensors"),
                               ("noconfig.safetensors", "config"), ("badconfig.safetensors", "config"),
                               ("nothere.safetensors", "nothere.safetensors")] {
            try assertFails(["eval", "--checkpoint", file], mentioning: needle)
            try assertFails(["train", "retrieval", "--resume", file], mentioning: file)
        }
        // A tensor the model needs is missing (the config is fine).
        var fine = try SafeTensors.read(cli.path("run/checkpoint.safetensors"))
        let first = fine.names.first { !$0.hasPrefix("adam.") && !$0.hasPrefix("best.") }!
        fine.tensors[first] = nil
        fine.names.removeAll { $0 == first }
        try SafeTensors.write(fine.names.map { SafeTensors.Entry(name: $0, tensor: fine.tensors[$0]!) },
                              metadata: fine.metadata, to: cli.path("lacking.safetensors"))
        try assertFails(["eval", "--checkpoint", "lacking.safetensors"], mentioning: "missing tensor '\(first)'")
    }

    func testReproduceWritesTableJSONMarkdownAndCurves() throws {
        let args = ["reproduce", "ba2016", "--out", "rep", "--models", "fast-weights,irnn", "--hidden", "4,6",
                    "--steps", "6", "--quiet"] + tiny
        let r = try cli.run(args)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("Fast weights"), r.out)
        XCTAssertTrue(r.out.contains("wall-clock"), r.out)
        XCTAssertEqual(cli.files(in: "rep"), ["ba2016-curves.svg", "ba2016.json", "ba2016.md", "runs"])
        // Each row's folder, and beside it the config file its child read (--config).
        XCTAssertEqual(cli.files(in: "rep/runs"), ["fast-weights-R4", "fast-weights-R4.json", "fast-weights-R6", "fast-weights-R6.json",
                                                   "irnn-R4", "irnn-R4.json", "irnn-R6", "irnn-R6.json"])
        let rowConfig = try RunConfigFile.read(RetrievalRunConfig.self, from: cli.path("rep/runs/irnn-R6.json"))
        XCTAssertEqual(rowConfig.hidden, 6)
        XCTAssertEqual(rowConfig.maxSteps, 6)
        let rows = try XCTUnwrap(try json("rep/ba2016.json") as? [[String: Any]])
        XCTAssertEqual(rows.count, 4)
        for row in rows {
            for key in ["model", "hidden", "test_error_pct", "steps", "seconds"] { XCTAssertNotNil(row[key], key) }
            XCTAssertEqual(row["steps"] as? Int, 6)
        }
        XCTAssertEqual(rows.map { $0["model"] as? String }, ["fast-weights", "fast-weights", "irnn", "irnn"])   // the order asked for
        let svg = try String(contentsOfFile: cli.path("rep/ba2016-curves.svg"), encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg"))
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 4)
        let md = try String(contentsOfFile: cli.path("rep/ba2016.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("| Fast weights |"), md)

        // A second run reuses the finished rows.
        let again = try cli.run(Array(args.dropLast(tiny.count + 1)) + tiny)
        XCTAssertEqual(again.status, 0, again.err)
        XCTAssertEqual(again.err.components(separatedBy: "(reused)").count - 1, 4, again.err)
    }

    func testReproduceResumesARowFromItsCheckpointInAChild() throws {
        let args = ["reproduce", "ba2016", "--out", "rep", "--models", "fast-weights", "--hidden", "4",
                    "--steps", "6", "--jobs", "1"] + tiny
        let first = try cli.run(args)
        XCTAssertEqual(first.status, 0, first.err)
        let before = try XCTUnwrap(try json("rep/ba2016.json") as? [[String: Any]]).first
        // Without its summary the row counts as unfinished: a child resumes it from the checkpoint.
        try FileManager.default.removeItem(atPath: cli.path("rep/runs/fast-weights-R4/summary.json"))
        let again = try cli.run(args)
        XCTAssertEqual(again.status, 0, again.err)
        XCTAssertTrue(again.err.contains("resuming from step 6"), again.err)
        XCTAssertFalse(again.err.contains("(reused)"), again.err)
        let after = try XCTUnwrap(try json("rep/ba2016.json") as? [[String: Any]]).first
        XCTAssertEqual(after?["test_error_pct"] as? Double, before?["test_error_pct"] as? Double)
        XCTAssertEqual(after?["steps"] as? Int, 6)
    }

    func testPaperColumnsAtTheirR() throws {
        let r = try cli.run(["reproduce", "ba2016", "--out", "rep", "--models", "fast-weights", "--hidden", "20",
                             "--steps", "3", "--quiet"] + tiny)
        XCTAssertEqual(r.status, 0, r.err)
        let rows = try XCTUnwrap(try json("rep/ba2016.json") as? [[String: Any]])
        XCTAssertEqual(rows.first?["paper_test_error_pct"] as? Double, 1.81)
    }

    func testBadReproduceOptions() throws {
        try assertFails(["reproduce", "ba2016", "--models", "fast-weights,rnn"], mentioning: "unknown model 'rnn'")
        try assertFails(["reproduce", "ba2016", "--hidden", "20,x"], mentioning: "--hidden")
        try assertFails(["reproduce", "ba2016", "--steps", "0"], mentioning: "--steps")
        try assertFails(["reproduce", "ba2016", "--models", "alstm", "--hidden", "5"], mentioning: "even")
        try assertFails(["reproduce", "ba2016", "--jobs", "0"], mentioning: "--jobs")
        try assertFails(["reproduce", "ba2020"], mentioning: "ba2020")
    }
}
