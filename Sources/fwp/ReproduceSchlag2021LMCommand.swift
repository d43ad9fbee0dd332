import ArgumentParser
import FastWeights
import Foundation

/// `fwp reproduce schlag2021-lm`: Schlag et al. 2021's language-modelling
/// comparison (Table 2) and the carry-over finding (Table 4), at CPU scale.
struct ReproduceSchlag2021LMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schlag2021-lm",
        abstract: "Schlag et al. 2021, language modelling: every mixer at one config, truncated, then linear and delta carried.",
        discussion: """
            Trains every row (softmax, linear, delta, dpfp-sum, dpfp-delta, favor-sum, favor-delta, \
            and FLA's deltanet and gated-deltanet, which the paper does not have, truncated; linear \
            and delta with --carry-state, then the carry diagnosis: delta with l2-normalised elu1 keys \
            and with l2-normalised keys of both signs (identity phi), truncated and carried, FLA's \
            deltanet carried) at one shared configuration on a text \
            folder (--data, default: made with fwp data shakespeare into DIR/data), each in its own \
            single-threaded child process (`fwp train lm --config DIR/runs/<row>.json`; --jobs at \
            once, default one per core) into DIR/runs/<row>/. A finished row is reused, an unfinished \
            one resumed from its checkpoint when the command is run again (--fresh starts over). Writes \
            DIR/schlag2021-lm.json, .csv, .md (beside the paper's perplexities) and .svg (validation \
            bpc vs step). --quick: a smaller model and fewer steps (minutes).
            """)

    @Flag(help: "A smaller model, fewer steps (minutes).") var quick = false
    @Option(help: "The text folder (default: DIR/data, made with fwp data shakespeare if missing).") var data: String?
    @Option(help: "Output folder. Default results/schlag2021-lm (results/schlag2021-lm-quick with --quick).") var out: String?
    @Option(help: "Steps per row (default \(Schlag2021LM.fullSteps), or \(Schlag2021LM.quickSteps) with --quick).") var steps: Int?
    @Option(help: "Comma-separated rows by folder name (e.g. delta,linear-carry); default all.") var rows: String?
    @Option(help: "Rows trained at once (default: one per core).") var jobs: Int?
    @Flag(help: "Start every row over.") var fresh = false
    @Flag(help: "No progress output on stderr.") var quiet = false

    func run() throws {
        let dir = out ?? (quick ? "results/schlag2021-lm-quick" : "results/schlag2021-lm")
        let plan = try rows.map { text in
            try CommaList.parse(text, option: "--rows") { name -> Schlag2021LMRowPlan in
                guard let r = Schlag2021LM.rows.first(where: { $0.folderName == name }) else {
                    throw FWError.invalidArgument("--rows: unknown row '\(name)' (\(Schlag2021LM.rows.map(\.folderName).joined(separator: ", ")))")
                }
                return r
            }
        } ?? Schlag2021LM.rows
        let jobCount = jobs ?? ThreadOwnership.workers
        try SizeLimits.check(jobCount, in: 1...ThreadOwnership.maxWorkers, "--jobs")
        if let steps { try SizeLimits.check(steps, in: 1...LanguageModelRunConfig.maxStepCount, "--steps") }
        for name in Schlag2021LMReport.fileNames {
            try OutputTransaction.checkDestination((dir as NSString).appendingPathComponent(name), createFolder: true)
        }
        let dataDir = data ?? (dir as NSString).appendingPathComponent("data")
        // Every configuration is checked before anything runs.
        let configs = try plan.map { row -> LanguageModelRunConfig in
            var c = Schlag2021LM.config(mixer: row.mixer, mode: row.mode, data: dataDir, quick: quick,
                                        positionalEncoding: row.positionalEncoding, normalization: row.normalization, phi: row.phi)
            if let steps { c.maxSteps = steps }
            try c.validate()
            return c
        }
        try RetrievalRunner.makeFolder(dir)
        if data == nil && !FileManager.default.fileExists(atPath: (dataDir as NSString).appendingPathComponent("manifest.json")) {
            if !quiet { printError("fwp reproduce schlag2021-lm: no data in \(dataDir): running fwp data shakespeare --out \(dataDir)") }
            try Self.makeData(dataDir)
        }
        _ = try TextCorpus.load(dataDir)   // a bad folder is one error before any row starts
        let runsDir = (dir as NSString).appendingPathComponent("runs")
        try RetrievalRunner.makeFolder(runsDir)
        if !quiet {
            printError("fwp reproduce schlag2021-lm: \(plan.count) rows (\(plan.map(\.folderName).joined(separator: ", "))) into \(dir), \(jobCount) at a time (one thread each), \(BLASCoreFix.description)")
        }
        let started = DispatchTime.now().uptimeNanoseconds
        let rowPlan: @Sendable (String) -> Schlag2021LMRowPlan? = { dir in
            plan.first { (runsDir as NSString).appendingPathComponent($0.folderName) == dir }
        }
        // A row that stops on a non-finite loss has diverged (the paper's carried linear
        // transformer does): that is its result, not a failure of the table.
        let pool = ChildRunPool<Schlag2021LMRow>(jobs: jobCount, quiet: quiet, total: plan.count,
                                                 read: { dir in rowPlan(dir).flatMap { Schlag2021LMRow.read(dir, plan: $0) } },
                                                 describe: { $0.line },
                                                 readFailure: { dir, message in
                                                     rowPlan(dir).flatMap { Schlag2021LMRow.diverged(dir, plan: $0, message: message) } })
        var limits: [String: Int] = [:]
        for (i, (row, config)) in zip(plan, configs).enumerated() {
            let runDir = (runsDir as NSString).appendingPathComponent(row.folderName)
            limits[runDir] = config.maxSteps
            switch try previousRun(config, runDir: runDir, row: row) {
            case .finished(var r):
                r.reused = true
                pool.finished(i, name: row.name, result: r, reused: true)
            case .unfinished(let checkpoint, let step):
                if !quiet { printError("\(row.name): resuming from step \(step)") }
                pool.launch(i, name: row.name, arguments: ["train", "lm", "--resume", checkpoint, "--steps", "\(config.maxSteps)", "--quiet"], dir: runDir)
            case .none:
                try RetrievalRunner.makeFolder(runDir)
                let configPath = runDir + ".json"
                try RunConfigFile.write(config, to: configPath)
                pool.launch(i, name: row.name, arguments: ["train", "lm", "--config", configPath, "--out", runDir, "--force", "--quiet"], dir: runDir)
            }
        }
        let finished = try pool.wait { running in
            running.isEmpty ? nil : "running: " + running.map { item in
                Self.lastLogRow(item.dir).map { step, seconds, bpc in
                    let limit = limits[item.dir] ?? step
                    let eta = step > 0 ? Double(limit - step) * seconds / Double(step) : 0
                    return String(format: "%@ step %d/%d, valid %.3f bpc, ETA %@", item.name, step, limit, bpc, Ba2016Report.duration(eta))
                } ?? "\(item.name) starting"
            }.joined(separator: "; ")
        }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - started) * 1e-9
        let report = Schlag2021LMReport(rows: plan.indices.map { finished[$0]! }, quick: quick, wallSeconds: wall,
                                        config: configs[0], blasCore: BLASCore.name)
        try report.write(to: dir)
        print(report.table())
        print(String(format: "wall-clock %.1f s (%@); wrote %@/schlag2021-lm.json, .csv, .md, .svg", wall, Ba2016Report.duration(wall), dir))
    }

    enum PreviousRun {
        case none
        case finished(Schlag2021LMRow)
        case unfinished(checkpoint: String, step: Int)
    }

    /// A finished run of the same configuration is reused, an unfinished one resumed.
    func previousRun(_ config: LanguageModelRunConfig, runDir: String, row: Schlag2021LMRowPlan) throws -> PreviousRun {
        let checkpoint = (runDir as NSString).appendingPathComponent("checkpoint.safetensors")
        guard !fresh, FileManager.default.fileExists(atPath: checkpoint),
              let text = try? SafeTensors.read(checkpoint).metadata["config"],
              let saved = try? LanguageModelCheckpointConfig.decode(text, path: checkpoint) else { return .none }
        // Exactly the same run, the step limit included: the cosine schedule's horizon is the limit.
        guard saved.run == config, saved.progress.step <= config.maxSteps else { return .none }
        if saved.progress.step == config.maxSteps, let r = Schlag2021LMRow.read(runDir, plan: row) { return .finished(r) }
        return .unfinished(checkpoint: checkpoint, step: saved.progress.step)
    }

    /// The last (step, seconds, valid bpc) of a running row's log.csv.
    static func lastLogRow(_ dir: String) -> (Int, Double, Double)? {
        guard let text = try? String(contentsOfFile: (dir as NSString).appendingPathComponent("log.csv"), encoding: .utf8),
              let last = text.split(separator: "\n").last else { return nil }
        let f = last.split(separator: ",")
        guard f.count >= 5, let step = Int(f[0]), let seconds = Double(f[1]), let bpc = Double(f[4]) else { return nil }
        return (step, seconds, bpc)
    }

    /// `fwp data shakespeare --out dir` in a child process.
    static func makeData(_ dir: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ChildRunPool<Int>.executable)
        p.arguments = ["data", "shakespeare", "--out", dir]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw FWError.invalidArgument("fwp data shakespeare failed: " + ChildRunPool<Int>.failureReason(
                stderr: message, status: p.terminationStatus, signalled: p.terminationReason == .uncaughtSignal))
        }
    }
}
