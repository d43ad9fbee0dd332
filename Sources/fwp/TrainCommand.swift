import ArgumentParser
import FastWeights
import Foundation

/// `fwp train ...`: train a model of one of the papers' experiments.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on one of the papers' tasks.",
        subcommands: [TrainRetrievalCommand.self, TrainSyntheticCommand.self, TrainLMCommand.self])
}

/// The options that define a retrieval run (shared by `train retrieval` and `reproduce ba2016`).
struct RetrievalRunOptions: ParsableArguments {
    @Option(help: "Key-value pairs per sequence, K (T = 2K + 3). Default 4.") var pairs: Int?
    @Option(help: "Width of the token embedding. Default 100.") var embedding: Int?
    @Option(help: "Sequences per training step. Default 128.") var batch: Int?
    @Option(help: "Adam's base learning rate. Default 0.0002.") var lr: Float?
    @Option(name: .customLong("lr-schedule"), help: "constant, cosine:<minFactor> (decay to minFactor*lr at --steps) or step:<every>:<factor>. Default constant.")
    var lrSchedule: String?
    @Option(help: "Clip gradients to this global L2 norm (0: no clipping). Default 0.") var clip: Float?
    @Option(help: "The run's seed (data, initialisation, minibatch order). Default 1.") var seed: UInt64?
    @Option(name: .customLong("eval-every"), help: "Evaluate, log and checkpoint every this many steps. Default 500.")
    var evalEvery: Int?
    @Option(help: "Stop after this many evaluations in a row at 0% validation error. Default 5.") var patience: Int?
    @Option(name: .customLong("train-examples"), help: "Training examples. Default 100000.") var trainExamples: Int?
    @Option(name: .customLong("validation-examples"), help: "Validation examples. Default 10000.") var validationExamples: Int?
    @Option(name: .customLong("test-examples"), help: "Test examples. Default 20000.") var testExamples: Int?
    @Option(name: .customLong("eval-batch"), help: "Sequences per batch when evaluating. Default 1000.") var evalBatch: Int?
    @Option(help: "Fast weights: explicit or attention (the same function). Default explicit.") var algorithm: String?
    @Option(name: .customLong("recurrent-init"), help: "Fast weights: W's start, normal or identity:<scale>. Default identity:0.05.")
    var recurrentInit: String?
    @Option(help: "A-LSTM: redundant memory copies. Default 4.") var copies: Int?
    @Option(help: "Fast weights: decay lambda of A. Default 0.95.") var lambda: Float?
    @Option(help: "Fast weights: fast learning rate eta. Default 0.5.") var eta: Float?
    @Option(name: .customLong("inner-steps"), help: "Fast weights: inner loop steps S. Default 1.") var innerSteps: Int?
    @Option(help: "Fast weights: relu or tanh. Default relu.") var activation: String?

    /// The options the user gave, by flag (for the error when combined with --resume).
    var given: [String] {
        var g: [String] = []
        if pairs != nil { g.append("--pairs") }
        if embedding != nil { g.append("--embedding") }
        if batch != nil { g.append("--batch") }
        if lr != nil { g.append("--lr") }
        if lrSchedule != nil { g.append("--lr-schedule") }
        if clip != nil { g.append("--clip") }
        if seed != nil { g.append("--seed") }
        if evalEvery != nil { g.append("--eval-every") }
        if patience != nil { g.append("--patience") }
        if trainExamples != nil { g.append("--train-examples") }
        if validationExamples != nil { g.append("--validation-examples") }
        if testExamples != nil { g.append("--test-examples") }
        if evalBatch != nil { g.append("--eval-batch") }
        if algorithm != nil { g.append("--algorithm") }
        if recurrentInit != nil { g.append("--recurrent-init") }
        if copies != nil { g.append("--copies") }
        if lambda != nil { g.append("--lambda") }
        if eta != nil { g.append("--eta") }
        if innerSteps != nil { g.append("--inner-steps") }
        if activation != nil { g.append("--activation") }
        return g
    }

    /// Applies the given options to `c`: the one place where retrieval
    /// options become config fields (a child run reads the config file instead).
    func apply(to c: inout RetrievalRunConfig) throws {
        if let pairs { c.pairs = pairs }
        if let embedding { c.embedding = embedding }
        if let batch { c.batchSize = batch }
        if let lr { c.learningRate = lr }
        if let lrSchedule { c.learningRateSchedule = lrSchedule }
        if let clip { c.clipNorm = clip }
        if let seed { c.seed = seed }
        if let evalEvery { c.evalEvery = evalEvery }
        if let patience { c.patience = patience }
        if let trainExamples { c.trainExamples = trainExamples }
        if let validationExamples { c.validationExamples = validationExamples }
        if let testExamples { c.testExamples = testExamples }
        if let evalBatch { c.evalBatchSize = evalBatch }
        if let algorithm {
            guard let a = FastWeightsRNNAlgorithm(rawValue: algorithm) else {
                throw FWError.invalidArgument("--algorithm must be explicit or attention, got '\(algorithm)'")
            }
            c.algorithm = a
        }
        if let recurrentInit { c.recurrentInit = recurrentInit }
        if let copies { c.copies = copies }
        if let lambda { c.lambda = lambda }
        if let eta { c.eta = eta }
        if let innerSteps { c.innerSteps = innerSteps }
        if let activation {
            guard let a = FastWeightsRNNConfig.Activation(rawValue: activation) else {
                throw FWError.invalidArgument("--activation must be relu or tanh, got '\(activation)'")
            }
            c.activation = a
        }
    }
}

/// Parses a model name as the command line spells it.
func parseModel(_ text: String) throws -> RetrievalModelKind {
    guard let m = RetrievalModelKind(rawValue: text) else {
        throw FWError.invalidArgument("unknown model '\(text)' (use fast-weights, irnn, lstm or alstm)")
    }
    return m
}

/// `fwp train retrieval`: the associative retrieval task of Ba et al. 2016.
struct TrainRetrievalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrieval",
        abstract: "Train on associative retrieval (Ba et al. 2016, section 4.1).",
        discussion: """
            Writes DIR/log.csv (one row per evaluation), DIR/checkpoint.safetensors (at every \
            evaluation: resumable with --resume) and DIR/summary.json, and prints the test error \
            of the parameters with the best validation error. With --resume, the model, data and \
            optimiser come from the checkpoint; only --steps (not below the saved step) and --out \
            may be given. A folder that already holds a run is refused unless --force (the old \
            files are replaced only when the new run succeeds).
            """)

    @Option(help: "fast-weights, irnn, lstm or alstm.") var model: String?
    @Option(help: "R, the number of hidden units.") var hidden: Int?
    @Option(help: "Stop after this many steps at the latest. Default 20000.") var steps: Int?
    @OptionGroup var options: RetrievalRunOptions
    @Option(help: "Output folder. Default runs/<model>-R<hidden>, or the checkpoint's folder with --resume.")
    var out: String?
    @Option(help: "Resume the run saved in this checkpoint.") var resume: String?
    @Option(help: "Read the whole run configuration from this file (as fwp reproduce writes it); no other run option may be given.")
    var config: String?
    @Flag(help: "Replace a finished run in --out, but only once this run has succeeded (else the old files stay as they were).")
    var force = false
    @Flag(help: "No progress output on stderr.") var quiet = false

    func run() throws {
        let trainer: RetrievalTrainer
        let folder: RunFolder
        if let resume {
            let conflicting = (model != nil ? ["--model"] : []) + (hidden != nil ? ["--hidden"] : []) + options.given
                + (force ? ["--force"] : []) + (config != nil ? ["--config"] : [])
            if let first = conflicting.first {
                throw FWError.invalidArgument("\(first) cannot be combined with --resume (the checkpoint's configuration is used; only --steps and --out may change)")
            }
            // The checkpoint is checked completely before anything is written.
            trainer = try RetrievalTrainer(resumingFrom: resume, maxSteps: steps)
            folder = try RunFolder.resumedRun(checkpoint: resume, out: out)
        } else {
            let config = try newRunConfig()
            let dir = out ?? "runs/\(config.model.rawValue)-R\(config.hidden)"
            try RunFolder.checkNewRun(dir, force: force)
            trainer = try RetrievalTrainer(config: config)
            folder = try RunFolder.newRun(dir, force: force)
        }
        let c = trainer.config
        let label = "\(c.model.displayName) R=\(c.hidden)"
        let outcome = try folder.run { dir in try RetrievalRunner.run(trainer, dir: dir, label: label, quiet: quiet) }
        print(RetrievalRunner.finalLine(outcome))
    }

    /// The configuration of a new (not resumed) run from the options given.
    func newRunConfig() throws -> RetrievalRunConfig {
        if let config {
            let conflicting = (model != nil ? ["--model"] : []) + (hidden != nil ? ["--hidden"] : []) + options.given
                + (steps != nil ? ["--steps"] : [])
            if let first = conflicting.first {
                throw FWError.invalidArgument("\(first) cannot be combined with --config (the file holds the whole configuration)")
            }
            return try RunConfigFile.read(RetrievalRunConfig.self, from: config)
        }
        guard let model else { throw FWError.invalidArgument("missing --model (fast-weights, irnn, lstm or alstm)") }
        guard let hidden else { throw FWError.invalidArgument("missing --hidden R") }
        var c = RetrievalRunConfig(model: try parseModel(model), hidden: hidden)
        try options.apply(to: &c)
        if let steps { c.maxSteps = steps }
        try c.validate()
        return c
    }
}
