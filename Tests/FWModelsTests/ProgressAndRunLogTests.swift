// The progress line (terminal and log modes, with a fake clock) and the
// run log (CSV rows, resumed appends, atomic JSON summary).
import Foundation
import XCTest
import FWTestSupport

final class ProgressAndRunLogTests: XCTestCase {
    /// Collects what a reporter writes.
    private final class Sink { var text = "" }

    func testOffTerminalPrintsEveryNStepsAndTheLast() {
        let sink = Sink()
        var now = 100.0
        var reporter = ProgressReporter(total: 5, every: 2, isTerminal: false,
                                        write: { sink.text += $0 }, clock: { now })
        for step in 1...5 {
            now += 0.5                                           // 2 steps/s
            reporter.update(step: step, loss: 1 / Float(step), accuracy: 0.5, tokens: 1000)
        }
        reporter.finish()
        let lines = sink.text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3, sink.text)
        // Rates count from the first update (step 1 at t = 100.5): 1 step in 0.5 s at step 2.
        XCTAssertEqual(lines[0], "step 2/5 | loss 0.5000 | acc 50.0% | 2.0 steps/s | 2.0k tok/s | ETA 2s")
        XCTAssertEqual(lines[2], "step 5/5 | loss 0.2000 | acc 50.0% | 2.0 steps/s | 2.0k tok/s | ETA 0s")
        XCTAssertFalse(sink.text.contains("\r"))
    }

    func testTerminalRewritesOneLineAtMostTenTimesASecond() {
        let sink = Sink()
        var now = 0.0
        var reporter = ProgressReporter(total: 100, isTerminal: true, write: { sink.text += $0 }, clock: { now })
        for step in 1...100 {
            now += 0.01                                          // 100 steps/s: draws every ~10 steps
            reporter.update(step: step, loss: 2)
        }
        let draws = sink.text.components(separatedBy: "\r\u{1B}[2K").count - 1
        XCTAssertTrue((9...12).contains(draws), "\(draws) redraws")
        XCTAssertTrue(sink.text.hasSuffix("step 100/100 | loss 2.0000 | 100.0 steps/s | ETA 0s\n"), sink.text)
        XCTAssertFalse(sink.text.contains("tok/s"))
        XCTAssertEqual(ProgressReporter.format(step: 3, total: 9000, loss: 1, accuracy: nil, stepsPerSecond: 1.5,
                                               tokensPerSecond: 2.5e6, eta: 5998),
                       "step 3/9000 | loss 1.0000 | 1.5 steps/s | 2.50M tok/s | ETA 1h39m")
    }

    func testRunLogAppendsResumesAndWritesSummary() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fwrunlog-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let csv = dir + "/log.csv"
        do {
            let log = try RunLog(csvPath: csv, columns: ["step", "loss", "note"])
            try log.append(fields: ["1", "2.5", "warm, up"])
            try log.append([2, 0.125, 7])
            XCTAssertThrowsError(try log.append([1, 2]))
        }
        do {   // a resumed run appends under the same header
            let log = try RunLog(csvPath: csv, columns: ["step", "loss", "note"])
            try log.append([3, Double(Float(0.1)), .nan])
        }
        XCTAssertEqual(try String(contentsOfFile: csv, encoding: .utf8),
                       "step,loss,note\n1,2.5,\"warm, up\"\n2,0.125,7\n3,0.100000001,nan\n")
        XCTAssertThrowsError(try RunLog(csvPath: csv, columns: ["step", "acc"])) { error in
            XCTAssertEqual(error as? FWError, .file(path: csv, reason: "existing log has columns 'step,loss,note', this run writes 'step,acc'"))
        }

        let summary = dir + "/summary.json"
        try RunLog.writeSummary(["final_loss": 0.5, "steps": 3, "task": "toy", "curve": [1.0, 0.5]], to: summary)
        let parsed = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: summary))) as? [String: Any]
        XCTAssertEqual(parsed?["task"] as? String, "toy")
        XCTAssertEqual(parsed?["steps"] as? Int, 3)
        XCTAssertThrowsError(try RunLog.writeSummary(["loss": Double.nan], to: summary))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["log.csv", "summary.json"])
    }
}
