import FWCore
import Foundation

extension TextCorpus {
    /// Reads the works of a corpus a user brings (`fwp data text --text`):
    ///
    /// * a **folder**: its `*.txt` files (not those whose name starts with
    ///   `.`, not sub-folders, not recursively), sorted by the bytes of their
    ///   names; each is a work named by its file name. Empty files are
    ///   skipped;
    /// * a **file**: one work, named by its file name.
    ///
    /// Every work must be UTF-8. Throws `FWError.file` naming the path: no
    /// such path, unreadable, no (non-empty) `*.txt` files, an empty file,
    /// or invalid UTF-8 (with the offset of the first bad byte); and
    /// `FWError.invalidArgument` before reading anything when splitting the
    /// text would need more than the machine's memory (`MemoryBudget`).
    public static func readWorks(at path: String) throws -> [TextWork] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw FWError.file(path: path, reason: "no such file or folder")
        }
        guard isDir.boolValue else {
            try checkMemory([path], corpus: path)
            let work = try readWork(path, name: URL(fileURLWithPath: path).lastPathComponent)
            guard !work.bytes.isEmpty else { throw FWError.file(path: path, reason: "is empty: there is no text to split") }
            return [work]
        }
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw FWError.file(path: path, reason: "cannot list the folder")
        }
        let names = entries.filter { $0.hasSuffix(".txt") && !$0.hasPrefix(".") }
            .filter { name in
                var d: ObjCBool = false
                return FileManager.default.fileExists(atPath: Self.path(path, name), isDirectory: &d) && !d.boolValue
            }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        guard !names.isEmpty else { throw FWError.file(path: path, reason: "holds no *.txt files: the corpus is empty") }
        try checkMemory(names.map { Self.path(path, $0) }, corpus: path)
        let works = try names.map { try readWork(Self.path(path, $0), name: $0) }.filter { !$0.bytes.isEmpty }
        guard !works.isEmpty else { throw FWError.file(path: path, reason: "its \(names.count) *.txt files are all empty: the corpus is empty") }
        return works
    }

    /// Refuses a corpus whose files hold more text than memory can split:
    /// about 4 copies are alive at once (the works, the joined text, the
    /// split files, the bytes being written).
    static func checkMemory(_ files: [String], corpus: String) throws {
        let total = files.reduce(0.0) { sum, file in
            sum + Double((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int ?? 0)
        }
        try MemoryBudget.check(4 * total, "splitting \(corpus) (\(Int(total)) bytes of text)")
    }

    /// Reads one file as a work named `name`, checking that it is UTF-8.
    public static func readWork(_ path: String, name: String) throws -> TextWork {
        let bytes = try AtomicFile.read(path)
        try checkUTF8(bytes, path: path)
        return TextWork(name: name, bytes: bytes)
    }

    /// Throws `FWError.file` naming `path`, the offset and value of the
    /// first byte that is not well-formed UTF-8.
    public static func checkUTF8(_ bytes: [UInt8], path: String) throws {
        if let i = UTF8Validation.firstInvalidOffset(bytes) {
            let hex = String(bytes[i], radix: 16, uppercase: true)
            throw FWError.file(path: path, reason: "not UTF-8: invalid byte 0x\(hex.count == 1 ? "0" : "")\(hex) at byte offset \(i)")
        }
    }
}
