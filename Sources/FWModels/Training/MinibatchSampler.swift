import FWCore

/// Shuffled minibatches over `exampleCount` examples, epoch after epoch,
/// reproducible from a seed and resumable exactly.
///
/// Each epoch is a fresh Fisher-Yates permutation of `0..<exampleCount`
/// drawn from the sampler's own `SeededRNG`; batches are consecutive runs
/// of `batchSize` indices of it. Batches never straddle two epochs: the last
/// `exampleCount % batchSize` indices of an epoch form a shorter batch, or
/// are skipped with `dropLast` (then every batch has `batchSize` indices).
///
/// The whole state (`State`: sizes, epoch, position, and the generator's
/// words at the start of the epoch) is a few integers; a sampler rebuilt
/// from it regenerates the epoch's permutation and continues with exactly
/// the batches the original would have produced.
public struct MinibatchSampler: Sendable, Equatable {
    /// Everything needed to resume a sampler exactly.
    public struct State: Sendable, Equatable {
        /// Number of examples.
        public var exampleCount: Int
        /// Indices per batch.
        public var batchSize: Int
        /// Whether an epoch's last short batch is skipped.
        public var dropLast: Bool
        /// The current epoch (0-based).
        public var epoch: Int
        /// Index of the next example within the epoch's permutation.
        public var position: Int
        /// The generator at the start of the current epoch (before its shuffle).
        public var epochStart: SeededRNG

        public init(exampleCount: Int, batchSize: Int, dropLast: Bool, epoch: Int, position: Int, epochStart: SeededRNG) {
            self.exampleCount = exampleCount
            self.batchSize = batchSize
            self.dropLast = dropLast
            self.epoch = epoch
            self.position = position
            self.epochStart = epochStart
        }

        /// Throws `FWError.invalidArgument` for an inconsistent state, without
        /// allocating anything (a checkpoint's state is checked before use).
        public func validate() throws {
            guard exampleCount > 0, exampleCount <= MinibatchSampler.maxExamples, batchSize > 0 else {
                throw FWError.invalidArgument("MinibatchSampler: need 1...\(MinibatchSampler.maxExamples) examples and a positive batch size, got \(exampleCount) examples, batch \(batchSize)")
            }
            guard !dropLast || batchSize <= exampleCount else {
                throw FWError.invalidArgument("MinibatchSampler: batch size \(batchSize) exceeds the \(exampleCount) examples and dropLast would skip them all")
            }
            guard epoch >= 0, epoch <= MinibatchSampler.maxEpoch, position >= 0, position <= exampleCount else {
                throw FWError.invalidArgument("MinibatchSampler: epoch \(epoch), position \(position) out of range for \(exampleCount) examples")
            }
        }
    }

    /// The most examples a sampler shuffles (its permutation is held in memory).
    public static let maxExamples = Int(Int32.max)
    /// The highest epoch a state may be at (far beyond any run; keeps `epoch + 1` exact).
    public static let maxEpoch = 1 << 53

    /// The resumable state.
    public private(set) var state: State
    /// The current epoch's permutation of `0..<exampleCount`.
    public private(set) var permutation: [Int]
    /// The generator after this epoch's shuffle (it draws the next epoch).
    private var rng: SeededRNG

    /// A sampler at the start of epoch 0, shuffling with a generator seeded by `seed`.
    public init(exampleCount: Int, batchSize: Int, seed: UInt64, dropLast: Bool = true) throws {
        try self.init(restoring: State(exampleCount: exampleCount, batchSize: batchSize, dropLast: dropLast,
                                       epoch: 0, position: 0, epochStart: SeededRNG(seed: seed)))
    }

    /// A sampler resumed from `state` (as saved from `state` of another).
    /// Throws `FWError.invalidArgument` for an inconsistent state.
    public init(restoring state: State) throws {
        try state.validate()
        self.state = state
        self.rng = state.epochStart
        self.permutation = []
        self.permutation = MinibatchSampler.shuffle(state.exampleCount, &rng)
    }

    /// Number of batches in one epoch.
    public var batchesPerEpoch: Int {
        state.dropLast ? state.exampleCount / state.batchSize
            : (state.exampleCount + state.batchSize - 1) / state.batchSize
    }

    /// The next batch of example indices (moving to a new, reshuffled epoch when this one is used up).
    public mutating func nextBatch() -> [Int] {
        let remaining = state.exampleCount - state.position
        if remaining == 0 || (state.dropLast && remaining < state.batchSize) {
            startNextEpoch()
        }
        let start = state.position
        let end = min(start + state.batchSize, state.exampleCount)
        state.position = end
        return Array(permutation[start..<end])
    }

    private mutating func startNextEpoch() {
        state.epoch += 1
        state.position = 0
        state.epochStart = rng
        permutation = MinibatchSampler.shuffle(state.exampleCount, &rng)
    }

    /// Fisher-Yates over `0..<n`, drawing bounded integers by rejection (no
    /// modulo bias, and independent of the standard library's algorithms, so
    /// the order is the same on every toolchain).
    static func shuffle(_ n: Int, _ rng: inout SeededRNG) -> [Int] {
        var p = Array(0..<n)
        var i = n - 1
        while i > 0 {
            let j = Int(uniformBelow(UInt64(i + 1), &rng))
            p.swapAt(i, j)
            i -= 1
        }
        return p
    }

    /// Uniform in `0..<bound` (`bound > 0`): rejects the `2^64 mod bound`
    /// smallest 64-bit draws, so that the rest cover `0..<bound` equally often.
    public static func uniformBelow(_ bound: UInt64, _ rng: inout SeededRNG) -> UInt64 {
        precondition(bound > 0, "uniformBelow: bound must be positive")
        let threshold = (0 &- bound) % bound   // 2^64 mod bound
        while true {
            let x = rng.next()
            if x >= threshold { return x % bound }
        }
    }
}
