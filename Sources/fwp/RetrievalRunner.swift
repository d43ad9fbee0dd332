import FastWeights
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs one associative-retrieval training into an output folder — shared by
/// `fwp train retrieval` and `fwp reproduce ba2016`:
///
///     DIR/log.csv                  one row per evaluation (appended when resumed)
///     DIR/checkpoint.safetensors   written at every evaluation and at the end
///     DIR/summary.json             written at the end (config, steps, time, errors, curve)
enum RetrievalRunner {
    /// The result of a finished run.
    struct Outcome {
        var summary: [String: Any]
        var test: ClassificationResult
        var trainer: RetrievalTrainer
    }

    static func checkpointPath(_ dir: String) -> String { (dir as NSString).appendingPathComponent("checkpoint.safetensors") }
    static func logPath(_ dir: String) -> String { (dir as NSString).appendingPathComponent("log.csv") }
    static func summaryPath(_ dir: String) -> String { (dir as NSString).appendingPathComponent("summary.json") }

    /// Makes `dir` (and parents); throws `FWError.file` when it cannot or it is a file.
    static func makeFolder(_ dir: String) throws {
        var isDir: ObjCBool = false
        let fm = FileManager.default
        if fm.fileExists(atPath: dir, isDirectory: &isDir) {
            if !isDir.boolValue { throw FWError.file(path: dir, reason: "--out exists and is not a folder") }
            return
        }
        do { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        catch { throw FWError.file(path: dir, reason: "cannot create the output folder") }
    }

    /// Trains `trainer` to the end, logging into `dir`; prints progress on
    /// stderr (one line per evaluation, and a live line on a terminal) unless `quiet`.
    static func run(_ trainer: RetrievalTrainer, dir: String, label: String, quiet: Bool,
                    progressEvery: Int = 500) throws -> Outcome {
        try makeFolder(dir)
        trainer.log = try RunLog(csvPath: logPath(dir), columns: RetrievalTrainer.logColumns)
        trainer.checkpointPath = checkpointPath(dir)
        let terminal = isatty(STDERR_FILENO) != 0
        if !quiet {
            trainer.reporter = ProgressReporter(total: trainer.config.maxSteps, startStep: trainer.progress.step,
                                                every: progressEvery)
            trainer.onEvaluation = { r in
                let best = trainer.progress.bestValidationErrorPercent ?? r.validationErrorPercent
                let line = String(format: "%@ step %d: train loss %.4f, validation error %.2f%% (loss %.4f), best %.2f%%, %.0f s",
                                  label, r.step, r.trainLoss, r.validationErrorPercent, r.validationLoss, best, r.seconds)
                printError((terminal ? "\r\u{1B}[2K" : "") + line)
            }
        }
        try trainer.train()
        // The final state (resumable: a later --resume with more --steps goes on from here).
        try trainer.writeCheckpoint(to: checkpointPath(dir))
        let test = try trainer.evaluateTest()
        let summary = trainer.summary(test: test)
        try RunLog.writeSummary(summary, to: summaryPath(dir))
        return Outcome(summary: summary, test: test, trainer: trainer)
    }

    /// The step, training seconds and validation error % of the last row of `dir`/log.csv
    /// (nil before the first evaluation): how far a child run has got.
    static func lastEvaluation(_ dir: String) -> (step: Int, seconds: Double, validationError: Double)? {
        guard let text = try? String(contentsOfFile: logPath(dir), encoding: .utf8),
              let last = text.split(separator: "\n").last else { return nil }
        let fields = last.split(separator: ",")
        let column = RetrievalTrainer.logColumns.firstIndex(of: "validation_error_pct") ?? 5
        guard fields.count > column, let step = Int(fields[0]), let seconds = Double(fields[1]),
              let error = Double(fields[column]) else { return nil }
        return (step, seconds, error)
    }

    /// The line `fwp train` prints on stdout at the end.
    static func finalLine(_ o: Outcome) -> String {
        let p = o.trainer.progress
        return String(format: "test error %.2f%% (loss %.4f, %d examples); best validation error %.2f%% at step %d; %d steps in %.1f s%@",
                      o.test.errorPercent, Double(o.test.loss), o.test.count,
                      p.bestValidationErrorPercent ?? .nan, p.bestStep ?? 0, p.step, p.seconds,
                      p.stoppedEarly ? " (stopped early: validation error 0)" : "")
    }
}
