import FastWeights
import Foundation

/// The `--out` folder of `fwp data`: checked before any work (or download),
/// written all or nothing, never silently over an earlier corpus.
enum DataOutput {
    /// Throws unless `folder` can take a corpus: an existing writable folder
    /// or a path whose nearest existing parent is one; none of the four
    /// files may be a folder; and a folder that already holds any of them
    /// (an earlier corpus) is refused unless `force`. Nothing is written.
    static func check(_ folder: String, force: Bool) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) else {
            try OutputTransaction.checkDestination(TextCorpus.path(folder, TextCorpus.manifestName), createFolder: true)
            return
        }
        guard isDir.boolValue else { throw FWError.file(path: folder, reason: "--out exists and is not a folder") }
        guard access(folder, W_OK) == 0 else { throw FWError.file(path: folder, reason: "--out is not writable") }
        var present: [String] = []
        for name in TextCorpus.fileNames {
            let p = TextCorpus.path(folder, name)
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else { continue }
            if isDir.boolValue {
                throw FWError.file(path: p, reason: "is a folder where fwp data writes a file; move it away (fwp never removes it)")
            }
            present.append(name)
        }
        if !force, !present.isEmpty {
            throw FWError.file(path: folder, reason: "already holds a corpus (\(present.joined(separator: ", "))); use --force to replace it once the new one is complete, or another --out")
        }
    }

    /// Writes `corpus` into `folder` (all four files or none) and prints the
    /// split sizes: one progress line per split on stderr unless `quiet`,
    /// then the summary line on stdout.
    static func write(_ corpus: TextCorpus, to folder: String, quiet: Bool) throws {
        if !quiet {
            for split in TextSplit.allCases {
                let s = corpus[split]
                printError("\(split.rawValue): \(worksCount(s.works.count)), \(s.bytes.count) bytes")
            }
        }
        try corpus.write(to: folder)
        let sizes = TextSplit.allCases.map { "\($0.rawValue) \(corpus[$0].bytes.count) bytes" }
        print("wrote \(folder): " + sizes.joined(separator: ", "))
    }

    /// "1 work", "38 works".
    static func worksCount(_ n: Int) -> String { n == 1 ? "1 work" : "\(n) works" }

    /// A new private scratch folder in the system's temporary folder; the
    /// caller removes it (`removeScratch`).
    static func makeScratch() throws -> String {
        let path = NSTemporaryDirectory() + "fwp-data-\(getpid())-\(UUID().uuidString)"
        guard mkdir(path, 0o700) == 0 else {
            throw FWError.file(path: path, reason: "cannot create a scratch folder: \(String(cString: strerror(errno)))")
        }
        return path
    }

    static func removeScratch(_ path: String) { try? FileManager.default.removeItem(atPath: path) }
}
