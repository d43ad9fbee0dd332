import FWCore
import FWOps

/// Everything that defines one synthetic-retrieval run (Schlag et al. 2021,
/// section 6.1): the setting, S, the model and the optimisation. Defaults
/// are the paper's code's (`synthetic/main.py`); our own choices are in
/// `Sources/FWModels/Tasks/SyntheticRetrieval.md`.
public struct SyntheticRunConfig: Codable, Equatable, Sendable {
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
    public var favorEvaluation: String = "fresh"

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
        _ = try task()
        let r = try reader()
        try check(keySize >= 1, "--key-size must be >= 1, got \(keySize)")
        if case let .dpfp(order)? = r.featureMap {
            try check(order <= 2 * keySize - 1, "dpfp:\(order) needs --key-size >= \(order / 2 + 1), got \(keySize)")
        }
        try check(embedding.map { $0 >= 1 } ?? true, "--embedding must be >= 1, got \(embedding ?? 0)")
        try check(batchSize >= 1, "--batch must be >= 1, got \(batchSize)")
        try check(learningRate.isFinite && learningRate > 0, "--lr must be positive, got \(learningRate)")
        try check(maxSteps >= 1, "--steps must be >= 1, got \(maxSteps)")
        try check(evalEvery >= 1, "--eval-every must be >= 1, got \(evalEvery)")
        try check(evalSequences >= 1, "--eval-sequences must be >= 1, got \(evalSequences)")
        try check(maxQueries >= 1, "--max-queries must be >= 1, got \(maxQueries)")
        try check(targetLoss.isFinite && targetLoss >= 0, "--target-loss must be >= 0, got \(targetLoss)")
        try check(patience >= 1, "--patience must be >= 1, got \(patience)")
        try check(favorEvaluation == "fresh" || favorEvaluation == "fixed",
                  "--favor-eval must be fresh or fixed, got '\(favorEvaluation)'")
    }
}
