import ArgumentParser
import FastWeights
import Foundation

/// `fwp reproduce ...`: re-run a paper's table end to end.
struct ReproduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reproduce",
        abstract: "Reproduce a paper's table end to end.",
        subcommands: [ReproduceBa2016Command.self, ReproduceSchlag2021Command.self])
}

/// One row of the plan: a model at one R, trained for at most `steps`.
struct Ba2016Run {
    var model: RetrievalModelKind
    var hidden: Int
    var steps: Int

    var folderName: String { "\(model.rawValue)-R\(hidden)" }
}

/// Ba et al. 2016, Table 1 (associative retrieval, test error %), and the plans.
enum Ba2016 {
    /// The paper's test errors (%), by model and R.
    static let paper: [RetrievalModelKind: [Int: Double]] = [
        .irnn: [20: 62.11, 50: 60.23, 100: 0.34],
        .lstm: [20: 60.81, 50: 1.85, 100: 0],
        .alstm: [20: 60.13, 50: 1.62, 100: 0],
        .fastWeights: [20: 1.81, 50: 0, 100: 0],
    ]
    /// Rows in the paper's order.
    static let models: [RetrievalModelKind] = [.irnn, .lstm, .alstm, .fastWeights]
    static let hiddenSizes = [20, 50, 100]

    /// The full table: every model at every R, `fullSteps` steps at most
    /// (each stops early once its validation error has been 0 for `patience` evaluations).
    static let fullSteps = 100_000
    /// --quick: only R = 20 (the column where the paper's point is), every
    /// model, `quickSteps` steps at most.
    static let quickSteps = 15_000
    /// Evaluation interval: full and quick.
    static let fullEvalEvery = 1_000
    static let quickEvalEvery = 500

    static func plan(quick: Bool, models: [RetrievalModelKind], hidden: [Int], steps: Int?) -> [Ba2016Run] {
        var runs: [Ba2016Run] = []
        for m in models {
            for r in hidden { runs.append(Ba2016Run(model: m, hidden: r, steps: steps ?? (quick ? quickSteps : fullSteps))) }
        }
        return runs
    }
}

/// `fwp reproduce ba2016`: Table 1 of Ba et al. 2016 (associative retrieval).
struct ReproduceBa2016Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ba2016",
        abstract: "Table 1 of Ba et al. 2016: associative retrieval, IRNN / LSTM / A-LSTM / fast weights at R = 20, 50, 100.",
        discussion: """
            Trains every row (one folder each under DIR/runs/, with log.csv, checkpoint.safetensors \
            and summary.json), then prints the table beside the paper's numbers and writes \
            DIR/ba2016.json, DIR/ba2016.md and DIR/ba2016-curves.svg (validation error vs step). \
            A row whose folder already holds a finished run of the same configuration is reused; \
            an unfinished one is resumed from its checkpoint (--fresh starts over). \
            --quick trains only R = 20, at most \(Ba2016.quickSteps) steps per model (the full table: \
            R = 20, 50, 100, at most \(Ba2016.fullSteps) steps).
            """)

    @Flag(help: "Only R = 20 and fewer steps (minutes instead of hours).") var quick = false
    @Option(help: "Output folder. Default results/ba2016 (results/ba2016-quick with --quick).") var out: String?
    @Option(help: "Step limit of every row (default: \(Ba2016.fullSteps), or \(Ba2016.quickSteps) with --quick).")
    var steps: Int?
    @Option(help: "Comma-separated models to train (default: irnn,lstm,alstm,fast-weights).") var models: String?
    @Option(help: "Comma-separated R values (default: 20,50,100, or 20 with --quick).") var hidden: String?
    @OptionGroup var options: RetrievalRunOptions
    @Flag(help: "Start every row over, ignoring runs already in DIR/runs.") var fresh = false
    @Flag(help: "No progress output on stderr.") var quiet = false

    func run() throws {
        let modelList = try models.map { try $0.split(separator: ",").map { try parseModel(String($0)) } } ?? Ba2016.models
        let hiddenList = try hidden.map { text in
            try text.split(separator: ",").map { s -> Int in
                guard let r = Int(s), r >= 1 else { throw FWError.invalidArgument("--hidden: '\(s)' is not a positive integer") }
                return r
            }
        } ?? (quick ? [20] : Ba2016.hiddenSizes)
        if let steps, steps < 1 { throw FWError.invalidArgument("--steps must be >= 1, got \(steps)") }
        let dir = out ?? (quick ? "results/ba2016-quick" : "results/ba2016")
        let plan = Ba2016.plan(quick: quick, models: modelList, hidden: hiddenList, steps: steps)
        // Every configuration is checked before anything is trained.
        let configs = try plan.map { run -> RetrievalRunConfig in
            var c = RetrievalRunConfig(model: run.model, hidden: run.hidden)
            c.evalEvery = quick ? Ba2016.quickEvalEvery : Ba2016.fullEvalEvery
            options.apply(to: &c)
            c.maxSteps = run.steps
            try c.validate()
            return c
        }
        try RetrievalRunner.makeFolder(dir)
        let started = DispatchTime.now().uptimeNanoseconds
        if !quiet {
            printError("fwp reproduce ba2016: \(plan.count) runs (\(plan.map(\.folderName).joined(separator: ", "))) into \(dir); \(ThreadOwnership.workers) worker thread(s), OpenBLAS \(BLASCore.name)")
        }
        var rows: [Ba2016Row] = []
        for (i, (run, config)) in zip(plan, configs).enumerated() {
            let runDir = ((dir as NSString).appendingPathComponent("runs") as NSString).appendingPathComponent(run.folderName)
            let label = "[\(i + 1)/\(plan.count)] \(run.model.displayName) R=\(run.hidden)"
            let row = try train(config, runDir: runDir, label: label)
            rows.append(row)
            if !quiet {
                printError(String(format: "%@: test error %.2f%% (paper %.2f%%), %d steps, %.0f s%@", label, row.testError,
                                  row.paper ?? .nan, row.steps, row.seconds, row.reused ? " (reused)" : ""))
            }
        }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - started) * 1e-9
        let report = Ba2016Report(rows: rows, quick: quick, wallSeconds: wall, workers: ThreadOwnership.workers,
                                  blasCore: BLASCore.name, config: configs.first)
        try report.write(to: dir)
        print(report.table())
        print(String(format: "wall-clock %.1f s (%@); wrote %@/ba2016.json, ba2016.md, ba2016-curves.svg", wall,
                     Ba2016Report.duration(wall), dir))
    }

    /// Trains (or reuses, or resumes) one row.
    func train(_ config: RetrievalRunConfig, runDir: String, label: String) throws -> Ba2016Row {
        let checkpoint = RetrievalRunner.checkpointPath(runDir)
        let summaryPath = RetrievalRunner.summaryPath(runDir)
        if !fresh, FileManager.default.fileExists(atPath: checkpoint),
           let saved = try? SafeTensors.read(checkpoint).metadata["config"].map({ try RetrievalCheckpointConfig.decode($0, path: checkpoint) }),
           saved.run == config {
            let finished = saved.progress.stoppedEarly || saved.progress.step >= config.maxSteps
            if finished, let data = FileManager.default.contents(atPath: summaryPath),
               let summary = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               let row = Ba2016Row(summary: summary, reused: true) {
                return row
            }
            if !quiet { printError("\(label): resuming from step \(saved.progress.step)") }
            let trainer = try RetrievalTrainer(resumingFrom: checkpoint)
            let outcome = try RetrievalRunner.run(trainer, dir: runDir, label: label, quiet: quiet, progressEvery: 1000)
            return Ba2016Row(summary: outcome.summary, reused: false)!
        }
        try RetrievalRunner.makeFolder(runDir)
        RetrievalRunner.clearPreviousRun(runDir)
        let trainer = try RetrievalTrainer(config: config)
        let outcome = try RetrievalRunner.run(trainer, dir: runDir, label: label, quiet: quiet, progressEvery: 1000)
        return Ba2016Row(summary: outcome.summary, reused: false)!
    }
}
