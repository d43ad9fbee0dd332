import FWCore
import FWOps

/// Everything that defines one synthetic-retrieval run (Schlag et al. 2021,
/// section 6.1): the setting, S, the model and the optimisation. Defaults
/// are the paper's code's (`synthetic/main.py`); our own choices are in
/// `Sources/FWModels/Tasks/SyntheticRetrieval.md`.
public struct SyntheticRunConfig: RunConfig {
    /// The `kind` of its run files.
    public static let kind = "synthetic"

    /// How FAVOR+'s Omega is drawn at evaluation.
    public enum FavorEvaluation: String, Codable, Sendable, CaseIterable {
        /// A new Omega for every evaluation forward (the paper's code).
        case fresh
        /// One Omega drawn at the start of the run (deterministic evaluations).
        case fixed
    }

    /// 1 (capacity: no replacement, L = S) or 2 (updates: replacement, L = 2S).
    public var setting: Int
    /// S, the number of keys and of values.
    public var size: Int
    /// The reader, as `SyntheticReader(parsing:)` spells it: `softmax`, `sum:elu1`, `delta:dpfp:1`, ...
    public var model: String
    /// d_key: width of K and Q before phi (the paper: 64).
    public var keySize: Int = 64
    /// Width of the key embedding; nil: the paper's int(2.2 S).
    public var embedding: Int?
    /// The run's seed (initialisation, data, Omega draws, evaluation set).
    public var seed: UInt64 = 1
    /// Sequences per training step (the paper: 32).
    public var batchSize: Int = 32
    /// Adam's learning rate (the paper: 1e-3).
    public var learningRate: Float = 1e-3
    /// Step limit (the paper: 100,000).
    public var maxSteps: Int = 100_000
    /// Evaluate every this many steps (the paper: 100).
    public var evalEvery: Int = 100
    /// Sequences in the evaluation set, each queried with all its distinct keys (the paper: 20).
    public var evalSequences: Int = 20
    /// At most this many queries per evaluation sequence (the paper: 200).
    public var maxQueries: Int = 200
    /// Stop once the evaluation loss is at most this (the paper: 0.001).
    public var targetLoss: Float = 0.001
    /// Stop after this many evaluations in a row without a new best loss.
    public var patience: Int = 10
    /// Keep the key embedding E at its random initialisation (nil or false:
    /// train it, as the paper's code does).
    public var freezeEmbedding: Bool?
    /// FAVOR+ at evaluation: "fresh" (a new Omega per forward, as the paper's
    /// code) or "fixed" (one Omega drawn at the start, for deterministic evaluations).
    public var favorEvaluation: FavorEvaluation = .fresh

    /// A run of `model` at size S in `setting`, everything else the paper's.
    public init(setting: Int, size: Int, model: String) {
        self.setting = setting
        self.size = size
        self.model = model
    }

    /// The parsed reader.
    public func reader() throws -> SyntheticReader { try SyntheticReader(parsing: model) }

    /// The task this configuration trains on.
    public func task() throws -> SyntheticRetrievalTask { try SyntheticRetrievalTask(setting: setting, size: size) }

    /// Mixed into `seed` for: parameters, training data, Omega draws, the evaluation set.
    public static let initSalt: UInt64 = 0x5C41_1A6F_0000_0001
    public static let dataSalt: UInt64 = 0x5C41_1A6F_0000_0002
    public static let projectionSalt: UInt64 = 0x5C41_1A6F_0000_0003
    public static let evaluationSalt: UInt64 = 0x5C41_1A6F_0000_0004

    /// Throws `FWError.invalidArgument` naming the first bad field.
    public func validate() throws {
        func check(_ ok: Bool, _ message: @autoclosure () -> String) throws {
            if !ok { throw FWError.invalidArgument(message()) }
        }
        let maxSize = SizeLimits.maxExtent
        try check((1...maxSize).contains(size), "--size must be 1...\(maxSize), got \(size)")
        _ = try task()
        let r = try reader()
        try check((1...maxSize).contains(keySize), "--key-size must be 1...\(maxSize), got \(keySize)")
        if case let .dpfp(order)? = r.featureMap {
            try check(order / 2 < keySize, "\(model) needs --key-size >= \(order / 2 + 1), got \(keySize)")
        }
        if let phi = r.featureMap {
            do { try phi.validate(inputSize: keySize) } catch let FWError.invalidArgument(message) {
                throw FWError.invalidArgument("--model \(model): \(message)")
            }
        }
        try check(embedding.map { (1...maxSize).contains($0) } ?? true, "--embedding must be 1...\(maxSize), got \(embedding ?? 0)")
        try check((1...maxSize).contains(batchSize), "--batch must be 1...\(maxSize), got \(batchSize)")
        try check(learningRate.isFinite && learningRate > 0, "--lr must be positive, got \(learningRate)")
        try check((1...RetrievalRunConfig.maxStepCount).contains(maxSteps), "--steps must be 1...\(RetrievalRunConfig.maxStepCount), got \(maxSteps)")
        try check(evalEvery >= 1, "--eval-every must be >= 1, got \(evalEvery)")
        try check((1...maxSize).contains(evalSequences), "--eval-sequences must be 1...\(maxSize), got \(evalSequences)")
        try check((1...maxSize).contains(maxQueries), "--max-queries must be 1...\(maxSize), got \(maxQueries)")
        try check(targetLoss.isFinite && targetLoss >= 0, "--target-loss must be >= 0, got \(targetLoss)")
        try check(patience >= 1, "--patience must be >= 1, got \(patience)")
        try MemoryBudget.check(try memoryEstimate(), "this synthetic run (\(model), S = \(size), d_key \(keySize), batch \(batchSize), \(evalSequences) evaluation sequences)")
    }

    /// Bytes the run holds at its peak, roughly and from above, in Double so
    /// that forming it never overflows: the parameters six times over
    /// (values, gradients, Adam's m and v, copies), and the activations of a
    /// training batch and of the evaluation set through the model (softmax:
    /// the L x L scores; the fast weight readers: q', k', the one-hot values
    /// and outputs, and the states the op saves, each `Dphi x S`).
    public func memoryEstimate() throws -> Double {
        let S = Double(size), L = Double(setting == 1 ? size : 2 * size)
        let e = Double(embedding ?? SyntheticRetrievalModel.defaultEmbedding(size: size)), d = Double(keySize)
        let dphi = Double(try reader().featureMap.map { try SizeLimits.product([$0.outputSize(inputSize: keySize)], "Dphi") } ?? keySize)
        let parameters = S * e + S * d + 2 * d * e + 4 * d + S
        let perSequence: Double
        if try reader() == .softmax {
            perSequence = L * L + L * (e + 3 * d + 2 * S)
        } else {
            perSequence = L * (2 * dphi + 4 * S + e + 3 * d) + (L.squareRoot() + 3) * dphi * S
        }
        let queries = Double(evalSequences) * min(L, Double(maxQueries))
        let activations = 2 * Double(batchSize) * perSequence + Double(evalSequences) * perSequence + queries * (d + dphi + 2 * S)
        return MemoryBudget.floats(6 * parameters + activations)
    }
}
