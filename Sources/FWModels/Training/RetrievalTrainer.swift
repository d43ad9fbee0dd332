import Foundation
import FWCore

/// One row of a run's log: where training stood at an evaluation.
public struct EvaluationRecord: Codable, Equatable, Sendable {
    /// Training steps taken.
    public var step: Int
    /// Wall-clock seconds of training so far (summed over resumed sessions).
    public var seconds: Double
    /// Mean training loss and error (%) over the steps since the previous evaluation.
    public var trainLoss: Double
    public var trainErrorPercent: Double
    /// Loss and error (%) on the validation split.
    public var validationLoss: Double
    public var validationErrorPercent: Double
}

/// Where a run stands besides its numbers; saved in every checkpoint (inside
/// the config string) so that a resumed run continues exactly.
public struct TrainerProgress: Codable, Equatable, Sendable {
    /// Updates taken.
    public var step: Int = 0
    /// Lowest validation error so far (%), and the step it was reached at (nil: no evaluation yet).
    public var bestValidationErrorPercent: Double?
    public var bestStep: Int?
    /// Consecutive evaluations with 0% validation error.
    public var zeroStreak: Int = 0
    /// Whether the run stopped early (validation error 0 for `patience` evaluations).
    public var stoppedEarly: Bool = false
    /// Training loss (sum), correct and seen examples, and steps since the last evaluation.
    public var windowLoss: Double = 0
    public var windowCorrect: Int = 0
    public var windowCount: Int = 0
    public var windowSteps: Int = 0
    /// Wall-clock seconds of training before the current session.
    public var seconds: Double = 0
    /// Every evaluation so far (the learning curve).
    public var history: [EvaluationRecord] = []
}

/// What a retrieval checkpoint's config string holds (JSON): the run's
/// configuration and its progress.
public struct RetrievalCheckpointConfig: CheckpointConfig {
    public var run: RetrievalRunConfig
    public var progress: TrainerProgress

    public init(run: RetrievalRunConfig, progress: TrainerProgress) {
        self.run = run
        self.progress = progress
    }
}

/// Trains a model on the associative retrieval task (Ba et al. 2016, 4.1).
///
/// Each step: a minibatch from `MinibatchSampler`, zero the gradients, the
/// model's loss and gradients, optional clipping by global norm, Adam. Every
/// non-finite loss, gradient or parameter stops the run with
/// `FWError.nonFinite` naming the step and the tensor (`FiniteCheck`). Every
/// `evalEvery` steps (and at the last): the validation error, a row of the
/// CSV log, the best parameters so far (lowest validation error; ties keep
/// the earlier), and a checkpoint when `checkpointPath` is set. The run stops
/// at `maxSteps` or when the validation error has been 0 at `patience`
/// evaluations in a row. The test error is measured with the best parameters.
///
/// A checkpoint holds everything (parameters, Adam's moments and step, the
/// sampler, the generator, the best parameters as the snapshot `best`, and
/// the progress), so a run resumed from it ends with bit-identical parameters
/// to one that was never interrupted.
public final class RetrievalTrainer {
    /// The run's configuration.
    public private(set) var config: RetrievalRunConfig
    /// The model (its parameters are in `store`).
    public let model: any SequenceClassifier
    /// The current parameters and their gradients.
    public internal(set) var store: ParameterStore
    /// The optimiser, with its moments.
    public private(set) var optimizer: Adam
    /// The minibatch order.
    public private(set) var sampler: MinibatchSampler
    /// The run's generator after initialisation (saved and restored; nothing draws from it yet).
    public private(set) var rng: SeededRNG
    /// Step, best validation error, history.
    public private(set) var progress: TrainerProgress
    /// The parameters with the lowest validation error so far (the initial ones before any evaluation).
    public private(set) var bestValues: [Float]
    /// The three splits.
    public let data: (train: AssociativeRetrieval.Split, validation: AssociativeRetrieval.Split,
                      test: AssociativeRetrieval.Split)

    /// Where to write a checkpoint at every evaluation (nil: none).
    public var checkpointPath: String?
    /// The CSV log to append a row to at every evaluation (nil: none).
    public var log: RunLog?
    /// Progress lines on standard error (nil: quiet).
    public var reporter: ProgressReporter?
    /// Called after every evaluation (e.g. to print it).
    public var onEvaluation: ((EvaluationRecord) -> Void)?

    /// The columns of the CSV log.
    public static let logColumns = ["step", "seconds", "train_loss", "train_error_pct",
                                    "validation_loss", "validation_error_pct", "best_validation_error_pct"]

    /// A fresh run: data, parameters, optimiser and sampler from `config.seed`.
    public init(config: RetrievalRunConfig) throws {
        try config.validate()
        self.config = config
        data = try config.task().splits(seed: config.seed, train: config.trainExamples,
                                        validation: config.validationExamples, test: config.testExamples)
        var store = ParameterStore()
        var rng = SeededRNG(seed: config.seed ^ RetrievalRunConfig.initSalt)
        model = try config.makeModel(store: &store, rng: &rng)
        self.store = store
        self.rng = rng
        optimizer = Adam(learningRate: config.learningRate)
        sampler = try MinibatchSampler(exampleCount: config.trainExamples, batchSize: config.batchSize,
                                       seed: config.seed ^ RetrievalRunConfig.samplerSalt)
        progress = TrainerProgress()
        bestValues = store.values
    }

    /// Resumes the run saved at `path`: rebuilds model and data from the
    /// checkpoint's config, then loads everything. `maxSteps` (if given)
    /// replaces the saved limit, e.g. to train a finished run longer; it may
    /// not be below the step the checkpoint has reached.
    /// Throws `FWError.file` naming `path` for a malformed or foreign checkpoint.
    public convenience init(resumingFrom path: String, maxSteps: Int? = nil) throws {
        let contents = try SafeTensors.read(path)
        guard let text = contents.metadata["config"] else {
            throw FWError.file(path: path, reason: "missing metadata 'config'")
        }
        var saved = try RetrievalCheckpointConfig.decode(text, path: path)
        if let maxSteps {
            guard maxSteps >= saved.progress.step else {
                throw FWError.invalidArgument("--steps \(maxSteps) is below the step the checkpoint \(path) has reached (\(saved.progress.step)); give at least that")
            }
            saved.run.maxSteps = maxSteps
        }
        try saved.run.validate()
        try self.init(config: saved.run)
        var store = self.store
        var optimizer = self.optimizer
        let state = try Checkpoint.read(path, into: &store, optimizer: &optimizer)
        guard let samplerState = state.sampler else {
            throw FWError.file(path: path, reason: "no sampler state: not a training checkpoint")
        }
        guard samplerState.exampleCount == config.trainExamples, samplerState.batchSize == config.batchSize else {
            throw FWError.file(path: path, reason: "sampler state (\(samplerState.exampleCount) examples, batch \(samplerState.batchSize)) does not match the config")
        }
        guard state.step == saved.progress.step else {
            throw FWError.file(path: path, reason: "step \(state.step) differs from the config's progress step \(saved.progress.step)")
        }
        let best = try Checkpoint.readSnapshot(path, prefix: "best", store: store) ?? store.values
        self.store = store
        self.optimizer = optimizer
        self.sampler = try MinibatchSampler(restoring: samplerState)
        self.rng = state.rng
        self.progress = saved.progress
        // A resumed run may go on after an early stop only if given more steps.
        if maxSteps != nil && saved.progress.stoppedEarly && maxSteps! > saved.progress.step {
            self.progress.stoppedEarly = false
            self.progress.zeroStreak = 0
        }
        self.bestValues = best
    }

    /// Whether training is over (step limit or early stop).
    public var isFinished: Bool { progress.stoppedEarly || progress.step >= config.maxSteps }

    /// Trains until the run is finished or `step` reaches `until` (if given).
    public func train(until: Int? = nil) throws {
        let limit = min(until ?? config.maxSteps, config.maxSteps)
        let T = model.sequenceLength
        let B = config.batchSize
        var tokens = [Int32](repeating: 0, count: B * T)
        var targets = [Int32](repeating: 0, count: B)
        let schedule = try config.schedule()
        let sessionStart = DispatchTime.now().uptimeNanoseconds
        let secondsBefore = progress.seconds
        func elapsed() -> Double { secondsBefore + Double(DispatchTime.now().uptimeNanoseconds - sessionStart) * 1e-9 }

        while !progress.stoppedEarly && progress.step < limit {
            let batch = sampler.nextBatch()
            let n = batch.count
            for (i, e) in batch.enumerated() {
                for t in 0..<T { tokens[i * T + t] = data.train.tokens[e * T + t] }
                targets[i] = data.train.targets[e]
            }
            let step = progress.step + 1
            store.zeroGradients()
            let r = try FiniteCheck.atStep(step) {
                try model.lossAndGradients(tokens: tokens[0..<(n * T)], targets: targets[0..<n], store: &store)
            }
            try FiniteCheck.loss(r.loss, step: step)
            if config.clipNorm > 0 { store.clipGradients(maxNorm: config.clipNorm) }
            try FiniteCheck.store(store, step: step, values: false, gradients: true)
            optimizer.update(&store, learningRate: schedule.rate(base: config.learningRate, step: optimizer.step))
            try FiniteCheck.store(store, step: step, values: true, gradients: false)

            progress.step = step
            progress.windowLoss += Double(r.loss) * Double(r.count)
            progress.windowCorrect += r.correct
            progress.windowCount += r.count
            progress.windowSteps += 1
            reporter?.update(step: step, loss: r.loss, accuracy: r.accuracy)

            if step % config.evalEvery == 0 || step == config.maxSteps {
                progress.seconds = elapsed()
                try evaluateAndRecord()
            }
        }
        progress.seconds = elapsed()
        if isFinished { reporter?.finish() }
    }

    /// Validation error now; updates the best parameters, the early-stop
    /// count, the log and the checkpoint.
    private func evaluateAndRecord() throws {
        let v = try FiniteCheck.atStep(progress.step) {
            try model.evaluate(tokens: data.validation.tokens, targets: data.validation.targets,
                               batchSize: config.evalBatchSize, store: store)
        }
        let w = progress
        let record = EvaluationRecord(
            step: w.step, seconds: w.seconds,
            trainLoss: w.windowCount > 0 ? w.windowLoss / Double(w.windowCount) : 0,
            trainErrorPercent: w.windowCount > 0 ? 100 * Double(w.windowCount - w.windowCorrect) / Double(w.windowCount) : 0,
            validationLoss: Double(v.loss), validationErrorPercent: v.errorPercent)
        try FiniteCheck.loss(v.loss, step: w.step)
        if progress.bestValidationErrorPercent.map({ record.validationErrorPercent < $0 }) ?? true {
            progress.bestValidationErrorPercent = record.validationErrorPercent
            progress.bestStep = w.step
            bestValues = store.values
        }
        progress.zeroStreak = v.correct == v.count ? progress.zeroStreak + 1 : 0
        if progress.zeroStreak >= config.patience { progress.stoppedEarly = true }
        progress.windowLoss = 0
        progress.windowCorrect = 0
        progress.windowCount = 0
        progress.windowSteps = 0
        progress.history.append(record)
        try log?.append([Double(record.step), record.seconds, record.trainLoss, record.trainErrorPercent,
                         record.validationLoss, record.validationErrorPercent,
                         progress.bestValidationErrorPercent ?? .nan])
        onEvaluation?(record)
        if let checkpointPath { try writeCheckpoint(to: checkpointPath) }
    }

    /// Writes everything needed to resume (and to evaluate) to `path`, atomically.
    public func writeCheckpoint(to path: String) throws {
        let text = RetrievalCheckpointConfig(run: config, progress: progress).json()
        let state = TrainingState(step: progress.step, rng: rng, sampler: sampler.state, config: text)
        try Checkpoint.write(to: path, store: store, optimizer: optimizer, state: state,
                             snapshots: [(prefix: "best", values: bestValues)])
    }

    /// Loss and error of the best parameters on the test split.
    public func evaluateTest() throws -> ClassificationResult {
        var best = store
        best.setValues(bestValues)
        return try model.evaluate(tokens: data.test.tokens, targets: data.test.targets,
                                  batchSize: config.evalBatchSize, store: best)
    }

    /// The run's summary (JSON-compatible): configuration, steps, time, best
    /// validation and test error, and the validation curve `[[step, error %], ...]`.
    public func summary(test: ClassificationResult) -> [String: Any] {
        var s: [String: Any] = [
            "model": config.model.rawValue,
            "hidden": config.hidden,
            "steps": progress.step,
            "seconds": progress.seconds,
            "stopped_early": progress.stoppedEarly,
            "finished": isFinished,
            "parameters": store.count,
            "test_error_pct": test.errorPercent,
            "test_loss": Double(test.loss),
            "test_examples": test.count,
            "config": (try? JSONSerialization.jsonObject(with: Data(config.json().utf8))) ?? [:],
            "validation_curve": progress.history.map { [Double($0.step), $0.validationErrorPercent] },
        ]
        if let b = progress.bestValidationErrorPercent { s["best_validation_error_pct"] = b }
        if let b = progress.bestStep { s["best_step"] = b }
        return s
    }
}
