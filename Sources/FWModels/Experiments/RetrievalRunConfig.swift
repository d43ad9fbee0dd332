import Foundation
import FWCore
import FWOps

/// The four models of Ba et al. 2016, Table 1, as the command line spells them.
public enum RetrievalModelKind: String, Codable, CaseIterable, Sendable {
    case fastWeights = "fast-weights"
    case irnn
    case lstm
    case alstm

    /// The name the paper's table uses.
    public var displayName: String {
        switch self {
        case .fastWeights: return "Fast weights"
        case .irnn: return "IRNN"
        case .lstm: return "LSTM"
        case .alstm: return "A-LSTM"
        }
    }
}

/// Everything that defines one associative-retrieval run: the model, the
/// data, the optimiser and the stopping rule. Stored as JSON in every
/// checkpoint (`json`), so that `fwp eval` and `--resume` can rebuild the
/// exact model and data from the file alone.
///
/// Seeds: the data splits come from `AssociativeRetrieval.splits(seed:)`;
/// the parameters are drawn from `SeededRNG(seed: seed ^ initSalt)` and the
/// minibatch order from `SeededRNG(seed: seed ^ samplerSalt)`, so one seed
/// fixes the whole run. Defaults and their reasons:
/// `Sources/FWModels/Tasks/AssociativeRetrieval.md`.
public struct RetrievalRunConfig: RunConfig {
    /// The `kind` of its run files.
    public static let kind = "retrieval"

    /// Which encoder.
    public var model: RetrievalModelKind
    /// R, the number of hidden units of the encoder.
    public var hidden: Int
    /// Width of the token embedding (the encoder's Din).
    public var embedding: Int = 100
    /// Key-value pairs per sequence, K (T = 2K + 3 tokens).
    public var pairs: Int = 4
    /// The one seed of the run (data, initialisation, minibatch order).
    public var seed: UInt64 = 1
    /// Split sizes (the paper's: 100,000 / 10,000 / 20,000).
    public var trainExamples: Int = 100_000
    public var validationExamples: Int = 10_000
    public var testExamples: Int = 20_000
    /// Sequences per training step.
    public var batchSize: Int = 128
    /// Adam's base step size (scaled by `learningRateSchedule`).
    public var learningRate: Float = 2e-4
    /// How the step size changes over training: nil or "constant"; "cosine:<minFactor>"
    /// (cosine decay from `learningRate` to `minFactor * learningRate` at `maxSteps`);
    /// "step:<every>:<factor>" (times `factor` every `every` steps). Optional so that
    /// checkpoints written before it existed still decode (as constant).
    public var learningRateSchedule: String? = nil
    /// Clip gradients to this global L2 norm; 0: no clipping.
    public var clipNorm: Float = 0
    /// Stop after this many steps at the latest.
    public var maxSteps: Int = 20_000
    /// Evaluate on the validation split (and log, and checkpoint) every this many steps.
    public var evalEvery: Int = 500
    /// Stop once the validation error has been 0 at this many evaluations in a row.
    public var patience: Int = 5
    /// Sequences per batch when evaluating a split.
    public var evalBatchSize: Int = 1000
    /// Fast weights: decay lambda, fast learning rate eta, inner steps S, activation.
    public var lambda: Float = 0.95
    public var eta: Float = 0.5
    public var innerSteps: Int = 1
    public var activation: FastWeightsRNNConfig.Activation = .relu
    /// Fast weights: which form of the op runs ("explicit" or "attention"; same function).
    public var algorithm: FastWeightsRNNAlgorithm = .explicit
    /// Fast weights: how W starts: "normal" (N(0, 1/N)) or "identity:<scale>".
    public var recurrentInit: String = "identity:0.05"
    /// A-LSTM: redundant memory copies.
    public var copies: Int = 4

    /// A configuration with the defaults for everything but the model and R.
    public init(model: RetrievalModelKind, hidden: Int) {
        self.model = model
        self.hidden = hidden
    }

    /// Mixed into `seed` for the parameter initialisation.
    public static let initSalt: UInt64 = 0x1A2B_3C4D_5E6F_7081
    /// Mixed into `seed` for the minibatch order.
    public static let samplerSalt: UInt64 = 0x5A3D_1F0E_9C8B_7A69

    /// Throws `FWError.invalidArgument` naming the first bad field.
    public func validate() throws {
        func check(_ ok: Bool, _ message: @autoclosure () -> String) throws {
            if !ok { throw FWError.invalidArgument(message()) }
        }
        let maxSize = SizeLimits.maxExtent, maxExamples = MinibatchSampler.maxExamples
        try check((1...maxSize).contains(hidden), "--hidden must be 1...\(maxSize), got \(hidden)")
        try check(model != .alstm || hidden % 2 == 0, "--hidden must be even for the A-LSTM (N/2 complex units), got \(hidden)")
        try check((1...maxSize).contains(embedding), "--embedding must be 1...\(maxSize), got \(embedding)")
        try check((1...26).contains(pairs), "--pairs must be 1...26 (distinct letters), got \(pairs)")
        try check((1...maxExamples).contains(trainExamples), "--train-examples must be 1...\(maxExamples), got \(trainExamples)")
        try check((1...maxExamples).contains(validationExamples), "--validation-examples must be 1...\(maxExamples), got \(validationExamples)")
        try check((1...maxExamples).contains(testExamples), "--test-examples must be 1...\(maxExamples), got \(testExamples)")
        try check(batchSize >= 1 && batchSize <= trainExamples,
                  "--batch must be 1...\(trainExamples) (the training examples), got \(batchSize)")
        try check(learningRate.isFinite && learningRate > 0, "--lr must be positive, got \(learningRate)")
        try check(clipNorm.isFinite && clipNorm >= 0, "--clip must be >= 0 (0: none), got \(clipNorm)")
        try check((1...Self.maxStepCount).contains(maxSteps), "--steps must be 1...\(Self.maxStepCount), got \(maxSteps)")
        try check(evalEvery >= 1, "--eval-every must be >= 1, got \(evalEvery)")
        try check(patience >= 1, "--patience must be >= 1, got \(patience)")
        try check((1...maxExamples).contains(evalBatchSize), "--eval-batch must be 1...\(maxExamples), got \(evalBatchSize)")
        try check(lambda.isFinite && eta.isFinite, "lambda and eta must be finite")
        try check((0...maxSize).contains(innerSteps), "inner steps must be 0...\(maxSize), got \(innerSteps)")
        _ = try fastWeightsRecurrentInitialization()
        _ = try schedule()
        try check((1...maxSize).contains(copies), "--copies must be 1...\(maxSize), got \(copies)")
        try MemoryBudget.check(memoryEstimate(), "this \(model.rawValue) run (R = \(hidden), embedding \(embedding), \(trainExamples + validationExamples + testExamples) examples, batch \(batchSize), eval batch \(evalBatchSize))")
    }

    /// The most steps a run may take (a checkpoint's counters stay exact).
    public static let maxStepCount = 1 << 53

    /// Bytes the run holds at its peak, roughly and from above, in Double so
    /// that forming it never overflows: the three splits' tokens, the
    /// parameters six times over (values, gradients, Adam's m and v, the best
    /// snapshot, a copy for evaluation), and the activations of one training
    /// batch or one evaluation batch (whichever is larger) through the
    /// encoder, including the fast weights' per-sequence A checkpoints and
    /// the A-LSTM's copies.
    public func memoryEstimate() -> Double {
        let T = Double(2 * pairs + 3), N = Double(hidden), E = Double(embedding), K = Double(copies)
        let V = Double(AssociativeRetrieval.vocabularySize), C = Double(AssociativeRetrieval.classCount)
        let examples = Double(trainExamples) + Double(validationExamples) + Double(testExamples)
        let data = examples * (T + 1) * 4   // Int32 tokens and targets
        let encoder: Double
        let perToken: Double                // floats kept per sequence and time step
        var perSequence: Double = 0         // floats kept per sequence besides
        switch model {
        case .irnn: encoder = N * N + N * E + N; perToken = 4 * N
        case .lstm: encoder = 4 * N * (N + E + 1); perToken = 14 * N
        case .alstm: encoder = 4.5 * N * (N + E + 1); perToken = 14 * N + 6 * K * N
        case .fastWeights:
            let S = Double(innerSteps)
            encoder = N * N + N * E + 3 * N
            perToken = N * (4 + 3 * S) + S
            perSequence = (T.squareRoot() + 2) * N * N
        }
        let parameters = V * E + encoder + N * C + C
        let batch = max(Double(batchSize), min(Double(evalBatchSize), max(Double(validationExamples), Double(testExamples))))
        let activations = 2 * batch * (T * (E + perToken + C) + perSequence)
        return data + MemoryBudget.floats(6 * parameters + activations)
    }

    /// `recurrentInit` parsed.
    public func fastWeightsRecurrentInitialization() throws -> FastWeightsEncoder.RecurrentInitialization {
        if recurrentInit == "normal" { return .normal }
        if recurrentInit.hasPrefix("identity:"), let s = Float(recurrentInit.dropFirst("identity:".count)), s.isFinite {
            return .scaledIdentity(s)
        }
        throw FWError.invalidArgument("recurrent init must be 'normal' or 'identity:<scale>', got '\(recurrentInit)'")
    }

    /// `learningRateSchedule` parsed (cosine decays over `maxSteps`, no warm-up).
    public func schedule() throws -> LearningRateSchedule {
        let text = learningRateSchedule ?? "constant"
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        switch parts[0] {
        case "constant" where parts.count == 1:
            return .constant
        case "cosine" where parts.count == 2:
            if let f = Float(parts[1]), f.isFinite, f >= 0, f <= 1 {
                return .cosine(warmupSteps: 0, totalSteps: maxSteps, minFactor: f)
            }
        case "step" where parts.count == 3:
            if let k = Int(parts[1]), k >= 1, let g = Float(parts[2]), g.isFinite, g > 0 {
                return .step(every: k, factor: g)
            }
        default:
            break
        }
        throw FWError.invalidArgument("--lr-schedule must be constant, cosine:<minFactor in 0...1> or step:<every>:<factor>, got '\(text)'")
    }

    /// The task (K pairs).
    public func task() throws -> AssociativeRetrieval { try AssociativeRetrieval(pairs: pairs) }

    /// Builds the model, registering its parameters in `store` (drawn from `rng`).
    public func makeModel(store: inout ParameterStore, rng: inout SeededRNG) throws -> any SequenceClassifier {
        try validate()
        let task = try task()
        let (V, C, T, E, N) = (AssociativeRetrieval.vocabularySize, AssociativeRetrieval.classCount,
                               task.length, embedding, hidden)
        switch model {
        case .fastWeights:
            let fw = FastWeightsRNNConfig(lambda: lambda, eta: eta, innerSteps: innerSteps,
                                          activation: activation)
            let algo = algorithm
            let initW = try fastWeightsRecurrentInitialization()
            return RetrievalModel(vocabularySize: V, embeddingSize: E, classes: C, sequenceLength: T,
                                  store: &store, rng: &rng) { input, store, rng in
                FastWeightsEncoder(input: input, hidden: N, config: fw, algorithm: algo,
                                   recurrentInitialization: initW, store: &store, rng: &rng)
            }
        case .irnn:
            return RetrievalModel(vocabularySize: V, embeddingSize: E, classes: C, sequenceLength: T,
                                  store: &store, rng: &rng) { input, store, rng in
                IRNNEncoder(input: input, hidden: N, store: &store, rng: &rng)
            }
        case .lstm:
            return RetrievalModel(vocabularySize: V, embeddingSize: E, classes: C, sequenceLength: T,
                                  store: &store, rng: &rng) { input, store, rng in
                LSTMEncoder(input: input, hidden: N, store: &store, rng: &rng)
            }
        case .alstm:
            let k = copies
            return RetrievalModel(vocabularySize: V, embeddingSize: E, classes: C, sequenceLength: T,
                                  store: &store, rng: &rng) { input, store, rng in
                AssociativeLSTMEncoder(input: input, hidden: N, copies: k, store: &store, rng: &rng)
            }
        }
    }

    /// Compact JSON (sorted keys).
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }
}
