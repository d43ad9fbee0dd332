import FWCore

/// The training segments of a character-level language model: each step,
/// `batchSize` rows of `context` input bytes and their next-byte targets
/// from one training text.
///
/// * `truncated`: each row starts at an offset drawn uniformly from
///   `0...(n - context - 1)` (with replacement), a fresh window every step.
/// * `carry` and `streams`: the text is cut into `batchSize` contiguous streams of
///   `n / batchSize` bytes; row b reads stream b segment after segment, so a
///   layer's fast weights at the end of one step are the right start of the
///   next. When a stream has no whole segment left, every stream starts
///   again at its beginning (`wrapped` says so: the carried state must be
///   reset).
///
/// The whole state (`State`: the generator or the position, and the count
/// of passes) is a few integers, saved in checkpoints, so a resumed run
/// draws exactly the segments an uninterrupted one would.
public struct ByteWindowSampler: Sendable {
    /// What a checkpoint stores.
    public struct State: Codable, Equatable, Sendable {
        /// truncated: the generator's four words, `"w0,w1,w2,w3"`.
        public var rng: String
        /// carry: the offset of the next segment within every stream.
        public var position: Int
        /// carry: how many times the streams started over.
        public var passes: Int
    }

    /// One step's rows.
    public struct Batch: Sendable {
        /// `[B, T]` input bytes as token ids, row-major.
        public var tokens: [Int32]
        /// `[B, T]` the byte after each input byte.
        public var targets: [Int32]
        /// carry: the streams started over before this batch (reset the carried state).
        public var wrapped: Bool
    }

    public let mode: LanguageModelRunConfig.ContextMode
    public let batchSize: Int
    public let context: Int
    public private(set) var state: State
    private var rng: SeededRNG

    /// A sampler over a text of `textLength` bytes.
    /// - Throws: `FWError.invalidArgument` when the text is too short for one
    ///   segment (truncated: `context + 1` bytes; carry: `batchSize` streams of that).
    public init(mode: LanguageModelRunConfig.ContextMode, textLength n: Int, batchSize: Int, context: Int, seed: UInt64) throws {
        let needed = mode.readsStreams ? batchSize * (context + 1) : context + 1
        guard n >= needed else {
            throw FWError.invalidArgument("the training text has \(n) bytes; \(mode.rawValue) training at batch \(batchSize) x context \(context) needs at least \(needed)")
        }
        self.mode = mode
        self.batchSize = batchSize
        self.context = context
        rng = SeededRNG(seed: seed)
        state = State(rng: Self.words(rng), position: 0, passes: 0)
    }

    /// Restores a saved `state` (the other arguments as at the start).
    public init(mode: LanguageModelRunConfig.ContextMode, textLength: Int, batchSize: Int, context: Int,
                restoring saved: State) throws {
        try self.init(mode: mode, textLength: textLength, batchSize: batchSize, context: context, seed: 0)
        let parts = saved.rng.split(separator: ",").compactMap { UInt64($0) }
        guard parts.count == 4, saved.position >= 0, saved.passes >= 0, saved.position <= textLength else {
            throw FWError.invalidArgument("window sampler state is malformed: \(saved)")
        }
        rng = SeededRNG(state: (parts[0], parts[1], parts[2], parts[3]))
        state = saved
    }

    /// The next step's rows from `text` (the same text every call).
    public mutating func next(_ text: [UInt8]) -> Batch {
        let (B, T) = (batchSize, context)
        var tokens = [Int32](repeating: 0, count: B * T)
        var targets = [Int32](repeating: 0, count: B * T)
        var wrapped = false
        var starts: [Int] = []
        switch mode {
        case .truncated:
            let span = UInt64(text.count - T)   // offsets 0...(n - T - 1)
            for _ in 0..<B { starts.append(Int(MinibatchSampler.uniformBelow(span, &rng))) }
            state.rng = Self.words(rng)
        case .carry, .streams:
            let streamLength = text.count / B
            if state.position + T + 1 > streamLength {
                state.position = 0
                state.passes += 1
                wrapped = true
            }
            starts = (0..<B).map { $0 * streamLength + state.position }
            state.position += T
        }
        for (b, s) in starts.enumerated() {
            for t in 0..<T {
                tokens[b * T + t] = Int32(text[s + t])
                targets[b * T + t] = Int32(text[s + t + 1])
            }
        }
        return Batch(tokens: tokens, targets: targets, wrapped: wrapped)
    }

    static func words(_ r: SeededRNG) -> String { "\(r.state.0),\(r.state.1),\(r.state.2),\(r.state.3)" }
}
