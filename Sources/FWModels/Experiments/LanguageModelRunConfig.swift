import Foundation
import FWCore

/// Everything that defines one character-level language-model run: the
/// model, the data folder (`fwp data`), the context, the optimiser and the
/// context mode. Stored in every checkpoint and summary; a child of
/// `fwp reproduce schlag2021-lm` reads it from a file (`RunConfigFile`).
///
/// Seeds: the parameters come from `SeededRNG(seed: seed ^ initSalt)`, the
/// training windows from `seed ^ dataSalt`, dropout and FAVOR+'s Omega draws
/// from `seed ^ dropoutSalt`; one seed fixes the whole run.
public struct LanguageModelRunConfig: RunConfig {
    /// The `kind` of its run files.
    public static let kind = "lm"

    /// How the fast weights meet the segment boundaries.
    public enum ContextMode: String, Codable, Sendable, CaseIterable {
        /// Every segment of `context` bytes starts from empty fast weights
        /// (Schlag et al. 2021, Table 2); training windows are drawn at random.
        case truncated
        /// Each batch row reads its own contiguous stream of the training
        /// text; the fast weights of every layer are carried from one segment
        /// to the next, gradients truncated at the boundary (Table 4).
        case carry
        /// Contiguous streams as `carry` reads them, but every segment starts
        /// from empty fast weights: the truncated baseline at the same data
        /// order as `carry` (the paper's loader reads streams in both tables;
        /// `truncated` draws windows at random instead).
        case streams

        /// The fast weights are carried from one segment to the next.
        public var carriesState: Bool { self == .carry }
        /// Each batch row reads its own contiguous stream of the text.
        public var readsStreams: Bool {
            switch self {
            case .truncated: return false
            case .carry, .streams: return true
            }
        }
    }

    /// The model.
    public var model: LanguageModelConfig
    /// The data folder (`train.txt`, `valid.txt`, `test.txt`, `manifest.json`).
    public var data: String
    /// Bytes per training segment, T.
    public var context: Int = 256
    /// Segments per step, B.
    public var batchSize: Int = 16
    /// Steps to train.
    public var maxSteps: Int = 2000
    /// The run's one seed.
    public var seed: UInt64 = 1
    /// Adam's peak learning rate.
    public var learningRate: Float = 1e-3
    /// Linear warm-up steps, then cosine decay to `minLearningRateFactor * learningRate` at `maxSteps`.
    public var warmupSteps: Int = 100
    public var minLearningRateFactor: Float = 0.1
    /// Clip gradients to this global L2 norm (0: no clipping; the paper: 0.25).
    public var clipNorm: Float = 0.25
    /// Evaluate, log and checkpoint every this many steps.
    public var evalEvery: Int = 250
    /// Validation bytes scored at each periodic evaluation (the end scores whole splits).
    public var evalBytes: Int = 65_536
    /// Truncated (random windows or streams) or carried fast weights.
    public var mode: ContextMode = .truncated

    /// A run of `model` on the folder `data`, everything else the defaults.
    public init(model: LanguageModelConfig, data: String) {
        self.model = model
        self.data = data
    }

    /// Mixed into `seed` for parameters, training windows and dropout.
    public static let initSalt: UInt64 = 0x1A57_0000_0000_0001
    public static let dataSalt: UInt64 = 0x1A57_0000_0000_0002
    public static let dropoutSalt: UInt64 = 0x1A57_0000_0000_0003

    /// The most steps a run may take (a checkpoint's counters stay exact).
    public static let maxStepCount = 1 << 53

    /// Throws `FWError.invalidArgument` naming the first bad field.
    public func validate() throws {
        func check(_ ok: Bool, _ message: @autoclosure () -> String) throws {
            if !ok { throw FWError.invalidArgument(message()) }
        }
        try model.validate()
        let maxSize = SizeLimits.maxExtent
        try check(!data.isEmpty, "--data must name a folder made by fwp data")
        try check((1...maxSize).contains(context), "--context must be 1...\(maxSize), got \(context)")
        try check((1...maxSize).contains(batchSize), "--batch must be 1...\(maxSize), got \(batchSize)")
        try check((1...Self.maxStepCount).contains(maxSteps), "--steps must be 1...\(Self.maxStepCount), got \(maxSteps)")
        try check(learningRate.isFinite && learningRate > 0, "--lr must be positive, got \(learningRate)")
        try check(warmupSteps >= 0, "--warmup must be >= 0, got \(warmupSteps)")
        try check(minLearningRateFactor.isFinite && (0...1).contains(minLearningRateFactor),
                  "--min-lr-factor must be 0...1, got \(minLearningRateFactor)")
        try check(clipNorm.isFinite && clipNorm >= 0, "--clip must be >= 0 (0: none), got \(clipNorm)")
        try check(evalEvery >= 1, "--eval-every must be >= 1, got \(evalEvery)")
        try check((2...maxSize).contains(evalBytes), "--eval-bytes must be 2...\(maxSize), got \(evalBytes)")
        if mode == .carry {
            try check(model.mixer != .softmax, "--carry-state needs a fast weight mixer; softmax attention has no state to carry")
            // A fresh Omega every training step would read the carried state in another feature space.
            try check(model.mixer != .favorSum && model.mixer != .favorDelta,
                      "--carry-state with \(model.mixer.rawValue) is not supported: FAVOR+ redraws Omega every step, so the carried fast weights would be read with other features")
        }
        try MemoryBudget.check(model.memoryEstimate(batch: batchSize, context: context),
                               "this language model (\(model.mixer.rawValue), \(model.layers) layers of \(model.modelSize), batch \(batchSize) x context \(context))")
    }

    /// The learning rate schedule: warm-up, then cosine decay over `maxSteps`.
    public var schedule: LearningRateSchedule {
        .cosine(warmupSteps: warmupSteps, totalSteps: maxSteps, minFactor: minLearningRateFactor)
    }
}
