import FWCore
import Foundation

extension TextCorpus {
    /// The manifest's file name in a corpus folder.
    public static let manifestName = "manifest.json"
    /// Every file a corpus folder holds: the three splits, then the manifest.
    public static let fileNames = TextSplit.allCases.map(\.fileName) + [manifestName]

    /// Stages the four files of the layout into `folder` (made if missing)
    /// in `transaction`; they appear when it commits.
    public func stage(into folder: String, _ transaction: OutputTransaction) throws {
        try transaction.makeFolder(folder)
        for split in TextSplit.allCases {
            try transaction.stage(self[split].bytes, to: Self.path(folder, split.fileName))
        }
        try transaction.stage(TextCorpusManifest(self).encoded(), to: Self.path(folder, Self.manifestName))
    }

    /// Writes `train.txt`, `valid.txt`, `test.txt` and `manifest.json` into
    /// `folder`, all or nothing (`OutputTransaction`).
    public func write(to folder: String) throws {
        try OutputTransaction.run { try stage(into: folder, $0) }
    }

    /// Reads a corpus folder for training: the manifest and the three
    /// splits as bytes, each split checked against the manifest's size and
    /// SHA-256. Throws `FWError.file` naming the file that is missing,
    /// malformed, or does not match.
    public static func load(_ folder: String) throws -> TextCorpus {
        let manifestPath = path(folder, manifestName)
        let manifest = try TextCorpusManifest.decode(try AtomicFile.read(manifestPath), path: manifestPath)
        var splits: [TextSplit: TextCorpusSplit] = [:]
        for split in TextSplit.allCases {
            let p = path(folder, split.fileName)
            let bytes = try AtomicFile.read(p)
            let entry = manifest[split]
            guard bytes.count == entry.bytes else {
                throw FWError.file(path: p, reason: "\(bytes.count) bytes, but \(manifestName) says \(entry.bytes)")
            }
            let hash = SHA256.hex(bytes)
            guard hash == entry.sha256 else {
                throw FWError.file(path: p, reason: "sha256 \(hash) does not match \(manifestName) (\(entry.sha256)): the file was changed")
            }
            splits[split] = TextCorpusSplit(works: entry.works, bytes: bytes)
        }
        return TextCorpus(source: manifest.source, train: splits[.train]!, valid: splits[.valid]!, test: splits[.test]!)
    }

    /// `folder/name` (one slash between them).
    public static func path(_ folder: String, _ name: String) -> String {
        (folder as NSString).appendingPathComponent(name)
    }
}
