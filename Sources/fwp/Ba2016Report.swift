import FastWeights
import Foundation

/// One trained row of Table 1, read from its run's summary.
struct Ba2016Row {
    var model: RetrievalModelKind
    var hidden: Int
    var testError: Double
    var steps: Int
    var seconds: Double
    var bestValidationError: Double?
    var bestStep: Int?
    var stoppedEarly: Bool
    var parameters: Int
    /// (step, validation error %) at every evaluation.
    var curve: [(Double, Double)]
    var reused: Bool

    /// The paper's number for this row, if it has one.
    var paper: Double? { Ba2016.paper[model]?[hidden] }

    /// Reads the summary `RetrievalTrainer.summary(test:)` made (nil if it is not one).
    init?(summary s: [String: Any], reused: Bool) {
        guard let m = (s["model"] as? String).flatMap(RetrievalModelKind.init(rawValue:)),
              let hidden = s["hidden"] as? Int, let test = s["test_error_pct"] as? Double,
              let steps = s["steps"] as? Int, let seconds = s["seconds"] as? Double else { return nil }
        model = m
        self.hidden = hidden
        testError = test
        self.steps = steps
        self.seconds = seconds
        bestValidationError = s["best_validation_error_pct"] as? Double
        bestStep = s["best_step"] as? Int
        stoppedEarly = s["stopped_early"] as? Bool ?? false
        parameters = s["parameters"] as? Int ?? 0
        curve = (s["validation_curve"] as? [[Double]] ?? []).compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
        self.reused = reused
    }
}

extension Ba2016Row {
    /// The row a finished run left in `dir`/summary.json (nil if none is readable).
    static func read(_ dir: String, reused: Bool) -> Ba2016Row? {
        guard let data = FileManager.default.contents(atPath: RetrievalRunner.summaryPath(dir)),
              let summary = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return Ba2016Row(summary: summary, reused: reused)
    }

    /// One line for the progress output.
    var line: String {
        String(format: "test error %.2f%% (paper %@), %d steps, %.0f s", testError,
               paper.map { String(format: "%.2f%%", $0) } ?? "-", steps, seconds)
    }
}

/// The table, its JSON and Markdown files and the learning curves.
struct Ba2016Report {
    var rows: [Ba2016Row]
    var quick: Bool
    var wallSeconds: Double
    /// Rows trained at once (each a single-threaded child process).
    var jobs: Int
    var blasCore: String
    /// The first row's configuration (the shared settings: K, embedding, batch, lr, ...).
    var config: RetrievalRunConfig?

    var hiddenSizes: [Int] { Array(Set(rows.map(\.hidden))).sorted() }
    var models: [RetrievalModelKind] { Ba2016.models.filter { m in rows.contains { $0.model == m } } }

    func row(_ m: RetrievalModelKind, _ r: Int) -> Ba2016Row? { rows.first { $0.model == m && $0.hidden == r } }

    static func pct(_ x: Double?) -> String { x.map { String(format: "%.2f", $0) } ?? "-" }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        if t < 60 { return "\(t)s" }
        if t < 3600 { return "\(t / 60)m\(String(format: "%02d", t % 60))s" }
        return "\(t / 3600)h\(String(format: "%02d", (t % 3600) / 60))m"
    }

    /// The plain-text table printed on stdout: ours beside the paper's, per R.
    func table() -> String {
        var lines = ["Associative retrieval (Ba et al. 2016, Table 1): test error %, ours (paper)"
                     + (quick ? " -- quick run: R = 20 only, fewer steps" : "")]
        let header = "model         " + hiddenSizes.map { "R=\($0)".padding(toLength: 18, withPad: " ", startingAt: 0) }.joined()
        lines.append(header)
        for m in models {
            var line = m.displayName.padding(toLength: 14, withPad: " ", startingAt: 0)
            for r in hiddenSizes {
                let cell: String
                if let row = row(m, r) { cell = "\(Self.pct(row.testError)) (\(Self.pct(row.paper)))" } else { cell = "-" }
                line += cell.padding(toLength: 18, withPad: " ", startingAt: 0)
            }
            lines.append(line)
        }
        lines.append("runs (steps / seconds): " + rows.map {
            "\($0.model.rawValue) R=\($0.hidden) \($0.steps) / \(Int($0.seconds.rounded()))\($0.stoppedEarly ? " (early stop)" : "")"
        }.joined(separator: "; "))
        return lines.joined(separator: "\n")
    }

    func json() throws -> Data {
        let array: [[String: Any]] = rows.map { r in
            var d: [String: Any] = [
                "model": r.model.rawValue, "model_name": r.model.displayName, "hidden": r.hidden,
                "test_error_pct": r.testError, "steps": r.steps, "seconds": r.seconds,
                "stopped_early": r.stoppedEarly, "parameters": r.parameters,
            ]
            if let p = r.paper { d["paper_test_error_pct"] = p }
            if let b = r.bestValidationError { d["best_validation_error_pct"] = b }
            if let b = r.bestStep { d["best_step"] = b }
            return d
        }
        return try JSONSerialization.data(withJSONObject: array, options: [.prettyPrinted, .sortedKeys])
    }

    func markdown() -> String {
        var md = ["# Associative retrieval: Ba et al. 2016, Table 1", ""]
        md.append("Test error (%) on \(config?.testExamples ?? 0) test sequences with the parameters of the best validation error; "
                  + "the paper's number in parentheses." + (quick ? " **Quick run**: R = 20 only and at most \(rows.map(\.steps).max() ?? 0) steps per model (the full run: R = 20, 50, 100 and up to \(Ba2016.fullSteps) steps); the point it shows is the gap between fast weights and the baselines at R = 20." : ""))
        md.append("")
        md.append("| Model | " + hiddenSizes.map { "R = \($0)" }.joined(separator: " | ") + " |")
        md.append("|---|" + hiddenSizes.map { _ in "---|" }.joined())
        for m in models {
            md.append("| \(m.displayName) | " + hiddenSizes.map { r in
                row(m, r).map { "\(Self.pct($0.testError)) (\(Self.pct($0.paper)))" } ?? "-"
            }.joined(separator: " | ") + " |")
        }
        md.append("")
        md.append("| Run | Steps | Time | Best validation error (%) at step | Parameters |")
        md.append("|---|---|---|---|---|")
        for r in rows {
            md.append("| \(r.model.displayName) R = \(r.hidden) | \(r.steps)\(r.stoppedEarly ? " (early stop)" : "") | \(Self.duration(r.seconds)) | \(Self.pct(r.bestValidationError)) at \(r.bestStep.map(String.init) ?? "-") | \(r.parameters) |")
        }
        md.append("")
        if let c = config {
            md.append("Setup: K = \(c.pairs) key-value pairs (T = \(2 * c.pairs + 3)), embedding \(c.embedding), batch \(c.batchSize), "
                      + "Adam lr \(c.learningRate)\(c.clipNorm > 0 ? ", clipping at \(c.clipNorm)" : ""), seed \(c.seed), "
                      + "\(c.trainExamples) / \(c.validationExamples) / \(c.testExamples) sequences, validation every \(c.evalEvery) steps, "
                      + "early stop after \(c.patience) evaluations at 0% validation error; fast weights lambda \(c.lambda), eta \(c.eta), "
                      + "S = \(c.innerSteps), layer norm, \(c.activation), W = \(c.recurrentInit); A-LSTM \(c.copies) copies. "
                      + "Choices: `Sources/FWModels/Tasks/AssociativeRetrieval.md`.")
        }
        md.append("")
        md.append("Wall-clock \(Self.duration(wallSeconds)), \(jobs) run(s) at a time in child processes of one thread each, OpenBLAS \(blasCore) kernels. "
                  + "Learning curves: `ba2016-curves.svg`.")
        return md.joined(separator: "\n") + "\n"
    }

    /// The files `write` makes in its folder.
    static let fileNames = ["ba2016.json", "ba2016.md", "ba2016-curves.svg"]

    /// Writes the JSON, Markdown and SVG into `dir`, all or none.
    func write(to dir: String) throws {
        func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
        let json = [UInt8](try json()) + [10]
        try OutputTransaction.run { tx in
            try tx.stage(json, to: path("ba2016.json"))
            try tx.stage(Array(markdown().utf8), to: path("ba2016.md"))
            try tx.stage(Array(LearningCurvesSVG(report: self).render().utf8), to: path("ba2016-curves.svg"))
        }
    }
}
