import XCTest
import Foundation
import FWTestSupport

/// `fwp train lm`, `fwp eval lm`, `fwp generate` and `fwp reproduce
/// schlag2021-lm` on a small generated corpus (never the network).
final class LanguageModelCommandTests: XCTestCase {
    var cli: CommandRunner!

    override func setUpWithError() throws {
        cli = try CommandRunner.make()
        try GeneratedCorpus.write(lines: 60, to: cli.path("data"))
    }

    override func tearDown() { cli.remove() }

    let tiny = ["--layers", "1", "--model-size", "16", "--heads", "2", "--feed-forward", "32", "--context", "16",
                "--batch", "2", "--eval-every", "3", "--eval-bytes", "300", "--warmup", "2"]

    func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cli.path(path)))) as? [String: Any])
    }

    func assertFails(_ args: [String], mentioning needle: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try cli.run(args)
        XCTAssertEqual(r.status, 2, "status for \(args): \(r.err)", file: file, line: line)
        XCTAssertEqual(r.err.split(separator: "\n").count, 1, "stderr should be one line: \(r.err)", file: file, line: line)
        XCTAssertTrue(r.err.contains(needle), "expected '\(needle)' in: \(r.err)", file: file, line: line)
    }

    func testTrainEvaluateResumeAndGenerate() throws {
        let r = try cli.run(["train", "lm", "--data", "data", "--mixer", "delta", "--steps", "6", "--out", "run", "--quiet"] + tiny)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(cli.files(in: "run"), ["checkpoint.safetensors", "log.csv", "summary.json"])
        let summary = try json("run/summary.json")
        for key in ["final_train_loss", "valid_bpc", "test_bpc", "steps", "seconds", "tokens_per_s", "params"] {
            XCTAssertNotNil(summary[key], key)
        }
        XCTAssertEqual(summary["steps"] as? Int, 6)
        let testBPC = try XCTUnwrap(summary["test_bpc"] as? Double)

        // eval lm rebuilds the model from the checkpoint and scores the same split.
        let e = try cli.run(["eval", "lm", "--checkpoint", "run", "--split", "test", "--json"])
        XCTAssertEqual(e.status, 0, e.err)
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(e.out.utf8)) as? [String: Any])
        XCTAssertEqual(try XCTUnwrap(result["bpc"] as? Double), testBPC, accuracy: 1e-9)
        XCTAssertEqual(result["bytes_scored"] as? Int, summary["test_bytes_scored"] as? Int)
        // Carried over the whole split: every byte but the first scored.
        let carried = try cli.run(["eval", "lm", "--checkpoint", "run/checkpoint.safetensors", "--carry-state", "--json"])
        XCTAssertEqual(carried.status, 0, carried.err)
        // --blocks: the bpc by position; the blocks' bytes add up to the whole split's score.
        let carriedResult = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(carried.out.utf8)) as? [String: Any])
        for flags in [["--carry-state"], ["--truncated"]] {
            let b = try cli.run(["eval", "lm", "--checkpoint", "run", "--context", "8", "--blocks", "40", "--json"] + flags)
            XCTAssertEqual(b.status, 0, b.err)
            let blocked = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(b.out.utf8)) as? [String: Any])
            let perBlock = try XCTUnwrap(blocked["block_bpc"] as? [Double])
            let scored = try XCTUnwrap(blocked["bytes_scored"] as? Int)
            XCTAssertEqual(perBlock.count, (scored + 39) / 40, "\(flags)")
            // The mean of the blocks weighted by their bytes is the whole bpc.
            let weights = perBlock.indices.map { Double(min(40, scored - 40 * $0)) }
            let mean = zip(perBlock, weights).map { $0 * $1 }.reduce(0, +) / Double(scored)
            XCTAssertEqual(mean, try XCTUnwrap(blocked["bpc"] as? Double), accuracy: 1e-9, "\(flags)")
            if flags == ["--carry-state"] {
                // Carried in segments of 8 is the same recurrence as the run's context.
                XCTAssertEqual(try XCTUnwrap(blocked["bpc"] as? Double), try XCTUnwrap(carriedResult["bpc"] as? Double), accuracy: 1e-4)
            }
        }
        try assertFails(["eval", "lm", "--checkpoint", "run", "--context", "8", "--blocks", "12"], mentioning: "--blocks 12 must be a multiple of the context 8")
        try assertFails(["train", "lm", "--data", "data", "--mixer", "delta", "--normalization", "max"] + tiny, mentioning: "--normalization: unknown normalisation 'max'")
        try assertFails(["train", "lm", "--data", "data", "--mixer", "softmax", "--normalization", "l2"] + tiny, mentioning: "softmax has its own")

        // Resume to 9 steps in a second process = 9 steps straight (with a
        // schedule that does not depend on --steps: the cosine decays to 1x).
        let flat = tiny + ["--min-lr-factor", "1"]
        XCTAssertEqual(try cli.run(["train", "lm", "--data", "data", "--mixer", "delta", "--steps", "5", "--out", "part", "--quiet"] + flat).status, 0)
        XCTAssertEqual(try cli.run(["train", "lm", "--resume", "part/checkpoint.safetensors", "--steps", "9", "--quiet"]).status, 0)
        XCTAssertEqual(try cli.run(["train", "lm", "--data", "data", "--mixer", "delta", "--steps", "9", "--out", "straight", "--quiet"] + flat).status, 0)
        let a = try SafeTensors.read(cli.path("part/checkpoint.safetensors")), b = try SafeTensors.read(cli.path("straight/checkpoint.safetensors"))
        XCTAssertEqual(a.names, b.names)
        for name in a.names where !name.hasPrefix("best.") { XCTAssertEqual(a.tensors[name], b.tensors[name], name) }

        // The same seed gives the same bytes; the prompt comes first.
        let g1 = try cli.run(["generate", "--checkpoint", "run", "--prompt", "0: to", "--tokens", "40", "--seed", "7"])
        let g2 = try cli.run(["generate", "--checkpoint", "run", "--prompt", "0: to", "--tokens", "40", "--seed", "7"])
        let g3 = try cli.run(["generate", "--checkpoint", "run", "--prompt", "0: to", "--tokens", "40", "--seed", "8", "--top-k", "3"])
        XCTAssertEqual(g1.status, 0, g1.err)
        XCTAssertEqual(g1.out, g2.out)
        XCTAssertTrue(g1.out.hasPrefix("0: to"), g1.out)
        XCTAssertEqual(g3.status, 0, g3.err)
    }

    func testCarryStateTrainingWritesItsStateAndResumes() throws {
        let r = try cli.run(["train", "lm", "--data", "data", "--mixer", "linear", "--carry-state", "--steps", "4", "--out", "c", "--quiet"] + tiny)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(try SafeTensors.read(cli.path("c/checkpoint.safetensors")).names.contains("extra.state.fast_weights.0"))
        let summary = try json("c/summary.json")
        XCTAssertEqual(summary["mode"] as? String, "carry")
        XCTAssertEqual(try cli.run(["train", "lm", "--resume", "c/checkpoint.safetensors", "--steps", "6", "--quiet"]).status, 0)
    }

    /// The FLA mixers end to end: truncated and carried training (the
    /// checkpoint holds the conv windows beside the fast weights), resume,
    /// evaluation both ways, generation.
    func testDeltaNetMixersTrainEvaluateAndGenerate() throws {
        for mixer in ["deltanet", "gated-deltanet"] {
            let t = try cli.run(["train", "lm", "--data", "data", "--mixer", mixer, "--steps", "3", "--out", mixer, "--quiet"] + tiny)
            XCTAssertEqual(t.status, 0, t.err)
            XCTAssertEqual(try json("\(mixer)/summary.json")["mixer"] as? String, mixer)
            let c = try cli.run(["train", "lm", "--data", "data", "--mixer", mixer, "--carry-state", "--steps", "3",
                                 "--out", "\(mixer)-carry", "--quiet"] + tiny)
            XCTAssertEqual(c.status, 0, c.err)
            let names = try SafeTensors.read(cli.path("\(mixer)-carry/checkpoint.safetensors")).names
            XCTAssertTrue(names.contains("extra.state.fast_weights.0") && names.contains("extra.state.conv_states.0"), "\(names)")
            XCTAssertEqual(try cli.run(["train", "lm", "--resume", "\(mixer)-carry/checkpoint.safetensors", "--steps", "5", "--quiet"]).status, 0)
            for (run, flags) in [(mixer, ["--carry-state"]), ("\(mixer)-carry", []), ("\(mixer)-carry", ["--truncated"])] {
                let e = try cli.run(["eval", "lm", "--checkpoint", run, "--json"] + flags)
                XCTAssertEqual(e.status, 0, "\(run) \(flags): \(e.err)")
                let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(e.out.utf8)) as? [String: Any])
                XCTAssertTrue((result["bpc"] as? Double).map { $0.isFinite && $0 > 0 } ?? false, "\(result)")
            }
            let g1 = try cli.run(["generate", "--checkpoint", "\(mixer)-carry", "--prompt", "0: to", "--tokens", "30", "--seed", "3"])
            let g2 = try cli.run(["generate", "--checkpoint", "\(mixer)-carry", "--prompt", "0: to", "--tokens", "30", "--seed", "3"])
            XCTAssertEqual(g1.status, 0, g1.err)
            XCTAssertEqual(g1.out, g2.out)
            XCTAssertTrue(g1.out.hasPrefix("0: to"), g1.out)
        }
        let help = try cli.run(["train", "lm", "--help"])
        XCTAssertTrue(help.out.contains("deltanet,") && help.out.contains("gated-deltanet"), help.out)
    }

    func testBadOptionsAndDataAreOneLine() throws {
        try assertFails(["train", "lm", "--mixer", "delta"], mentioning: "missing --data")
        try assertFails(["train", "lm", "--data", "data"], mentioning: "missing --mixer")
        try assertFails(["train", "lm", "--data", "data", "--mixer", "lstm"], mentioning: "unknown --mixer 'lstm'")
        try assertFails(["train", "lm", "--data", "data", "--mixer", "softmax", "--carry-state"] + tiny, mentioning: "no state to carry")
        try assertFails(["train", "lm", "--data", "nowhere", "--mixer", "delta", "--quiet"] + tiny, mentioning: "nowhere")
        try assertFails(["train", "lm", "--data", "data", "--mixer", "delta"] + tiny + ["--context", "-3"], mentioning: "--context")
        try assertFails(["train", "lm", "--data", "data", "--mixer", "delta", "--heads", "3", "--model-size", "16"], mentioning: "3")
        try assertFails(["eval", "lm", "--checkpoint", "missing.safetensors"], mentioning: "missing.safetensors")
        try assertFails(["generate", "--checkpoint", "missing"], mentioning: "missing")
        // A corpus whose split was edited after fwp data made it.
        try AtomicFile.write(Array("tampered".utf8), to: cli.path("data/valid.txt"))
        try assertFails(["train", "lm", "--data", "data", "--mixer", "delta", "--quiet"] + tiny, mentioning: "valid.txt")
        XCTAssertFalse(FileManager.default.fileExists(atPath: cli.path("runs")), "nothing written on bad input")
    }

    func testReproduceWritesTheTableAndReusesFinishedRows() throws {
        let args = ["reproduce", "schlag2021-lm", "--quick", "--data", "data", "--rows", "delta,linear-carry", "--steps", "2",
                    "--out", "rep", "--quiet"]
        let r = try cli.run(args)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(cli.files(in: "rep"), ["runs", "schlag2021-lm.csv", "schlag2021-lm.json", "schlag2021-lm.md", "schlag2021-lm.svg"])
        let report = try json("rep/schlag2021-lm.json")
        let rows = try XCTUnwrap(report["rows"] as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["mixer"] as? String }, ["delta", "linear"])
        XCTAssertEqual(rows.map { $0["mode"] as? String }, ["truncated", "carry"])
        for row in rows {
            for key in ["model", "mixer", "phi", "mode", "params", "valid_bpc", "test_bpc", "steps", "seconds", "tokens_per_s"] {
                XCTAssertNotNil(row[key], key)
            }
        }
        let again = try cli.run(args.filter { $0 != "--quiet" })
        XCTAssertEqual(again.status, 0, again.err)
        XCTAssertEqual(again.err.components(separatedBy: "(reused)").count - 1, 2, again.err)
    }
}
