import Foundation
import FWCore

/// Everything that defines one training run, as one Codable value: the
/// retrieval, synthetic and language-model runs each have one. A run config
///
/// * is stored in every checkpoint and summary, so `fwp eval` and
///   `--resume` rebuild the run from the file alone;
/// * travels as a file (`RunConfigFile`): `fwp reproduce` writes each row's
///   config and its child process reads it with `--config run.json`, so no
///   field is ever dropped by re-spelling it as options;
/// * uses typed enums for its choices, so a bad value is a decoding error
///   naming the field.
///
/// The command line maps its options onto the fields in one place per run
/// kind (`RetrievalRunOptions`, `SyntheticRunOptions`, ...).
public protocol RunConfig: Codable, Equatable, Sendable {
    /// The name of the run kind in a config file (`"retrieval"`, `"synthetic"`, ...).
    static var kind: String { get }
    /// Throws `FWError.invalidArgument` naming the first bad field.
    func validate() throws
}

/// A run config as a file: `{"kind": "<kind>", "config": {...}}`, pretty
/// and with sorted keys, so that a person can read and edit it.
public enum RunConfigFile {
    /// The file's bytes.
    public static func encode<C: RunConfig>(_ config: C) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try! encoder.encode(Envelope(kind: C.kind, config: config))
        return [UInt8](data) + [UInt8(ascii: "\n")]
    }

    /// Writes `config` to `path` atomically.
    public static func write<C: RunConfig>(_ config: C, to path: String) throws {
        try AtomicFile.write(encode(config), to: path)
    }

    /// Reads a `C` from `path`: the kind must be `C.kind`, every key must be
    /// one of `C`'s fields (a misspelt key is an error, not a silent
    /// default), and the config must validate. Errors are `FWError.file`
    /// naming the file.
    public static func read<C: RunConfig>(_ type: C.Type, from path: String) throws -> C {
        try decode(type, from: AtomicFile.read(path), name: path)
    }

    /// `read` on bytes; `name` appears in errors.
    public static func decode<C: RunConfig>(_ type: C.Type, from bytes: [UInt8], name: String) throws -> C {
        func fail(_ reason: String) -> FWError { .file(path: name, reason: reason) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw fail("not a run config (expected a JSON object {\"kind\": ..., \"config\": {...}})")
        }
        guard let kind = object["kind"] as? String else { throw fail("missing \"kind\"") }
        guard kind == C.kind else { throw fail("is a \(kind) run config, not a \(C.kind) one") }
        if let extra = Set(object.keys).subtracting(["kind", "config"]).sorted().first {
            throw fail("unknown key '\(extra)'")
        }
        guard let fields = object["config"] as? [String: Any] else { throw fail("missing \"config\" object") }
        let config: C
        do {
            config = try JSONDecoder().decode(Envelope<C>.self, from: Data(bytes)).config
        } catch {
            throw fail("config: \(describe(error))")
        }
        // Every key must be a field: encode back and compare (nil fields are omitted, so allow null).
        let known = (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any]).map { Set($0.keys) } ?? []
        if let unknown = fields.keys.filter({ !known.contains($0) && !(fields[$0] is NSNull) }).sorted().first {
            throw fail("config: unknown field '\(unknown)'")
        }
        do { try config.validate() } catch let error as FWError { throw fail("config: \(error)") }
        return config
    }

    struct Envelope<C: Codable>: Codable {
        var kind: String
        var config: C
    }

    /// A decoding error as a short phrase naming the field.
    public static func describe(_ error: Error) -> String {
        switch error {
        case let DecodingError.keyNotFound(key, ctx):
            let path = (ctx.codingPath.map(\.stringValue) + [key.stringValue]).filter { $0 != "config" }
            return "missing '\(path.joined(separator: "."))'"
        case let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx),
             let DecodingError.dataCorrupted(ctx):
            let path = ctx.codingPath.map(\.stringValue).filter { $0 != "config" }.joined(separator: ".")
            return path.isEmpty ? "not JSON" : "bad value at '\(path)'"
        default: return "\(error)"
        }
    }
}

/// A checkpoint's `config` metadata: a run config and its trainer's progress
/// as one JSON object `{"run": ..., "progress": ...}`.
public protocol CheckpointConfig: Codable, Equatable, Sendable {
    associatedtype Run: RunConfig
    var run: Run { get }
}

extension CheckpointConfig {
    /// Parses a checkpoint's config string and validates its run; `path`
    /// names the file in errors (`FWError.file`).
    public static func decode(_ text: String, path: String) throws -> Self {
        do {
            let c = try JSONDecoder().decode(Self.self, from: Data(text.utf8))
            try c.run.validate()
            return c
        } catch let error as FWError {
            throw FWError.file(path: path, reason: "metadata 'config': \(error)")
        } catch {
            throw FWError.file(path: path, reason: "metadata 'config' is not a \(Run.kind) run configuration (\(RunConfigFile.describe(error)))")
        }
    }

    /// Compact JSON (sorted keys), as written into a checkpoint.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }
}
