import ArgumentParser
import FastWeights
import Foundation

/// The options of a synthetic-retrieval run that `train synthetic` and
/// `reproduce schlag2021` share (everything but the setting, S and the model).
struct SyntheticRunOptions: ParsableArguments {
    @Option(name: .customLong("key-size"), help: "d_key, the width of K and Q before phi (paper: 64).") var keySize: Int?
    @Option(help: "Width of the key embedding (default: the paper's int(2.2 S)).") var embedding: Int?
    @Option(help: "The run's seed (initialisation, data, Omega, evaluation set). Default 1.") var seed: UInt64?
    @Option(help: "Sequences per training step. Default 32.") var batch: Int?
    @Option(help: "Adam's learning rate. Default 0.001.") var lr: Float?
    @Option(help: "Step limit. Default 100000.") var steps: Int?
    @Option(name: .customLong("eval-every"), help: "Evaluate every this many steps. Default 100.") var evalEvery: Int?
    @Option(name: .customLong("eval-sequences"), help: "Sequences in the evaluation set. Default 20.") var evalSequences: Int?
    @Option(name: .customLong("max-queries"), help: "Queries per evaluation sequence at most. Default 200.") var maxQueries: Int?
    @Option(name: .customLong("target-loss"), help: "Stop at this evaluation loss. Default 0.001.") var targetLoss: Float?
    @Option(help: "Stop after this many evaluations without a new best. Default 10.") var patience: Int?
    @Option(name: .customLong("favor-eval"), help: "FAVOR+ at evaluation: fresh (a new Omega per forward, the paper's code) or fixed.")
    var favorEval: String?
    @Flag(name: .customLong("freeze-embedding"), help: "Keep the random key embedding fixed (the paper's code trains it).")
    var freezeEmbedding = false

    /// Options the user gave, by flag (for the error when combined with --config).
    var given: [String] {
        let named: [(String, Bool)] = [("--key-size", keySize != nil), ("--embedding", embedding != nil), ("--seed", seed != nil),
            ("--batch", batch != nil), ("--lr", lr != nil), ("--steps", steps != nil), ("--eval-every", evalEvery != nil),
            ("--eval-sequences", evalSequences != nil), ("--max-queries", maxQueries != nil), ("--target-loss", targetLoss != nil),
            ("--patience", patience != nil), ("--favor-eval", favorEval != nil), ("--freeze-embedding", freezeEmbedding)]
        return named.filter(\.1).map(\.0)
    }

    /// Applies the given options to `c`: the one place where synthetic
    /// options become config fields (a child run reads the config file instead).
    func apply(to c: inout SyntheticRunConfig) throws {
        if let keySize { c.keySize = keySize }
        if let embedding { c.embedding = embedding }
        if let seed { c.seed = seed }
        if let batch { c.batchSize = batch }
        if let lr { c.learningRate = lr }
        if let steps { c.maxSteps = steps }
        if let evalEvery { c.evalEvery = evalEvery }
        if let evalSequences { c.evalSequences = evalSequences }
        if let maxQueries { c.maxQueries = maxQueries }
        if let targetLoss { c.targetLoss = targetLoss }
        if let patience { c.patience = patience }
        if let favorEval {
            guard let f = SyntheticRunConfig.FavorEvaluation(rawValue: favorEval) else {
                throw FWError.invalidArgument("--favor-eval must be fresh or fixed, got '\(favorEval)'")
            }
            c.favorEvaluation = f
        }
        if freezeEmbedding { c.freezeEmbedding = true }
    }
}

/// `fwp train synthetic`: one point of Schlag et al. 2021's synthetic figures.
struct TrainSyntheticCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synthetic",
        abstract: "Train on synthetic retrieval (Schlag et al. 2021, section 6.1): one model at one S.",
        discussion: """
            Models: softmax, sum:<phi> (the sum rule read with the attention denominator) or \
            delta:<phi> (the delta rule, sum-normalised phi), phi one of elu1, dpfp:N, favor:M. \
            Writes DIR/log.csv (one row per evaluation) and DIR/summary.json (the run's \
            configuration, best evaluation loss, steps, seconds, history). A folder that already \
            holds a run is refused unless --force (the old files are replaced only when the new \
            run succeeds).
            """)

    @Option(help: "1 (capacity: L = S, no replacement) or 2 (updates: L = 2S, with replacement).") var setting: Int?
    @Option(name: .customLong("size"), help: "S, the number of keys and of values.") var size: Int?
    @Option(help: "softmax, sum:<phi> or delta:<phi>.") var model: String?
    @Option(help: "Read the whole run configuration from this file (as fwp reproduce writes it); no other run option may be given.")
    var config: String?
    @OptionGroup var options: SyntheticRunOptions
    @Option(help: "Output folder (default runs/synthetic-setting<N>-<model>-S<S>).") var out: String?
    @Flag(help: "Replace a finished run in --out, but only once this run has succeeded (else the old files stay as they were).")
    var force = false
    @Flag(help: "No progress line on stderr.") var quiet = false

    func run() throws {
        let config = try runConfig()
        let dir = out ?? "runs/synthetic-setting\(config.setting)-\(config.model.replacingOccurrences(of: ":", with: ""))-S\(config.size)"
        let folder = try RunFolder.newRun(dir, force: force)
        let result = try folder.run { work in
            let log = try RunLog(csvPath: (work as NSString).appendingPathComponent("log.csv"),
                                 columns: ["step", "seconds", "train_loss", "eval_loss", "eval_accuracy_pct"])
            let result = try SyntheticTrainer.run(config, progress: !quiet, log: log)
            try SyntheticSummary.write(result, to: work)
            return result
        }
        print(SyntheticSummary.line(result))
    }

    /// The run's configuration: from --config, or from the options.
    func runConfig() throws -> SyntheticRunConfig {
        if let config {
            let conflicting = (setting != nil ? ["--setting"] : []) + (size != nil ? ["--size"] : [])
                + (model != nil ? ["--model"] : []) + options.given
            if let first = conflicting.first {
                throw FWError.invalidArgument("\(first) cannot be combined with --config (the file holds the whole configuration)")
            }
            return try RunConfigFile.read(SyntheticRunConfig.self, from: config)
        }
        guard let setting else { throw FWError.invalidArgument("missing --setting (1 or 2)") }
        guard let size else { throw FWError.invalidArgument("missing --size S") }
        guard let model else { throw FWError.invalidArgument("missing --model (softmax, sum:<phi> or delta:<phi>)") }
        var c = SyntheticRunConfig(setting: setting, size: size, model: model)
        try options.apply(to: &c)
        try c.validate()
        return c
    }
}

/// A run's summary.json and its one-line description.
enum SyntheticSummary {
    static func path(_ dir: String) -> String { (dir as NSString).appendingPathComponent("summary.json") }

    static func write(_ result: SyntheticRunResult, to dir: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(result)
        try AtomicFile.write(Array(data) + [UInt8(ascii: "\n")], to: path(dir))
    }

    /// The summary in `dir` if there is a readable one.
    static func read(_ dir: String) -> SyntheticRunResult? {
        guard let data = FileManager.default.contents(atPath: path(dir)) else { return nil }
        return try? JSONDecoder().decode(SyntheticRunResult.self, from: data)
    }

    static func line(_ r: SyntheticRunResult) -> String {
        String(format: "%@ S=%d (d_dot %d): best eval loss %.4f (acc %.1f%%) at step %d; stopped (%@) after %d steps, %.1f s",
               r.config.model, r.config.size, r.dotSize, r.bestLoss, r.bestAccuracyPercent, r.bestStep,
               r.stop.rawValue, r.steps, r.seconds)
    }
}
