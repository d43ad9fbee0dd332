import Foundation
import FWCore

/// One evaluation of a language-model run (a row of its CSV log).
public struct LanguageModelRecord: Codable, Equatable, Sendable {
    /// Steps taken.
    public var step: Int
    /// Training seconds so far (summed over resumed sessions).
    public var seconds: Double
    /// Mean training loss (nats per byte) since the previous evaluation, and in bits per byte.
    public var trainLoss: Double
    public var trainBPC: Double
    /// Bits per byte on the first `evalBytes` of the validation split.
    public var validationBPC: Double
    /// Training tokens per second since the previous evaluation.
    public var tokensPerSecond: Double
    /// The learning rate of the last step.
    public var learningRate: Double
}

/// Where a language-model run stands besides its numbers (saved in every
/// checkpoint, inside the config string).
public struct LanguageModelProgress: Codable, Equatable, Sendable {
    public var step = 0
    public var seconds = 0.0
    /// Training bytes predicted so far.
    public var tokens = 0
    /// Lowest periodic validation bpc, and its step.
    public var bestValidationBPC: Double?
    public var bestStep: Int?
    /// Loss sum (nats), predicted bytes and seconds since the last evaluation.
    public var windowLoss = 0.0
    public var windowCount = 0
    public var windowSeconds = 0.0
    /// The training windows' sampler.
    public var sampler: ByteWindowSampler.State
    /// Every evaluation so far (the learning curve).
    public var history: [LanguageModelRecord] = []
}

/// What a language-model checkpoint's config string holds.
public struct LanguageModelCheckpointConfig: CheckpointConfig {
    public var run: LanguageModelRunConfig
    public var progress: LanguageModelProgress
}

/// Trains a `CharLanguageModel` on a text folder (`fwp data`).
///
/// Each step: `batchSize` segments of `context` bytes (`ByteWindowSampler`:
/// random windows, or contiguous streams with the fast weights carried),
/// zero the gradients, the mean next-byte cross-entropy and its gradients,
/// clipping by global norm, Adam with warm-up and cosine decay. A non-finite
/// loss, gradient or parameter stops the run naming the step. Every
/// `evalEvery` steps (and at the last): bpc on the first `evalBytes` of the
/// validation split, a CSV row, the best parameters so far, a checkpoint.
///
/// A checkpoint holds everything (parameters, Adam, the sampler, the dropout
/// generator, the carried fast weights, the best parameters, the progress),
/// so a resumed run ends with bit-identical parameters to one that was
/// never interrupted.
public final class LanguageModelTrainer {
    public private(set) var config: LanguageModelRunConfig
    public let model: CharLanguageModel
    public internal(set) var store: ParameterStore
    public private(set) var optimizer: Adam
    public private(set) var sampler: ByteWindowSampler
    /// Dropout masks and FAVOR+ draws.
    public private(set) var rng: SeededRNG
    public private(set) var progress: LanguageModelProgress
    /// The parameters with the lowest periodic validation bpc so far.
    public private(set) var bestValues: [Float]
    /// carry: the fast weights at the end of the last step.
    public private(set) var carried: LanguageModelState?
    /// The three splits.
    public let corpus: TextCorpus

    /// Where to write a checkpoint at every evaluation (nil: none).
    public var checkpointPath: String?
    /// The CSV log (nil: none).
    public var log: RunLog?
    /// Progress lines on standard error (nil: quiet).
    public var reporter: ProgressReporter?
    /// Called after every evaluation.
    public var onEvaluation: ((LanguageModelRecord) -> Void)?
    /// The data-parallel run this process trains in (nil: alone); see `join(_:)`.
    public private(set) var group: DataParallelGroup?
    /// The gradient buckets of a data-parallel run (nil: alone).
    private var buckets: GradientBuckets?
    /// Whether a data-parallel step sums its gradients in per-block buckets
    /// started during the backward (default), or in one all-reduce after it.
    public var bucketed = true

    /// ln 2: nats per bit.
    static let ln2 = 0.6931471805599453

    /// The columns of the CSV log.
    public static let logColumns = ["step", "seconds", "train_loss", "train_bpc", "valid_bpc", "tokens_per_s", "lr"]

    /// A fresh run.
    public convenience init(config: LanguageModelRunConfig) throws {
        try config.validate()
        let corpus = try TextCorpus.load(config.data)
        try self.init(config: config, corpus: corpus)
    }

    /// A fresh run on an already loaded corpus.
    public init(config: LanguageModelRunConfig, corpus: TextCorpus) throws {
        try config.validate()
        self.config = config
        self.corpus = corpus
        var store = ParameterStore()
        var initRNG = SeededRNG(seed: config.seed ^ LanguageModelRunConfig.initSalt)
        model = try CharLanguageModel(config: config.model, store: &store, rng: &initRNG)
        self.store = store
        optimizer = Adam(learningRate: config.learningRate)
        sampler = try ByteWindowSampler(mode: config.mode, textLength: corpus.train.bytes.count, batchSize: config.batchSize,
                                        context: config.context, seed: config.seed ^ LanguageModelRunConfig.dataSalt)
        rng = SeededRNG(seed: config.seed ^ LanguageModelRunConfig.dropoutSalt)
        progress = LanguageModelProgress(sampler: sampler.state)
        bestValues = store.values
        try Self.checkSplits(corpus, context: config.context)
    }

    static func checkSplits(_ corpus: TextCorpus, context: Int) throws {
        for (name, text) in [("valid", corpus.valid.bytes), ("test", corpus.test.bytes)] where text.count < 2 {
            throw FWError.invalidArgument("the \(name) split has \(text.count) bytes: nothing to evaluate")
        }
    }

    /// Resumes the run saved at `path` (checked completely before anything is
    /// used). `maxSteps` (if given) replaces the saved limit; it may not be
    /// below the step the checkpoint has reached.
    public convenience init(resumingFrom path: String, maxSteps: Int? = nil) throws {
        let contents = try SafeTensors.read(path)
        guard let text = contents.metadata["config"] else { throw FWError.file(path: path, reason: "missing metadata 'config'") }
        var saved = try LanguageModelCheckpointConfig.decode(text, path: path)
        if let maxSteps {
            guard maxSteps >= saved.progress.step else {
                throw FWError.invalidArgument("--steps \(maxSteps) is below the step the checkpoint \(path) has reached (\(saved.progress.step)); give at least that")
            }
            saved.run.maxSteps = maxSteps
        }
        try self.init(config: saved.run)
        var store = self.store
        var optimizer = self.optimizer
        let state = try Checkpoint.read(path, into: &store, optimizer: &optimizer)
        guard state.step == saved.progress.step else {
            throw FWError.file(path: path, reason: "step \(state.step) differs from the config's progress step \(saved.progress.step)")
        }
        let sampler: ByteWindowSampler
        do {
            sampler = try ByteWindowSampler(mode: config.mode, textLength: corpus.train.bytes.count, batchSize: config.batchSize,
                                            context: config.context, restoring: saved.progress.sampler)
        } catch let error as FWError { throw FWError.file(path: path, reason: "\(error)") }
        let carried = try LanguageModelStateFile.read(try Checkpoint.readExtraTensors(path), model: model,
                                                      batchSize: config.batchSize, path: path)
        let p = saved.progress
        let limit = 1 << 53
        guard [p.step, p.tokens, p.windowCount, p.sampler.position, p.sampler.passes].allSatisfy({ (0...limit).contains($0) }),
              p.seconds.isFinite, p.windowLoss.isFinite, p.windowSeconds.isFinite else {
            throw FWError.file(path: path, reason: "metadata 'config': progress counters out of range")
        }
        guard optimizer.step == p.step else {
            throw FWError.file(path: path, reason: "Adam's step \(optimizer.step) differs from the progress step \(p.step)")
        }
        if config.mode == .carry && saved.progress.step > 0 && carried == nil {
            throw FWError.file(path: path, reason: "a carry-state run's checkpoint without its carried fast weights")
        }
        self.bestValues = try Checkpoint.readSnapshot(path, prefix: "best", store: store) ?? store.values
        self.store = store
        self.optimizer = optimizer
        self.sampler = sampler
        self.rng = state.rng
        self.progress = saved.progress
        self.carried = carried
    }

    /// Whether the step limit is reached.
    public var isFinished: Bool { progress.step >= config.maxSteps }

    /// Trains until `maxSteps` (or `until`, if smaller).
    public func train(until: Int? = nil) throws {
        let limit = min(until ?? config.maxSteps, config.maxSteps)
        let schedule = config.schedule
        var sessionStart = DispatchTime.now().uptimeNanoseconds
        func lap() -> Double {
            let now = DispatchTime.now().uptimeNanoseconds
            defer { sessionStart = now }
            return Double(now - sessionStart) * 1e-9
        }
        while progress.step < limit {
            let batch = sampler.next(corpus.train.bytes)
            if batch.wrapped { carried = nil }
            let step = progress.step + 1
            store.zeroGradients()
            let rate = schedule.rate(base: config.learningRate, step: optimizer.step)
            let r = try FiniteCheck.atStep(step) { try lossAndGradients(batch) }
            try FiniteCheck.loss(r.loss, step: step)
            if config.clipNorm > 0 { store.clipGradients(maxNorm: config.clipNorm) }
            try FiniteCheck.store(store, step: step, values: false, gradients: true)
            optimizer.update(&store, learningRate: rate)
            try FiniteCheck.store(store, step: step, values: true, gradients: false)
            if config.mode == .carry { carried = r.state }

            progress.step = step
            progress.tokens += r.count
            progress.windowLoss += Double(r.loss) * Double(r.count)
            progress.windowCount += r.count
            let seconds = lap()
            progress.seconds += seconds
            progress.windowSeconds += seconds
            progress.sampler = sampler.state
            reporter?.update(step: step, loss: r.loss / Float(Self.ln2), tokens: r.count)

            if step % config.evalEvery == 0 || step == config.maxSteps {
                try evaluateAndRecord(learningRate: Double(rate))
                progress.seconds += lap()
            }
        }
        if isFinished { reporter?.finish() }
    }

    /// Joins a data-parallel run of `group.size` processes (each one a
    /// trainer made from the same configuration, data and seed, or resumed
    /// from the same checkpoint). From then on every step takes the global
    /// batch the sampler draws, computes this rank's `B / size` rows of it,
    /// and sums the gradients over the ranks:
    ///
    /// ```
    /// g = (1 / size) sum over ranks r of g_r,   g_r = grad of the mean loss over rank r's rows
    ///   = grad of the mean loss over all B rows             (equal shares)
    /// ```
    ///
    /// so every rank takes the same clipped Adam step as one process would
    /// (to fp32 rounding of the sum). Dropout masks and FAVOR+ features are
    /// drawn per rank (from one shared draw per step and the rank), so with
    /// dropout or FAVOR+ a run is the same in distribution, not in bits.
    ///
    /// With `--carry-state` each rank reads its rows' streams from its rows
    /// of the carried state, and every rank then holds the whole new state
    /// (an all-gather of the rows), so checkpoints are those of one process.
    ///
    /// - Throws: `FWError.invalidArgument` when B is not a multiple of the
    ///   process count, or when the ranks disagree on configuration, data,
    ///   parameters, carried state or step.
    public func join(_ group: DataParallelGroup) throws {
        guard config.batchSize % group.size == 0 else {
            throw FWError.invalidArgument("--batch \(config.batchSize) does not split over \(group.size) processes: use a multiple of \(group.size)")
        }
        var shared = config
        shared.data = ""   // the folder may be spelled differently on each machine; its bytes may not
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var bytes = [UInt8](try encoder.encode(shared)) + corpus.train.bytes
        withUnsafeBytes(of: progress.step) { bytes += $0 }
        store.values.withUnsafeBytes { bytes += $0 }
        carried?.flattened.withUnsafeBytes { bytes += $0 }
        let fingerprint = Fingerprint.of(bytes)
        guard try group.allAgree(fingerprint) else {
            throw FWError.invalidArgument("the \(group.size) processes of this run differ in configuration, training data, step or parameters "
                                          + "(rank \(group.rank)): start every rank with the same options, files and checkpoint")
        }
        self.group = group
        buckets = GradientBuckets(store: store, layers: config.model.layers)
    }

    /// This step's mean loss and gradients: of the whole batch alone, or of
    /// this rank's rows summed over the group (see `join(_:)`).
    private func lossAndGradients(_ batch: ByteWindowSampler.Batch) throws -> (loss: Float, count: Int, state: LanguageModelState) {
        guard let group, group.size > 1 else {
            return try model.lossAndGradients(tokens: batch.tokens, targets: batch.targets, batchSize: config.batchSize,
                                              state: config.mode == .carry ? carried : nil,
                                              store: &store, training: true, rng: &rng)
        }
        let rows = config.batchSize / group.size
        let span = rows * config.context
        let mine = (group.rank * span)..<((group.rank + 1) * span)
        var local = SeededRNG(seed: rng.next() ^ (UInt64(group.rank) &* 0x9E37_79B9_7F4A_7C15))
        let myRows = (group.rank * rows)..<((group.rank + 1) * rows)
        let state = config.mode == .carry ? carried?.rows(myRows) : nil
        let buckets = self.buckets!
        let bucketed = self.bucketed
        let r = try model.lossAndGradients(tokens: Array(batch.tokens[mine]), targets: Array(batch.targets[mine]), batchSize: rows,
                                           state: state, store: &store, training: true, rng: &local,
                                           blockGradientsReady: bucketed ? { l, store in try buckets.start(block: l, from: store, in: group) } : nil)
        try buckets.finish(into: &store, in: group, blocksStarted: bucketed)
        let sums = try group.allReduceSum([Double(r.loss) * Double(r.count), Double(r.count)])
        // carry: every rank keeps the whole state (its rows from each rank), as one process would.
        let whole = config.mode == .carry
            ? LanguageModelState.joining(try group.allGather(r.state.flattened), shares: group.size, like: r.state) : r.state
        return (Float(sums[0] / sums[1]), Int(sums[1]), whole)
    }

    /// Periodic validation; updates the best parameters, the log and the checkpoint.
    private func evaluateAndRecord(learningRate: Double) throws {
        let prefix = corpus.valid.bytes.prefix(config.evalBytes)
        let v = try FiniteCheck.atStep(progress.step) {
            try LanguageModelEvaluation.evaluate(model, store: store, text: prefix, context: config.context, mode: config.mode)
        }
        let w = progress
        let trainLoss = w.windowCount > 0 ? w.windowLoss / Double(w.windowCount) : .nan
        let record = LanguageModelRecord(step: w.step, seconds: w.seconds, trainLoss: trainLoss, trainBPC: trainLoss / Self.ln2,
                                         validationBPC: v.bpc,
                                         tokensPerSecond: w.windowSeconds > 0 ? Double(w.windowCount) / w.windowSeconds : 0,
                                         learningRate: learningRate)
        if progress.bestValidationBPC.map({ v.bpc < $0 }) ?? true {
            progress.bestValidationBPC = v.bpc
            progress.bestStep = w.step
            bestValues = store.values
        }
        progress.windowLoss = 0
        progress.windowCount = 0
        progress.windowSeconds = 0
        progress.history.append(record)
        try log?.append([Double(record.step), record.seconds, record.trainLoss, record.trainBPC, record.validationBPC,
                         record.tokensPerSecond, record.learningRate])
        onEvaluation?(record)
        if let checkpointPath { try writeCheckpoint(to: checkpointPath) }
    }

    /// Writes everything needed to resume (and to evaluate and generate) to `path`, atomically.
    public func writeCheckpoint(to path: String) throws {
        let text = LanguageModelCheckpointConfig(run: config, progress: progress).json()
        let state = TrainingState(step: progress.step, rng: rng, config: text)
        try Checkpoint.write(to: path, store: store, optimizer: optimizer, state: state,
                             snapshots: [(prefix: "best", values: bestValues)],
                             extraTensors: carried.map(LanguageModelStateFile.tensors) ?? [])
    }

    /// bpc of the best parameters on a whole split (`"valid"` or `"test"`).
    public func evaluateBest(split: String, mode: LanguageModelRunConfig.ContextMode? = nil) throws -> LanguageModelEvaluation.Result {
        var best = store
        best.setValues(bestValues)
        let text = split == "test" ? corpus.test.bytes : corpus.valid.bytes
        return try LanguageModelEvaluation.evaluate(model, store: best, text: text[...], context: config.context,
                                                    mode: mode ?? config.mode)
    }

    /// The run's summary (JSON-compatible): configuration, steps, time, speed,
    /// final training loss, whole-split valid and test bpc, the curve.
    public func summary(valid: LanguageModelEvaluation.Result, test: LanguageModelEvaluation.Result) -> [String: Any] {
        let last = progress.history.last
        var s: [String: Any] = [
            "mixer": config.model.mixer.rawValue,
            "mode": config.mode.rawValue,
            "steps": progress.step,
            "seconds": progress.seconds,
            "tokens": progress.tokens,
            "tokens_per_s": progress.seconds > 0 ? Double(progress.tokens) / progress.seconds : 0,
            "params": store.count,
            "valid_bpc": valid.bpc,
            "test_bpc": test.bpc,
            "valid_bytes_scored": valid.count,
            "test_bytes_scored": test.count,
            "config": (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(config))) ?? [:],
            "validation_curve": progress.history.map { [Double($0.step), $0.validationBPC] },
        ]
        if let l = last, l.trainLoss.isFinite { s["final_train_loss"] = l.trainLoss; s["final_train_bpc"] = l.trainBPC }
        if let b = progress.bestValidationBPC { s["best_periodic_valid_bpc"] = b }
        if let b = progress.bestStep { s["best_step"] = b }
        return s
    }
}
