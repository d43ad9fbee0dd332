import FWCore

/// The synthetic retrieval task of Schlag, Irie & Schmidhuber 2021 (section 6.1).
///
/// S keys and S values (both numbered `0..<S`). A sequence is L key-value
/// pairs followed by one query key; the target is the value stored with the
/// query's key, at its *last* occurrence.
///
/// * Setting 1 (capacity): keys and values drawn without replacement, L = S
///   (every key appears once, the values are a permutation).
/// * Setting 2 (updates): keys and values drawn with replacement, L = 2S, so
///   a key may be written several times and only its last value counts.
///
/// Choices: `Sources/FWModels/Tasks/SyntheticRetrieval.md`.
public struct SyntheticRetrievalTask: Sendable, Equatable {
    /// Number of distinct keys, and of distinct values, S.
    public let size: Int
    /// Pairs per sequence, L.
    public let length: Int
    /// Draw keys and values with replacement (setting 2).
    public let replacement: Bool

    /// Setting 1 (`replacement == false`, L = S) or 2 (`true`, L = 2S) at size S.
    public init(setting: Int, size: Int) throws {
        guard setting == 1 || setting == 2 else {
            throw FWError.invalidArgument("--setting must be 1 (capacity) or 2 (updates), got \(setting)")
        }
        try self.init(size: size, length: setting == 1 ? size : 2 * size, replacement: setting == 2)
    }

    /// Any S, L and sampling; without replacement L must not exceed S.
    public init(size: Int, length: Int, replacement: Bool) throws {
        guard size >= 1 else { throw FWError.invalidArgument("S (keys) must be >= 1, got \(size)") }
        guard length >= 1 else { throw FWError.invalidArgument("L (pairs per sequence) must be >= 1, got \(length)") }
        guard replacement || length <= size else {
            throw FWError.invalidArgument("without replacement a sequence of \(length) pairs needs at least \(length) keys, got S = \(size)")
        }
        self.size = size
        self.length = length
        self.replacement = replacement
    }

    /// One draw of `count` sequences, each with its queries.
    public struct Batch: Sendable, Equatable {
        /// Keys `[count, L]` in `0..<S`.
        public var keys: [Int32]
        /// Values `[count, L]` in `0..<S`.
        public var values: [Int32]
        /// For sequence i, its queries are `queries[queryStart[i]..<queryStart[i+1]]`.
        public var queryStart: [Int]
        /// Query keys, all sequences' queries in order.
        public var queries: [Int32]
        /// The value each query must retrieve (same order as `queries`).
        public var targets: [Int32]

        /// Number of sequences.
        public var count: Int { queryStart.count - 1 }
        /// Number of queries over all sequences.
        public var queryCount: Int { queries.count }
    }

    /// `count` training sequences with one query each: a key chosen
    /// uniformly among the sequence's L positions (so a key written twice is
    /// twice as likely), reading the value of that key's last occurrence.
    public func trainingBatch(count: Int, rng: inout SeededRNG) -> Batch {
        var batch = Batch(keys: [], values: [], queryStart: [0], queries: [], targets: [])
        batch.keys.reserveCapacity(count * length)
        batch.values.reserveCapacity(count * length)
        for _ in 0..<count {
            let (k, v) = drawSequence(&rng)
            batch.keys += k
            batch.values += v
            let position = Int(MinibatchSampler.uniformBelow(UInt64(length), &rng))
            let key = k[position]
            batch.queries.append(key)
            batch.targets.append(v[Self.lastOccurrence(of: key, in: k)])
            batch.queryStart.append(batch.queries.count)
        }
        return batch
    }

    /// `count` evaluation sequences, each queried with every distinct key it
    /// contains (at most `maxQueries`, in order of first appearance), as in
    /// the paper's `get_all_queries`.
    public func evaluationBatch(count: Int, maxQueries: Int = 200, rng: inout SeededRNG) -> Batch {
        var batch = Batch(keys: [], values: [], queryStart: [0], queries: [], targets: [])
        for _ in 0..<count {
            let (k, v) = drawSequence(&rng)
            batch.keys += k
            batch.values += v
            var seen = Set<Int32>()
            for key in k where !seen.contains(key) && seen.count < maxQueries {
                seen.insert(key)
                batch.queries.append(key)
                batch.targets.append(v[Self.lastOccurrence(of: key, in: k)])
            }
            batch.queryStart.append(batch.queries.count)
        }
        return batch
    }

    /// Keys and values of one sequence.
    func drawSequence(_ rng: inout SeededRNG) -> ([Int32], [Int32]) {
        if replacement {
            let k = (0..<length).map { _ in Int32(MinibatchSampler.uniformBelow(UInt64(size), &rng)) }
            let v = (0..<length).map { _ in Int32(MinibatchSampler.uniformBelow(UInt64(size), &rng)) }
            return (k, v)
        }
        return (Self.distinct(length, of: size, &rng), Self.distinct(length, of: size, &rng))
    }

    /// `n` distinct numbers from `0..<range` in random order (partial Fisher-Yates).
    static func distinct(_ n: Int, of range: Int, _ rng: inout SeededRNG) -> [Int32] {
        var p = (0..<range).map { Int32($0) }
        for i in 0..<n {
            let j = i + Int(MinibatchSampler.uniformBelow(UInt64(range - i), &rng))
            p.swapAt(i, j)
        }
        return Array(p[0..<n])
    }

    /// Index of the last occurrence of `key` in `keys` (which contains it).
    static func lastOccurrence(of key: Int32, in keys: [Int32]) -> Int {
        keys.lastIndex(of: key)!
    }
}
