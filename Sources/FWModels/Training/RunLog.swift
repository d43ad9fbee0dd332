import Foundation
import FWCore

/// A run's records on disk: rows appended to a CSV file as training goes,
/// and a JSON summary written atomically at the end (or at checkpoints).
///
/// The CSV file starts with a header of `columns`. Opening an existing file
/// with the same header appends to it (a resumed run continues its log);
/// a different header is an error rather than a silently mixed file.
public final class RunLog {
    /// Path of the CSV file.
    public let csvPath: String
    /// The column names, in order.
    public let columns: [String]
    private let handle: FileHandle

    /// Opens (or creates, with a header row) the CSV file at `csvPath`.
    /// Throws `FWError.file` naming it when it cannot be written or its
    /// header differs from `columns`.
    public init(csvPath: String, columns: [String]) throws {
        precondition(!columns.isEmpty, "RunLog: no columns")
        self.csvPath = csvPath
        self.columns = columns
        let header = RunLog.csvLine(columns)
        let fm = FileManager.default
        if fm.fileExists(atPath: csvPath), let existing = fm.contents(atPath: csvPath), !existing.isEmpty {
            let firstLine = String(decoding: existing.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self) + "\n"
            guard firstLine == header else {
                throw FWError.file(path: csvPath, reason: "existing log has columns '\(firstLine.dropLast())', this run writes '\(header.dropLast())'")
            }
            if existing.last != UInt8(ascii: "\n") {
                // A row cut short by a crash: end it so the next row starts on its own line.
                try RunLog.append(Data("\n".utf8), to: csvPath)
            }
        } else if !fm.createFile(atPath: csvPath, contents: Data(header.utf8)) {
            throw FWError.file(path: csvPath, reason: "cannot create")
        }
        guard let h = FileHandle(forWritingAtPath: csvPath) else {
            throw FWError.file(path: csvPath, reason: "cannot open for writing")
        }
        handle = h
    }

    deinit { try? handle.close() }

    /// Appends one row of numbers (one per column). Integral values print
    /// without a fraction, others with up to 9 significant digits.
    public func append(_ values: [Double]) throws {
        try append(fields: values.map(RunLog.number))
    }

    /// Appends one row of text fields (one per column), CSV-quoted where needed.
    public func append(fields: [String]) throws {
        guard fields.count == columns.count else {
            throw FWError.invalidArgument("RunLog \(csvPath): \(fields.count) values for \(columns.count) columns")
        }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(RunLog.csvLine(fields).utf8))
        } catch {
            throw FWError.file(path: csvPath, reason: "cannot append: \(error.localizedDescription)")
        }
    }

    /// Writes `summary` (JSON-compatible values: strings, numbers, booleans,
    /// arrays, dictionaries) to `path` as pretty, key-sorted JSON, atomically.
    /// Non-finite numbers are not JSON: pass them as strings.
    public static func writeSummary(_ summary: [String: Any], to path: String) throws {
        guard JSONSerialization.isValidJSONObject(summary) else {
            throw FWError.invalidArgument("RunLog summary for \(path) is not JSON-compatible (non-finite number or unsupported type?)")
        }
        let data: Data
        do {
            data = try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys])
        } catch {
            throw FWError.invalidArgument("RunLog summary for \(path): \(error.localizedDescription)")
        }
        try AtomicFile.write([UInt8](data) + [UInt8(ascii: "\n")], to: path)
    }

    static func number(_ x: Double) -> String {
        if x.isFinite, x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        if x.isNaN { return "nan" }
        if x.isInfinite { return x > 0 ? "inf" : "-inf" }
        return String(format: "%.9g", x)
    }

    static func csvLine(_ fields: [String]) -> String {
        fields.map { f in
            if f.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
                return "\"" + f.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            }
            return f
        }.joined(separator: ",") + "\n"
    }

    private static func append(_ data: Data, to path: String) throws {
        guard let h = FileHandle(forWritingAtPath: path) else { throw FWError.file(path: path, reason: "cannot open for writing") }
        defer { try? h.close() }
        do {
            try h.seekToEnd()
            try h.write(contentsOf: data)
        } catch {
            throw FWError.file(path: path, reason: "cannot append: \(error.localizedDescription)")
        }
    }
}
