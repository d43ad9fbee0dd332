import ArgumentParser
import FastWeights
import Foundation

/// A language-model checkpoint loaded for evaluation or generation: the
/// run's configuration, the model, and the parameters with the best
/// periodic validation bpc (or the current ones).
struct LoadedLanguageModel {
    let path: String
    let saved: LanguageModelCheckpointConfig
    let model: CharLanguageModel
    let store: ParameterStore
    let which: String

    /// `path` is a checkpoint file or a run folder holding `checkpoint.safetensors`.
    init(_ path: String, current: Bool) throws {
        var isDir: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
            ? (path as NSString).appendingPathComponent("checkpoint.safetensors") : path
        let contents = try SafeTensors.read(file)
        guard let text = contents.metadata["config"] else {
            throw FWError.file(path: file, reason: "missing metadata 'config': not a training checkpoint")
        }
        saved = try LanguageModelCheckpointConfig.decode(text, path: file)
        var store = ParameterStore()
        var rng = SeededRNG(seed: saved.run.seed ^ LanguageModelRunConfig.initSalt)
        model = try CharLanguageModel(config: saved.run.model, store: &store, rng: &rng)
        _ = try Checkpoint.readParameters(file, into: &store)
        var which = "current"
        if !current, let best = try Checkpoint.readSnapshot(file, prefix: "best", store: store) {
            store.setValues(best)
            which = "best"
        }
        self.path = file
        self.store = store
        self.which = which
    }
}

/// `fwp eval lm --checkpoint PATH`: bits per character on a whole split.
struct EvalLMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm",
        abstract: "Bits per character of a language-model checkpoint on a whole split.",
        discussion: """
            Truncated: the split in windows of the trained context, each from empty fast weights. \
            --carry-state: the split as one stream, the fast weights carried from segment to \
            segment (any fast weight model, also one trained truncated: far beyond its context).
            """)

    @Option(help: "A checkpoint written by fwp train lm, or its run folder.") var checkpoint: String
    @Option(help: "valid or test.") var split: String = "test"
    @Flag(name: .customLong("carry-state"), help: "Stream the split with the fast weights carried.") var carryState = false
    @Flag(help: "Windows from empty fast weights, even for a model trained with --carry-state.") var truncated = false
    @Option(help: "The text folder (default: the one the run trained on).") var data: String?
    @Option(help: "Bytes per window or segment (default: the trained context).") var context: Int?
    @Flag(help: "Evaluate the current parameters instead of the best ones.") var current = false
    @Option(help: ArgumentHelp("Also report the bpc of every block of this many bytes, in text order (a multiple of the context).",
                               discussion: "How the loss depends on the position in the split: with --carry-state, on the age of the carried state."))
    var blocks: Int?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        guard split == "valid" || split == "test" else { throw FWError.invalidArgument("--split must be valid or test, got '\(split)'") }
        if carryState && truncated { throw FWError.invalidArgument("--carry-state and --truncated exclude each other") }
        let loaded = try LoadedLanguageModel(checkpoint, current: current)
        let run = loaded.saved.run
        let T = context ?? run.context
        try SizeLimits.check(T, in: 1...SizeLimits.maxExtent, "--context")
        try MemoryBudget.check(run.model.memoryEstimate(batch: 16, context: T), "evaluating at context \(T)")
        let mode: LanguageModelRunConfig.ContextMode = carryState ? .carry : (truncated ? .truncated : run.mode)
        let corpus = try TextCorpus.load(data ?? run.data)
        let text = split == "test" ? corpus.test.bytes : corpus.valid.bytes
        if let blocks {
            try SizeLimits.check(blocks, in: 1...SizeLimits.maxExtent, "--blocks")
            guard blocks % T == 0 else {
                throw FWError.invalidArgument("--blocks \(blocks) must be a multiple of the context \(T)")
            }
        }
        var blockSums: [(loss: Double, count: Int)] = []
        let r = try LanguageModelEvaluation.evaluate(loaded.model, store: loaded.store, text: text[...], context: T, mode: mode,
                                                     alignment: blocks) { offset, loss, count in
            guard let blocks else { return }
            let b = offset / blocks
            while blockSums.count <= b { blockSums.append((0, 0)) }
            blockSums[b].loss += loss
            blockSums[b].count += count
        }
        let blockBPC = blockSums.map { $0.count > 0 ? $0.loss / Double($0.count) / log(2.0) : Double.nan }
        if json {
            var out: [String: Any] = ["mixer": run.model.mixer.rawValue, "split": split, "mode": mode.rawValue, "context": T,
                                      "parameters": loaded.which, "step": loaded.saved.progress.step, "bpc": r.bpc,
                                      "loss_nats": r.loss, "bytes_scored": r.count]
            if let blocks {
                out["block_bytes"] = blocks
                out["block_bpc"] = blockBPC
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "%@ (%@ parameters, step %d): %@ %.4f bpc over %d bytes (%@, context %d)",
                         run.model.mixer.rawValue, loaded.which, loaded.saved.progress.step, split, r.bpc, r.count,
                         mode == .carry ? "fast weights carried" : "truncated windows", T))
            if let blocks {
                for (i, bpc) in blockBPC.enumerated() {
                    print(String(format: "  bytes %d..<%d: %.4f bpc", i * blocks, min((i + 1) * blocks, text.count - 1), bpc))
                }
            }
        }
    }
}
