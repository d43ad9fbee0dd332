import ArgumentParser
import FastWeights
import Foundation

/// `fwp reproduce schlag2021 --setting 1|2`: the synthetic retrieval figures
/// of Schlag et al. 2021 (section 6.1).
struct ReproduceSchlag2021Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schlag2021",
        abstract: "Schlag et al. 2021, synthetic retrieval: loss vs S per model (setting 1: capacity, setting 2: updates).",
        discussion: """
            Trains every (model, S) of the setting's figure, each in its own child process \
            (`fwp train synthetic`, one OpenBLAS thread; --jobs of them at once, default one per core), \
            into DIR/runs/<model>-S<S>/. A run whose folder already holds a summary of the same \
            configuration is reused (--fresh starts over). Then prints the table (best evaluation loss \
            per model and S) and writes DIR/schlag2021-setting<N>.json, .csv, .md and .svg. \
            --scale paper is the paper's sweep (d_key 64; S = 20...600 in setting 1, 20...200 in \
            setting 2); --scale small (default) divides S and FAVOR+'s m by 4 at d_key 16. --quick: \
            small scale, fewer models and S, at most \(Schlag2021.quickSteps) steps per run.
            """)

    @Option(help: "1 (capacity) or 2 (updates).") var setting: Int
    @Flag(help: "Fewer models and S, at most \(Schlag2021.quickSteps) steps per run (minutes).") var quick = false
    @Option(help: "small (d_key 16, S / 4) or paper (d_key 64).") var scale: String = "small"
    @Option(help: "Comma-separated models (softmax, sum:<phi>, delta:<phi>); default the figure's.") var models: String?
    @Option(help: "Comma-separated S values; default the figure's sweep at the scale.") var sizes: String?
    @Option(help: "Runs at once (default: one per core).") var jobs: Int?
    @Option(help: "Output folder. Default results/schlag2021-setting<N>[-paper][-quick].") var out: String?
    @OptionGroup var options: SyntheticRunOptions
    @Flag(help: "Retrain every run, ignoring summaries already in DIR/runs.") var fresh = false
    @Flag(help: "No progress output on stderr.") var quiet = false

    func run() throws {
        guard setting == 1 || setting == 2 else {
            throw FWError.invalidArgument("--setting must be 1 (capacity) or 2 (updates), got \(setting)")
        }
        guard let scale = Schlag2021.Scale(rawValue: scale) else {
            throw FWError.invalidArgument("--scale must be small or paper, got '\(self.scale)'")
        }
        if quick && scale == .paper { throw FWError.invalidArgument("--quick runs at --scale small only") }
        let modelList: [Schlag2021Model] = try models.map { text in
            try CommaList.parse(text, option: "--models") { name in
                _ = try SyntheticReader(parsing: name)
                return Schlag2021Model(name: Schlag2021.displayName(name, setting: setting, scale: scale), model: name)
            }
        } ?? (quick ? Schlag2021.quickModels(setting: setting) : Schlag2021.models(setting: setting, scale: scale))
        let sizeList: [Int] = try sizes.map { try CommaList.positiveIntegers($0, option: "--sizes") }
            ?? (quick ? Schlag2021.quickSizes(setting: setting) : Schlag2021.sizes(setting: setting, scale: scale))
        let jobCount = jobs ?? ThreadOwnership.workers
        try SizeLimits.check(jobCount, in: 1...ThreadOwnership.maxWorkers, "--jobs")
        let dir = out ?? "results/schlag2021-setting\(setting)\(scale == .paper ? "-paper" : "")\(quick ? "-quick" : "")"

        // Every configuration is checked before anything runs.
        var plan: [(model: Schlag2021Model, config: SyntheticRunConfig, dir: String)] = []
        for m in modelList {
            for s in sizeList {
                var c = SyntheticRunConfig(setting: setting, size: s, model: m.model)
                c.keySize = scale.keySize
                if quick { c.maxSteps = Schlag2021.quickSteps }
                try options.apply(to: &c)
                try c.validate()
                let runDir = ((dir as NSString).appendingPathComponent("runs") as NSString)
                    .appendingPathComponent("setting\(setting)-\(m.model.replacingOccurrences(of: ":", with: "-"))-S\(s)")
                plan.append((m, c, runDir))
            }
        }
        for ext in ["json", "csv", "md", "svg"] {
            try OutputTransaction.checkDestination((dir as NSString).appendingPathComponent("schlag2021-setting\(setting).\(ext)"), createFolder: true)
        }
        try RetrievalRunner.makeFolder(dir)
        if !quiet {
            printError("fwp reproduce schlag2021 --setting \(setting): \(modelList.count) models x \(sizeList.count) S = \(plan.count) runs into \(dir), \(jobCount) at a time")
        }
        let started = DispatchTime.now().uptimeNanoseconds
        let pool = ChildRunPool<SyntheticRunResult>(jobs: jobCount, quiet: quiet, total: plan.count,
                                                    read: SyntheticSummary.read, describe: SyntheticSummary.line)
        for (i, item) in plan.enumerated() {
            if !fresh, let saved = SyntheticSummary.read(item.dir), saved.config == item.config {
                pool.finished(i, name: item.model.name, result: saved, reused: true)
                continue
            }
            try RetrievalRunner.makeFolder((dir as NSString).appendingPathComponent("runs"))
            pool.launch(i, name: item.model.name, arguments: try childArguments(item.config, dir: item.dir), dir: item.dir)
        }
        let results = try pool.wait()
        let wall = Double(DispatchTime.now().uptimeNanoseconds - started) * 1e-9
        let rows = plan.indices.map { Schlag2021Row(name: plan[$0].model.name, result: results[$0]!) }
        let report = Schlag2021Report(setting: setting, scale: scale, quick: quick, models: modelList, sizes: sizeList,
                                      rows: rows, wallSeconds: wall)
        try report.write(to: dir)
        print(report.table())
        print(String(format: "wall-clock %.1f s (%@); wrote %@/%@.json, .csv, .md, .svg", wall,
                     Ba2016Report.duration(wall), dir, report.baseName))
    }

    /// `fwp train synthetic` arguments that train exactly `c` into `dir`:
    /// the config is written beside the folder and the child reads it.
    func childArguments(_ c: SyntheticRunConfig, dir: String) throws -> [String] {
        let configPath = dir + ".json"
        try RunConfigFile.write(c, to: configPath)
        return ["train", "synthetic", "--config", configPath, "--out", dir, "--force", "--quiet"]
    }
}
