import Foundation
import FWCore
import FWOps

/// One evaluation of a synthetic-retrieval run.
public struct SyntheticEvaluation: Codable, Equatable, Sendable {
    /// Training steps done.
    public var step: Int
    /// Wall-clock seconds since the run started.
    public var seconds: Double
    /// Mean training loss over the steps since the previous evaluation.
    public var trainLoss: Double
    /// Loss on the evaluation set (all queries of `evalSequences` sequences).
    public var evalLoss: Double
    /// Queries whose argmax is the target, in percent.
    public var evalAccuracyPercent: Double
}

/// The outcome of a synthetic-retrieval run (one point of the paper's figures).
public struct SyntheticRunResult: Codable, Equatable, Sendable {
    /// Why the run ended.
    public enum Stop: String, Codable, Sendable {
        /// The evaluation loss reached `targetLoss`.
        case target
        /// `patience` evaluations in a row without a new best.
        case patience
        /// `maxSteps` steps.
        case steps
    }

    public var config: SyntheticRunConfig
    /// d_dot of the model.
    public var dotSize: Int
    /// Trainable numbers.
    public var parameterCount: Int
    /// The best evaluation loss, and the step it was reached at.
    public var bestLoss: Double
    public var bestStep: Int
    /// The evaluation accuracy (%) at the best loss.
    public var bestAccuracyPercent: Double
    /// The last evaluation's loss (what the paper's figure notebooks plot).
    public var finalLoss: Double?
    /// Training steps taken.
    public var steps: Int
    /// Wall-clock seconds of the whole run (training and evaluations).
    public var seconds: Double
    public var stop: Stop
    public var history: [SyntheticEvaluation]
}

/// Trains `SyntheticRetrievalModel` as the paper's code does: Adam, fresh
/// random training batches every step, an evaluation every `evalEvery`
/// steps, stop at `targetLoss` or after `patience` evaluations without a new
/// best. Deviation: the evaluation set (`evalSequences` sequences with all
/// their queries) is drawn once per run from the seed, not anew at every
/// evaluation, so that successive evaluations compare like with like.
public enum SyntheticTrainer {
    /// Runs `config` to its end.
    ///
    /// - Parameters:
    ///   - progress: a progress line on standard error (step, loss, steps/s, ETA).
    ///   - log: if given, one CSV row per evaluation
    ///     (`step,seconds,train_loss,eval_loss,eval_accuracy_pct`).
    /// - Throws: `FWError.invalidArgument` for a bad configuration,
    ///   `FWError.nonFinite` naming the step at the first NaN/Inf loss or gradient.
    public static func run(_ config: SyntheticRunConfig, progress: Bool = false, log: RunLog? = nil) throws -> SyntheticRunResult {
        try train(config, progress: progress, log: log).result
    }

    /// `run`, also returning the trained parameters (the final step's, not the best evaluation's).
    public static func train(_ config: SyntheticRunConfig, progress: Bool = false,
                             log: RunLog? = nil) throws -> (result: SyntheticRunResult, store: ParameterStore) {
        try config.validate()
        let task = try config.task()
        var initRNG = SeededRNG(seed: config.seed ^ SyntheticRunConfig.initSalt)
        var dataRNG = SeededRNG(seed: config.seed ^ SyntheticRunConfig.dataSalt)
        var projectionRNG = SeededRNG(seed: config.seed ^ SyntheticRunConfig.projectionSalt)
        var evalRNG = SeededRNG(seed: config.seed ^ SyntheticRunConfig.evaluationSalt)

        var store = ParameterStore()
        let model = try SyntheticRetrievalModel(size: config.size, keySize: config.keySize, embedding: config.embedding,
                                                reader: try config.reader(), store: &store, rng: &initRNG)
        let evaluationSet = task.evaluationBatch(count: config.evalSequences, maxQueries: config.maxQueries, rng: &evalRNG)
        let fixedOmega = config.favorEvaluation == .fixed ? try model.drawProjection(rng: &evalRNG) : nil
        var adam = Adam(learningRate: config.learningRate)

        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 }
        var reporter = progress ? ProgressReporter(total: config.maxSteps, every: 1000) : nil
        var history: [SyntheticEvaluation] = []
        var best = (loss: Double.infinity, step: 0, accuracy: 0.0)
        var strikes = 0
        var windowLoss = 0.0, windowSteps = 0
        var stop = SyntheticRunResult.Stop.steps
        var step = 0

        while step < config.maxSteps {
            step += 1
            let batch = task.trainingBatch(count: config.batchSize, rng: &dataRNG)
            // FAVOR+: a fresh Omega for every training forward (the paper's code).
            let omega = try model.drawProjection(rng: &projectionRNG)
            let f = try FiniteCheck.atStep(step) { try model.forward(batch, store: store, omega: omega) }
            try FiniteCheck.loss(f.loss, step: step)
            store.zeroGradients()
            try FiniteCheck.atStep(step) { try model.backward(f, store: &store) }
            if config.freezeEmbedding == true {
                // The variant: a fixed random key embedding (the paper's code trains it).
                store.withPointers { p in
                    let g = p.gradient(model.keyEmbedding)
                    for i in 0..<model.keyEmbedding.count { g[i] = 0 }
                }
            }
            try FiniteCheck.store(store, step: step, values: false)
            adam.update(&store)
            windowLoss += Double(f.loss)
            windowSteps += 1
            reporter?.update(step: step, loss: f.loss)

            if step % config.evalEvery == 0 || step == config.maxSteps {
                let omega = try fixedOmega ?? model.drawProjection(rng: &projectionRNG)
                let e = try FiniteCheck.atStep(step) { try model.forward(evaluationSet, store: store, omega: omega, saveForBackward: false) }
                try FiniteCheck.loss(e.loss, step: step)
                let record = SyntheticEvaluation(step: step, seconds: elapsed(), trainLoss: windowLoss / Double(windowSteps),
                                                 evalLoss: Double(e.loss),
                                                 evalAccuracyPercent: 100 * Double(e.correct) / Double(e.count))
                history.append(record)
                try log?.append(fields: [String(step), String(format: "%.3f", record.seconds), String(record.trainLoss),
                                 String(record.evalLoss), String(format: "%.2f", record.evalAccuracyPercent)])
                windowLoss = 0
                windowSteps = 0
                if record.evalLoss < best.loss {
                    best = (record.evalLoss, step, record.evalAccuracyPercent)
                    strikes = 0
                } else {
                    strikes += 1
                }
                if record.evalLoss <= Double(config.targetLoss) { stop = .target; break }
                if strikes >= config.patience { stop = .patience; break }
            }
        }
        reporter?.finish()
        let result = SyntheticRunResult(config: config, dotSize: model.dotSize, parameterCount: store.count,
                                  bestLoss: best.loss, bestStep: best.step, bestAccuracyPercent: best.accuracy,
                                  finalLoss: history.last?.evalLoss, steps: step, seconds: elapsed(), stop: stop, history: history)
        return (result, store)
    }
}
