import FWCore

/// The associative retrieval task of Ba et al. 2016, section 4.1.
///
/// A sequence is K key-value pairs — keys distinct lower-case letters, values
/// digits — then `??`, then one of the keys; the target is that key's value:
///
///     c9k8j3f1??c  ->  9
///
/// Tokens: `a`..`z` are 0..25, `0`..`9` are 26..35, `?` is 36 (37 symbols);
/// a sequence has `2K + 3` tokens and the target is the digit 0..9.
public struct AssociativeRetrieval: Sendable {
    /// Number of input symbols.
    public static let vocabularySize = 37
    /// Number of classes (digits).
    public static let classCount = 10
    /// The `?` token.
    public static let questionMark = 36

    /// Key-value pairs per sequence.
    public let pairs: Int
    /// Tokens per sequence: `2 * pairs + 3`.
    public var length: Int { 2 * pairs + 3 }

    /// One split: `tokens` `[count, length]` row-major, `targets` `[count]`.
    public struct Split: Sendable {
        public var tokens: [Int32]
        public var targets: [Int32]
        public var count: Int { targets.count }
    }

    public init(pairs: Int = 8) throws {
        guard (1...26).contains(pairs) else {
            throw FWError.invalidArgument("associative retrieval: pairs must be 1...26 (distinct letters), got \(pairs)")
        }
        self.pairs = pairs
    }

    /// Draws `count` sequences reproducibly from `rng`.
    public func generate(count: Int, rng: inout SeededRNG) -> Split {
        var tokens = [Int32](repeating: 0, count: count * length)
        var targets = [Int32](repeating: 0, count: count)
        var letters = Array(0..<26)
        for n in 0..<count {
            // K distinct keys: a partial Fisher-Yates shuffle of the alphabet.
            for i in 0..<pairs {
                let j = i + Int(rng.next() % UInt64(26 - i))
                letters.swapAt(i, j)
            }
            var values = [Int](repeating: 0, count: pairs)
            for i in 0..<pairs {
                values[i] = Int(rng.next() % 10)
                tokens[n * length + 2 * i] = Int32(letters[i])
                tokens[n * length + 2 * i + 1] = Int32(26 + values[i])
            }
            let query = Int(rng.next() % UInt64(pairs))
            tokens[n * length + 2 * pairs] = Int32(Self.questionMark)
            tokens[n * length + 2 * pairs + 1] = Int32(Self.questionMark)
            tokens[n * length + 2 * pairs + 2] = Int32(letters[query])
            targets[n] = Int32(values[query])
        }
        return Split(tokens: tokens, targets: targets)
    }

    /// The paper's three splits (100,000 / 10,000 / 20,000 by default), each
    /// from its own stream derived from `seed`, so a split does not change
    /// when another's size does.
    public func splits(seed: UInt64, train: Int = 100_000, validation: Int = 10_000, test: Int = 20_000)
        -> (train: Split, validation: Split, test: Split) {
        var r1 = SeededRNG(seed: seed &* 3 &+ 1), r2 = SeededRNG(seed: seed &* 3 &+ 2), r3 = SeededRNG(seed: seed &* 3 &+ 3)
        return (generate(count: train, rng: &r1), generate(count: validation, rng: &r2), generate(count: test, rng: &r3))
    }

    /// Renders a sequence as text, e.g. `c9k8j3f1??c`.
    public static func render(_ tokens: ArraySlice<Int32>) -> String {
        String(tokens.map { t -> Character in
            switch t {
            case 0..<26: return Character(UnicodeScalar(UInt8(97 + t)))
            case 26..<36: return Character(UnicodeScalar(UInt8(48 + t - 26)))
            default: return "?"
            }
        })
    }
}
