import ArgumentParser
import FastWeights
import Foundation

/// `fwp reproduce ...`: re-run a paper's table end to end.
struct ReproduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reproduce",
        abstract: "Reproduce a paper's table end to end.",
        subcommands: [ReproduceBa2016Command.self, ReproduceSchlag2021Command.self, ReproduceSchlag2021LMCommand.self])
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
            Trains every row in its own child process (`fwp train retrieval --config \
            DIR/runs/<model>-R<R>.json`, one thread; --jobs of them at once, default one per core) \
            into DIR/runs/<model>-R<R>/ (log.csv, checkpoint.safetensors, summary.json), then prints the table beside the paper's numbers and writes \
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
    @Option(help: "Rows trained at once, each in its own single-threaded child process (default: one per core).")
    var jobs: Int?
    @Flag(help: "Start every row over, ignoring runs already in DIR/runs.") var fresh = false
    @Flag(help: "No progress output on stderr.") var quiet = false

    func run() throws {
        let modelList = try models.map { try CommaList.parse($0, option: "--models", parseModel) } ?? Ba2016.models
        let hiddenList = try hidden.map { try CommaList.positiveIntegers($0, option: "--hidden") } ?? (quick ? [20] : Ba2016.hiddenSizes)
        if let steps, steps < 1 { throw FWError.invalidArgument("--steps must be >= 1, got \(steps)") }
        let dir = out ?? (quick ? "results/ba2016-quick" : "results/ba2016")
        let plan = Ba2016.plan(quick: quick, models: modelList, hidden: hiddenList, steps: steps)
        // Every configuration is checked before anything is trained.
        let configs = try plan.map { run -> RetrievalRunConfig in
            var c = RetrievalRunConfig(model: run.model, hidden: run.hidden)
            c.evalEvery = quick ? Ba2016.quickEvalEvery : Ba2016.fullEvalEvery
            try options.apply(to: &c)
            c.maxSteps = run.steps
            try c.validate()
            return c
        }
        let jobCount = jobs ?? ThreadOwnership.workers
        try SizeLimits.check(jobCount, in: 1...ThreadOwnership.maxWorkers, "--jobs")
        for name in Ba2016Report.fileNames { try OutputTransaction.checkDestination((dir as NSString).appendingPathComponent(name), createFolder: true) }
        try RetrievalRunner.makeFolder(dir)
        let started = DispatchTime.now().uptimeNanoseconds
        if !quiet {
            printError("fwp reproduce ba2016: \(plan.count) runs (\(plan.map(\.folderName).joined(separator: ", "))) into \(dir), \(jobCount) at a time (one thread each), \(BLASCoreFix.description)")
        }
        let pool = ChildRunPool<Ba2016Row>(jobs: jobCount, quiet: quiet, total: plan.count,
                                           read: { Ba2016Row.read($0, reused: false) }, describe: { $0.line })
        var stepLimit: [String: Int] = [:]
        for (i, (run, config)) in zip(plan, configs).enumerated() {
            let runDir = ((dir as NSString).appendingPathComponent("runs") as NSString).appendingPathComponent(run.folderName)
            let name = "\(run.model.displayName) R=\(run.hidden)"
            stepLimit[runDir] = config.maxSteps
            switch try previousRun(config, runDir: runDir) {
            case .finished(let row):
                pool.finished(i, name: name, result: row, reused: true)
            case .unfinished(let checkpoint, let step):
                if !quiet { printError("\(name): resuming from step \(step)") }
                pool.launch(i, name: name, arguments: ["train", "retrieval", "--resume", checkpoint,
                    "--steps", "\(config.maxSteps)", "--out", runDir, "--quiet"], dir: runDir)
            case .none:
                try RetrievalRunner.makeFolder(runDir)
                // --force: whatever the folder holds (another configuration, --fresh) is
                // replaced only once the new row has finished.
                pool.launch(i, name: name, arguments: try Self.childArguments(config, configPath: runDir + ".json")
                                + ["--out", runDir, "--force", "--quiet"], dir: runDir)
            }
        }
        let finished = try pool.wait { running in
            running.isEmpty ? nil : "running: " + running.map { item in
                RetrievalRunner.lastEvaluation(item.dir).map { e in
                    let limit = stepLimit[item.dir] ?? e.step
                    let eta = e.step > 0 ? Double(limit - e.step) * e.seconds / Double(e.step) : 0
                    return String(format: "%@ step %d/%d, validation error %.2f%%, ETA %@", item.name, e.step, limit,
                                  e.validationError, Ba2016Report.duration(eta))
                } ?? "\(item.name) starting"
            }.joined(separator: "; ")
        }
        let rows = plan.indices.map { finished[$0]! }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - started) * 1e-9
        let report = Ba2016Report(rows: rows, quick: quick, wallSeconds: wall, jobs: jobCount,
                                  blasCore: BLASCore.name, config: configs.first)
        try report.write(to: dir)
        print(report.table())
        print(String(format: "wall-clock %.1f s (%@); wrote %@/ba2016.json, ba2016.md, ba2016-curves.svg", wall,
                     Ba2016Report.duration(wall), dir))
    }

    /// What DIR/runs/<row> already holds for `config`.
    enum PreviousRun {
        case none
        case finished(Ba2016Row)
        case unfinished(checkpoint: String, step: Int)
    }

    /// A finished run of the same configuration is reused, an unfinished one
    /// resumed; anything else (another configuration, --fresh, no checkpoint)
    /// is trained from the start.
    func previousRun(_ config: RetrievalRunConfig, runDir: String) throws -> PreviousRun {
        let checkpoint = RetrievalRunner.checkpointPath(runDir)
        guard !fresh, FileManager.default.fileExists(atPath: checkpoint),
              let saved = try? SafeTensors.read(checkpoint).metadata["config"].map({ try RetrievalCheckpointConfig.decode($0, path: checkpoint) }),
              saved.run == config else { return .none }
        if saved.progress.stoppedEarly || saved.progress.step >= config.maxSteps,
           let row = Ba2016Row.read(runDir, reused: true) {
            return .finished(row)
        }
        return .unfinished(checkpoint: checkpoint, step: saved.progress.step)
    }

    /// `fwp train retrieval` arguments that train exactly `c`: the config
    /// is written to `configPath` and the child reads it (`--config`).
    static func childArguments(_ c: RetrievalRunConfig, configPath: String) throws -> [String] {
        try RunConfigFile.write(c, to: configPath)
        return ["train", "retrieval", "--config", configPath]
    }
}
