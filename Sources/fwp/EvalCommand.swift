import ArgumentParser
import FastWeights
import Foundation

/// `fwp eval ...`: evaluate a saved model (`retrieval`, the default, or `lm`).
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint: a retrieval model (the default) or a language model (eval lm).",
        subcommands: [EvalRetrievalCommand.self, EvalLMCommand.self],
        defaultSubcommand: EvalRetrievalCommand.self)
}

/// `fwp eval [retrieval] --checkpoint PATH`: the test error of a saved retrieval model.
struct EvalRetrievalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrieval",
        abstract: "Evaluate a retrieval checkpoint on its test split.",
        discussion: """
            Rebuilds the model and the test split from the configuration stored in the \
            checkpoint and evaluates the parameters with the best validation error (the \
            snapshot 'best'; the current parameters when the file has none).
            """)

    @Option(help: "A checkpoint written by fwp train (checkpoint.safetensors).") var checkpoint: String
    @Option(name: .customLong("eval-batch"), help: "Sequences per batch. Default: the run's.") var evalBatch: Int?
    @Flag(help: "Evaluate the current parameters instead of the best ones.") var current = false
    @Flag(name: .customLong("by-pair"), help: "Also the error split by which pair the query asks for (1 = the oldest).")
    var byPair = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        let contents = try SafeTensors.read(checkpoint)
        guard let text = contents.metadata["config"] else {
            throw FWError.file(path: checkpoint, reason: "missing metadata 'config': not a training checkpoint")
        }
        let saved = try RetrievalCheckpointConfig.decode(text, path: checkpoint)
        var run = saved.run
        if let evalBatch {
            run.evalBatchSize = evalBatch
            try run.validate()   // the range and the memory estimate at this batch
        }
        // The model as the run built it (its own draws are then overwritten by the file's values).
        var store = ParameterStore()
        var rng = SeededRNG(seed: run.seed ^ RetrievalRunConfig.initSalt)
        let model = try run.makeModel(store: &store, rng: &rng)
        _ = try Checkpoint.readParameters(checkpoint, into: &store)
        var which = "current"
        if !current, let best = try Checkpoint.readSnapshot(checkpoint, prefix: "best", store: store) {
            store.setValues(best)
            which = "best"
        }
        // Only the test split is needed: its stream does not depend on the other sizes.
        let task = try run.task()
        let test = task.splits(seed: run.seed, train: 0, validation: 0, test: run.testExamples).test
        let r = try model.evaluate(tokens: test.tokens, targets: test.targets, batchSize: run.evalBatchSize, store: store)
        guard r.loss.isFinite else {
            throw FWError.nonFinite("\(checkpoint): the test loss of the \(which) parameters is \(r.loss) (the parameters are finite, but the model overflows)")
        }
        // Per queried pair: (examples, error %), pair 1 the oldest.
        var perPair: [(count: Int, errorPercent: Double)] = []
        if byPair {
            let predicted = try model.predictions(tokens: test.tokens, batchSize: run.evalBatchSize, store: store)
            let split = try task.errorsByPair(tokens: test.tokens, targets: test.targets, predictions: predicted)
            perPair = zip(split.count, split.errors).map { ($0, $0 > 0 ? 100 * Double($1) / Double($0) : 0) }
        }
        if json {
            var out: [String: Any] = ["model": run.model.rawValue, "hidden": run.hidden, "parameters": which,
                                      "step": saved.progress.step, "test_error_pct": r.errorPercent,
                                      "test_loss": Double(r.loss), "test_examples": r.count]
            if byPair {
                out["test_error_pct_by_pair"] = perPair.map(\.errorPercent)
                out["test_examples_by_pair"] = perPair.map(\.count)
            }
            let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(String(format: "%@ R=%d (%@ parameters, step %d): test error %.2f%% (loss %.4f, %d examples)",
                         run.model.displayName, run.hidden, which, saved.progress.step,
                         r.errorPercent, Double(r.loss), r.count))
            if byPair {
                print("test error by queried pair (1 = oldest): " + perPair.enumerated().map {
                    String(format: "%d: %.2f%% of %d", $0.offset + 1, $0.element.errorPercent, $0.element.count)
                }.joined(separator: ", "))
            }
        }
    }
}
