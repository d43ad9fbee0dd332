import Foundation
import FastWeights

/// Small texts with structure to learn, for language-model tests (never the network).
public enum GeneratedCorpus {
    /// `lines` lines like `3: to be, to be!`, words drawn from `seed`.
    public static func text(_ lines: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededRNG(seed: seed)
        var text = ""
        for i in 0..<lines {
            let word = ["to be", "or not", "that is", "the question"][Int(rng.next() % 4)]
            text += "\(i % 10): \(word), \(word)!\n"
        }
        return Array(text.utf8)
    }

    /// A corpus of `works` such works, split by `fwp data text`'s rule, written to `folder`.
    public static func write(works: Int = 6, lines: Int = 40, to folder: String) throws {
        let all = (0..<works).map { TextWork(name: "work\($0)", bytes: text(lines, seed: UInt64($0))) }
        try TextCorpus.split(works: all, source: "generated").write(to: folder)
    }
}
