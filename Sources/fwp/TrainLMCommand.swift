import ArgumentParser
import FastWeights
import FWDistributed
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The options that define a language-model run (shared by `train lm` and
/// `reproduce schlag2021-lm`): the one place where they become config fields.
struct LanguageModelRunOptions: ParsableArguments {
    @Option(help: "Sequence mixer: softmax, linear, delta, dpfp-sum, dpfp-delta, favor-sum, favor-delta, deltanet, gated-deltanet (FLA's DeltaNet / Gated DeltaNet).") var mixer: String?
    @Option(help: "Blocks. Default 4.") var layers: Int?
    @Option(name: .customLong("model-size"), help: "Width D of the residual stream. Default 128.") var modelSize: Int?
    @Option(help: "Heads (D / H per head). Default 8.") var heads: Int?
    @Option(name: .customLong("feed-forward"), help: "Hidden width of the feed-forward layers. Default 4 D.") var feedForward: Int?
    @Option(help: "Dropout rate on the residual branches and the embedding. Default 0.1.") var dropout: Float?
    @Flag(name: .customLong("tied"), help: "Tie the output projection to the byte embedding (the default).") var tied = false
    @Flag(name: .customLong("untied"), help: "Give the output projection its own weights.") var untied = false
    @Option(name: .customLong("favor-features"), help: "FAVOR+ random features m. Default 16.") var favorFeatures: Int?
    @Option(help: "n on phi(q) and phi(k) in place of the mixer's own (sum for the delta rules, none for the sum rules): none, sum or l2.")
    var normalization: String?
    @Option(help: "phi in place of the mixer's own (elu1, dpfp:N or favor:M): identity, elu1, silu, dpfp:N, favor:M.")
    var phi: String?
    @Option(help: "Bytes per training segment, T. Default 256.") var context: Int?
    @Option(help: "Segments per step, B. Default 16.") var batch: Int?
    @Option(help: "The run's seed. Default 1.") var seed: UInt64?
    @Option(help: "Adam's peak learning rate. Default 0.001.") var lr: Float?
    @Option(help: "Linear warm-up steps (then cosine decay). Default 100.") var warmup: Int?
    @Option(name: .customLong("min-lr-factor"), help: "The cosine decays to this fraction of --lr at --steps. Default 0.1.")
    var minLRFactor: Float?
    @Option(help: "Clip gradients to this global L2 norm (0: none). Default 0.25 (the paper).") var clip: Float?
    @Option(name: .customLong("eval-every"), help: "Evaluate, log and checkpoint every this many steps. Default 250.") var evalEvery: Int?
    @Option(name: .customLong("eval-bytes"), help: "Validation bytes scored at each periodic evaluation. Default 65536.") var evalBytes: Int?
    @Flag(name: .customLong("carry-state"), help: "Carry the fast weights from segment to segment (contiguous streams).")
    var carryState = false
    @Flag(name: .customLong("streams"), help: ArgumentHelp(
        "Truncated, but each batch row reads a contiguous stream as --carry-state does (the same data order, empty fast weights at every segment).",
        discussion: "The fair truncated baseline for --carry-state: the default truncated mode draws windows at random."))
    var streams = false

    /// The options the user gave, by flag.
    var given: [String] {
        let named: [(String, Bool)] = [("--mixer", mixer != nil), ("--layers", layers != nil), ("--model-size", modelSize != nil),
            ("--heads", heads != nil), ("--feed-forward", feedForward != nil), ("--dropout", dropout != nil), ("--tied", tied), ("--untied", untied),
            ("--favor-features", favorFeatures != nil), ("--normalization", normalization != nil), ("--phi", phi != nil), ("--context", context != nil), ("--batch", batch != nil),
            ("--seed", seed != nil), ("--lr", lr != nil), ("--warmup", warmup != nil), ("--min-lr-factor", minLRFactor != nil),
            ("--clip", clip != nil), ("--eval-every", evalEvery != nil), ("--eval-bytes", evalBytes != nil),
            ("--carry-state", carryState), ("--streams", streams)]
        return named.filter(\.1).map(\.0)
    }

    /// The model part of the options (the mixer is required for a new run).
    func modelConfig() throws -> LanguageModelConfig {
        guard let mixer else {
            throw FWError.invalidArgument("missing --mixer (\(LanguageModelMixer.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let m = LanguageModelMixer(rawValue: mixer) else {
            throw FWError.invalidArgument("unknown --mixer '\(mixer)' (\(LanguageModelMixer.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var c = LanguageModelConfig(mixer: m)
        if let layers { c.layers = layers }
        if let modelSize { c.modelSize = modelSize; if feedForward == nil { c.feedForwardSize = 4 * modelSize } }
        if let heads { c.heads = heads }
        if let feedForward { c.feedForwardSize = feedForward }
        if let dropout { c.dropout = Double(dropout) }
        if tied && untied { throw FWError.invalidArgument("--tied and --untied exclude each other") }
        if tied { c.tiedEmbeddings = true }
        if untied { c.tiedEmbeddings = false }
        if let favorFeatures { c.favorFeatures = favorFeatures }
        c.normalization = try Self.parse("--normalization", normalization, FeatureNormalization.init(parsing:))
        c.phi = try Self.parse("--phi", phi, FeatureMap.init(parsing:))
        return c
    }

    /// `text` parsed by `parse` (nil when the option was not given), its
    /// error message prefixed with the option's name.
    static func parse<T>(_ option: String, _ text: String?, _ parse: (String) throws -> T) throws -> T? {
        guard let text else { return nil }
        do {
            return try parse(text)
        } catch let FWError.invalidArgument(message) {
            throw FWError.invalidArgument("\(option): \(message)")
        }
    }

    /// Applies the run options to `c` (not the model's).
    func apply(to c: inout LanguageModelRunConfig) {
        if let context { c.context = context }
        if let batch { c.batchSize = batch }
        if let seed { c.seed = seed }
        if let lr { c.learningRate = lr }
        if let warmup { c.warmupSteps = warmup }
        if let minLRFactor { c.minLearningRateFactor = minLRFactor }
        if let clip { c.clipNorm = clip }
        if let evalEvery { c.evalEvery = evalEvery }
        if let evalBytes { c.evalBytes = evalBytes }
        if carryState { c.mode = .carry }
        if streams { c.mode = .streams }
    }
}

/// `fwp train lm`: a character-level language model on a text folder.
struct TrainLMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm",
        abstract: "Train a character-level language model (bytes) on a folder made by fwp data.",
        discussion: """
            Writes DIR/log.csv (one row per evaluation: train loss and bpc, validation bpc on the \
            first --eval-bytes of valid.txt, tokens/s, learning rate), DIR/checkpoint.safetensors \
            (at every evaluation; resumable bit-exactly with --resume) and DIR/summary.json (whole-split \
            valid_bpc and test_bpc of the parameters with the best periodic validation bpc). \
            Truncated (default): every segment starts from empty fast weights. --carry-state: each \
            batch row reads a contiguous stream and the fast weights are carried across segments \
            (gradients truncated at the boundary). A folder that already holds a run is refused \
            unless --force (the old files are replaced only when the new run succeeds).
            """)

    @Option(help: "The text folder (fwp data shakespeare|text).") var data: String?
    @Option(help: "Steps to train. Default 2000.") var steps: Int?
    @OptionGroup var options: LanguageModelRunOptions
    @Option(help: "Output folder. Default runs/lm-<mixer>, or the checkpoint's folder with --resume.") var out: String?
    @Option(help: "Resume the run saved in this checkpoint (only --steps and --out may be given).") var resume: String?
    @Option(help: "Read the whole run configuration from this file (as fwp reproduce writes it).") var config: String?
    @Flag(help: "Replace a finished run in --out, but only once this run has succeeded.") var force = false
    @Flag(help: "No progress output on stderr.") var quiet = false
    @Flag(help: ArgumentHelp("Data-parallel training over MPI: run under mpirun -np N (or srun); each process takes B / N rows of every batch.",
                             discussion: "Rank 0 alone writes the run folder and the progress line.")) var distributed = false
    @Flag(name: .customLong("single-allreduce"),
          help: "With --distributed: sum the gradients in one all-reduce after the backward (default: per-block buckets started during it).")
    var singleAllReduce = false

    func run() throws {
        if singleAllReduce && !distributed { throw FWError.invalidArgument("--single-allreduce needs --distributed") }
        if distributed { runDistributed() }
        let (trainer, folder) = try prepare(writer: true)
        let summary = try folder!.run { dir in try LanguageModelRunner.run(trainer, dir: dir, quiet: quiet) }
        print(LanguageModelRunner.finalLine(summary))
    }

    /// Every rank trains; rank 0 writes the folder. An error on any rank
    /// prints one line naming the rank and ends every rank (`MPI_Abort`).
    func runDistributed() -> Never {
        let group: MPIGroup
        do { group = try MPIGroup.start() } catch { FWP.fail("\(error)") }
        do {
            let (trainer, folder) = try prepare(writer: group.rank == 0)
            try trainer.join(group)
            trainer.bucketed = !singleAllReduce
            if let folder {
                let summary = try folder.run { dir in
                    try LanguageModelRunner.run(trainer, dir: dir, quiet: quiet, extra: ["processes": group.size])
                }
                try group.barrier()
                print(LanguageModelRunner.finalLine(summary) + " on \(group.size) processes")
            } else {
                try trainer.train()
                try group.barrier()
            }
            group.finish()
            Glibc.exit(0)
        } catch {
            printError("fwp: error: " + CommandLineWords.escaped("\(error)") + (group.size > 1 ? " (rank \(group.rank) of \(group.size))" : ""))
            group.abort(code: 2)
        }
    }

    /// The trainer, and the run folder when this process writes one.
    func prepare(writer: Bool) throws -> (LanguageModelTrainer, RunFolder?) {
        let trainer: LanguageModelTrainer
        var folder: RunFolder?
        if let resume {
            let conflicting = (data != nil ? ["--data"] : []) + options.given + (force ? ["--force"] : [])
                + (config != nil ? ["--config"] : [])
            if let first = conflicting.first {
                throw FWError.invalidArgument("\(first) cannot be combined with --resume (the checkpoint's configuration is used; only --steps and --out may change)")
            }
            trainer = try LanguageModelTrainer(resumingFrom: resume, maxSteps: steps)
            if writer { folder = try RunFolder.resumedRun(checkpoint: resume, out: out) }
        } else {
            let c = try newRunConfig()
            let dir = out ?? "runs/lm-\(c.model.mixer.rawValue)\(c.mode == .truncated ? "" : "-" + c.mode.rawValue)"
            if writer { try RunFolder.checkNewRun(dir, force: force) }
            trainer = try LanguageModelTrainer(config: c)
            if writer { folder = try RunFolder.newRun(dir, force: force) }
        }
        return (trainer, folder)
    }

    /// The configuration of a new run: from --config, or from the options.
    func newRunConfig() throws -> LanguageModelRunConfig {
        if let config {
            let conflicting = (data != nil ? ["--data"] : []) + options.given + (steps != nil ? ["--steps"] : [])
            if let first = conflicting.first {
                throw FWError.invalidArgument("\(first) cannot be combined with --config (the file holds the whole configuration)")
            }
            return try RunConfigFile.read(LanguageModelRunConfig.self, from: config)
        }
        guard let data else { throw FWError.invalidArgument("missing --data DIR (a folder made by fwp data)") }
        if options.carryState && options.streams {
            throw FWError.invalidArgument("--carry-state and --streams exclude each other (--carry-state already reads streams)")
        }
        var c = LanguageModelRunConfig(model: try options.modelConfig(), data: data)
        options.apply(to: &c)
        if let steps { c.maxSteps = steps }
        try c.validate()
        return c
    }
}

/// Runs one language-model training into a folder (`train lm`, reproduce's children).
enum LanguageModelRunner {
    static func path(_ dir: String, _ name: String) -> String { (dir as NSString).appendingPathComponent(name) }

    /// Trains to the end, logging into `dir`; returns the summary.
    static func run(_ trainer: LanguageModelTrainer, dir: String, quiet: Bool, extra: [String: Any] = [:]) throws -> [String: Any] {
        trainer.log = try RunLog(csvPath: path(dir, "log.csv"), columns: LanguageModelTrainer.logColumns)
        trainer.checkpointPath = path(dir, "checkpoint.safetensors")
        let terminal = isatty(STDERR_FILENO) != 0
        let c = trainer.config
        let label = "\(c.model.mixer.rawValue)\(c.mode == .truncated ? "" : " (\(c.mode.rawValue))")"
        if !quiet {
            trainer.reporter = ProgressReporter(total: c.maxSteps, startStep: trainer.progress.step, every: 100)
            trainer.onEvaluation = { r in
                let best = trainer.progress.bestValidationBPC ?? r.validationBPC
                printError((terminal ? "\r\u{1B}[2K" : "") + String(format: "%@ step %d: train %.4f bpc, valid %.4f bpc (best %.4f), %.0f tok/s, %.0f s",
                                                                    label, r.step, r.trainBPC, r.validationBPC, best, r.tokensPerSecond, r.seconds))
            }
        }
        try trainer.train()
        try trainer.writeCheckpoint(to: path(dir, "checkpoint.safetensors"))
        let valid = try trainer.evaluateBest(split: "valid")
        let test = try trainer.evaluateBest(split: "test")
        let summary = trainer.summary(valid: valid, test: test).merging(extra) { _, new in new }
        try RunLog.writeSummary(summary, to: path(dir, "summary.json"))
        return summary
    }

    /// The line `fwp train lm` prints at the end.
    static func finalLine(_ s: [String: Any]) -> String {
        String(format: "%@ (%@): valid %.4f bpc, test %.4f bpc (%d bytes); %d steps, %d parameters, %.0f tokens/s, %.1f s",
               s["mixer"] as? String ?? "?", s["mode"] as? String ?? "?", s["valid_bpc"] as? Double ?? .nan,
               s["test_bpc"] as? Double ?? .nan, s["test_bytes_scored"] as? Int ?? 0, s["steps"] as? Int ?? 0,
               s["params"] as? Int ?? 0, s["tokens_per_s"] as? Double ?? 0, s["seconds"] as? Double ?? 0)
    }
}
