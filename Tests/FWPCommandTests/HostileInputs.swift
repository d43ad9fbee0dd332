import Foundation
import FWTestSupport

// The seeded generators of hostile `fwp` invocations that
// `HostileInputFuzzTests` runs: malformed `.npy` inputs, output folders in
// the way, extreme options, edited checkpoints and run folders that hold a
// previous run. Every case is built from its own `SeededRNG(seed:)` (the
// master seed mixed with the case's index; the checkpoint edits' picks from
// the master seed), so a case is the same on every run and can be re-run
// alone (`FWP_FUZZ_CASES=12,40`).

// MARK: - what a case is

/// One hostile invocation: the files to set up in its own scratch folder,
/// the command line (run in that folder), and what it must do.
struct FuzzCase: Sendable {
    var index = 0
    var seed: UInt64 = 0
    /// The family of the brief (`npy fwp`, `npy fast-rnn`, `out folder`, ...).
    var family: String
    /// The mutation, without its random details: the grouping key of the summary.
    var kind: String
    /// The mutation with its details (which file, which offset, which value).
    var detail: String
    var args: [String]
    var env: [String: String] = [:]
    var expect: Expect = .reject
    /// What the stderr line must name (for errors caused by a file).
    var mention: Mention = .none
    /// Writes the case's inputs into its folder (`setup.dir`).
    var prepare: @Sendable (CaseSetup) throws -> Void = { _ in }
}

enum Expect: Sendable {
    /// Exit 2 with one `fwp: error: ` line, and the case's folder unchanged.
    case reject
    /// As `reject`, but exit 0 is allowed when the outputs are then complete
    /// (a mutation that may legitimately still be valid input).
    case rejectOrComplete(Completion)
    /// A control: the valid invocation must succeed with complete outputs.
    case succeed(Completion)
}

/// What "complete outputs" means for an exit status 0.
struct Completion: Sendable {
    /// Paths (relative to the case folder) that must then be non-empty regular files.
    var files: [String]
    /// Those ending in `.npy` must also read back as `.npy`.
    var stdout: StdoutCheck = .any
}

enum StdoutCheck: Sendable { case any, nonEmpty, jsonObject }

enum Mention: Sendable {
    case none
    /// The stderr line must contain one of these.
    case anyOf([String])
    /// It must name the file and the element: its flat index or its multi-index.
    case fileAndIndex(file: String, flat: Int, multi: [Int])
}

/// What `prepare` gets: the case's folder and the shared base run.
struct CaseSetup: Sendable {
    let dir: String
    /// The folder of the tiny retrieval run trained once per test class.
    let base: String?
    /// Runs `fwp` (limited, like the cases) in `dir` for a set-up step.
    let fwp: @Sendable ([String]) -> LimitedRun

    func path(_ rel: String) -> String { dir + "/" + rel }

    func write(_ rel: String, _ bytes: [UInt8]) throws {
        let p = path(rel)
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: p, contents: Data(bytes)) else {
            throw SetupError("cannot write \(rel)")
        }
    }

    func mkdir(_ rel: String) throws {
        try FileManager.default.createDirectory(atPath: path(rel), withIntermediateDirectories: true)
    }

    func copy(_ from: String, to rel: String) throws {
        try FileManager.default.copyItem(atPath: from, toPath: path(rel))
    }

    /// Runs a set-up step that must succeed.
    func mustRun(_ args: [String]) throws {
        let r = fwp(args)
        guard !r.timedOut, r.signal == nil, r.status == 0 else {
            throw SetupError("set-up step `fwp \(args.joined(separator: " "))` failed: \(r.describeStatus), \(r.stderrText.prefix(200))")
        }
    }
}

struct SetupError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// What one file of a case is.
enum FileSpec: Sendable {
    case bytes([UInt8])
    /// A directory in place of the file (with a file inside).
    case directory
    /// Not there at all.
    case absent
}

// MARK: - .npy bytes

enum NPYBytes {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    static func shapeText(_ dims: [String]) -> String {
        dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.joined(separator: ", ") + ")"
    }

    static func shapeText(_ dims: [Int]) -> String { shapeText(dims.map(String.init)) }

    /// The header dict `{'descr': ..., 'fortran_order': ..., 'shape': ..., }` as bytes.
    static func body(descr: String = "'<f4'", fortran: String = "False", shape: String, extra: [UInt8] = []) -> [UInt8] {
        Array("{'descr': \(descr), 'fortran_order': \(fortran), 'shape': \(shape), ".utf8) + extra + Array("}".utf8)
    }

    /// A whole file: magic, version, header length, the header padded with
    /// spaces and a newline to a multiple of 64, then `data`.
    static func file(body: [UInt8], major: UInt8 = 1, minor: UInt8 = 0, data: [UInt8]) -> [UInt8] {
        let prefix = (major == 2 || major == 3) ? 12 : 10
        var header = body
        let unpadded = prefix + header.count + 1
        header += [UInt8](repeating: 0x20, count: (64 - unpadded % 64) % 64) + [0x0A]
        var out = magic + [major, minor]
        let n = header.count
        out += [UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF)]
        if prefix == 12 { out += [UInt8((n >> 16) & 0xFF), UInt8((n >> 24) & 0xFF)] }
        return out + header + data
    }

    static func data(_ t: Tensor) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(4 * t.count)
        for x in t.storage {
            let b = x.bitPattern
            out += [UInt8(b & 0xFF), UInt8((b >> 8) & 0xFF), UInt8((b >> 16) & 0xFF), UInt8(b >> 24)]
        }
        return out
    }

    /// Offset of the data and the width of the header-length field of well-formed bytes.
    static func layout(_ bytes: [UInt8]) -> (lengthAt: Int, lengthWidth: Int, dataStart: Int) {
        let major = bytes[6]
        if major == 2 || major == 3 {
            let n = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            return (8, 4, 12 + n)
        }
        return (8, 2, 10 + (Int(bytes[8]) | Int(bytes[9]) << 8))
    }
}

// MARK: - the op fixtures

/// One input of an op: its option, path (relative to the case folder) and valid tensor.
struct OpInput: Sendable {
    var label: String
    var path: String
    var tensor: Tensor
}

/// A valid, tiny invocation of `fwp op fwp` or `fwp op fast-rnn`.
struct OpFixture: Sendable {
    var family: String
    var inputs: [OpInput]
    /// The command line, with `{label}` standing for each input's path.
    var template: [String]
    var outputs: [String]

    /// `fwp op fwp --rule delta --phi elu1 --norm sum` with B = 1, H = 2, T = 5, D = 3 and --dy.
    static let fwp: OpFixture = {
        var rng = SeededRNG(seed: 0xF1)
        let (B, H, T, D) = (1, 2, 5, 3)
        let inputs = [
            OpInput(label: "q", path: "q.npy", tensor: rng.normalTensor([B, H, T, D])),
            OpInput(label: "k", path: "k.npy", tensor: rng.normalTensor([B, H, T, D])),
            OpInput(label: "v", path: "v.npy", tensor: rng.normalTensor([B, H, T, D])),
            OpInput(label: "beta", path: "beta.npy", tensor: rng.uniformTensor([B, H, T])),
            OpInput(label: "dy", path: "dy.npy", tensor: rng.normalTensor([B, H, T, D])),
        ]
        return OpFixture(
            family: "npy fwp", inputs: inputs,
            template: ["op", "fwp", "--rule", "delta", "--phi", "elu1", "--norm", "sum", "--q", "{q}", "--k", "{k}",
                       "--v", "{v}", "--beta", "{beta}", "--dy", "{dy}", "--out", "out"],
            outputs: ["y", "state", "dq", "dk", "dv", "dstate", "dbeta"].map { "out/\($0).npy" })
    }()

    /// `fwp op fast-rnn` with N = 4, Din = 3, B = 1, T = 5, one inner step, ReLU, --dh.
    static let fastRNN: OpFixture = {
        var rng = SeededRNG(seed: 0xF2)
        let (N, Din, B, T) = (4, 3, 1, 5)
        let p = FastWeightsRNNParameters(hidden: N, input: Din, rng: &rng)
        var b = p.b, c = p.c
        for i in 0..<N { b.storage[i] = 0.1 * rng.normal(); c.storage[i] = 0.1 * rng.normal() }
        let inputs = [
            OpInput(label: "W", path: "p/W.npy", tensor: p.W),
            OpInput(label: "C", path: "p/C.npy", tensor: p.C),
            OpInput(label: "b", path: "p/b.npy", tensor: b),
            OpInput(label: "g", path: "p/g.npy", tensor: p.g),
            OpInput(label: "c", path: "p/c.npy", tensor: c),
            OpInput(label: "x", path: "x.npy", tensor: rng.normalTensor([B, T, Din])),
            OpInput(label: "dh", path: "dh.npy", tensor: rng.normalTensor([B, T, N])),
        ]
        return OpFixture(
            family: "npy fast-rnn", inputs: inputs,
            template: ["op", "fast-rnn", "--params", "p", "--x", "{x}", "--lambda", "0.95", "--eta", "0.5",
                       "--steps", "1", "--activation", "relu", "--dh", "{dh}", "--out", "out"],
            outputs: ["h", "dx", "dW", "dC", "db", "dg", "dc"].map { "out/\($0).npy" })
    }()

    var completion: Completion { Completion(files: outputs) }

    /// The command line with the inputs at `paths` (label -> path) and `--params` at `params`.
    func args(paths: [String: String] = [:], params: String = "p") -> [String] {
        template.enumerated().map { i, a in
            if a.hasPrefix("{"), a.hasSuffix("}") {
                let label = String(a.dropFirst().dropLast())
                return paths[label] ?? inputs.first { $0.label == label }!.path
            }
            return i > 0 && template[i - 1] == "--params" ? params : a
        }
    }

    /// Writes every input (`override` replaces or removes some, by path).
    func writer(_ override: [String: FileSpec], folderRename: (String, String)? = nil) -> @Sendable (CaseSetup) throws -> Void {
        let inputs = self.inputs
        return { setup in
            var files: [String: FileSpec] = [:]
            for i in inputs { files[i.path] = .bytes(NPY.encode(i.tensor)) }
            for (p, f) in override { files[p] = f }
            for (p, f) in files.sorted(by: { $0.key < $1.key }) {
                switch f {
                case .bytes(let b): try setup.write(p, b)
                case .directory:
                    try setup.mkdir(p)
                    try setup.write(p + "/inside.txt", Array("a file inside\n".utf8))
                case .absent: break
                }
            }
            if let (from, to) = folderRename {
                try FileManager.default.moveItem(atPath: setup.path(from), toPath: setup.path(to))
            }
        }
    }
}

// MARK: - family 1: malformed .npy inputs

enum NPYMutation: String, CaseIterable {
    case truncated = "truncated"
    case headerLengthLarge = "header length too large"
    case headerLengthSmall = "header length too small"
    case badMagic = "magic broken"
    case badMajor = "major version 0/4/255"
    case badMinor = "minor version 1...255"
    case descr = "descr not <f4/<f8"
    case fortran = "fortran_order True/garbage"
    case negativeDim = "shape entry negative"
    case floatDim = "shape entry a float"
    case hugeDim = "shape entry huge"
    case zeroAndHuge = "shape with 0 and 2**62, no data"
    case tooManyDims = "too many dims"
    case tooFewDims = "too few dims"
    case mismatchedExtent = "extent not matching the other inputs"
    case headerNewline = "header with a newline"
    case headerTab = "header with a tab"
    case headerNUL = "header with a NUL"
    case headerInvalidUTF8 = "header not UTF-8"
    case trailingBytes = "trailing bytes"
    case empty = "empty file"
    case directory = "directory in place of the file"
    case missing = "missing file"
    case newlineName = "file name with a newline"
    case nonFinite = "NaN/Inf in the data"
}

extension NPYMutation {
    /// Mutates one input of `fixture` (picked with `rng`) into a case.
    func makeCase(_ fixture: OpFixture, rng: inout SeededRNG) -> FuzzCase {
        let target = fixture.inputs.randomElement(using: &rng)!
        let t = target.tensor
        let good = NPY.encode(t)
        let name = (target.path as NSString).lastPathComponent
        let shape = t.shape
        let data = NPYBytes.data(t)
        let anyInput = Mention.anyOf(fixture.inputs.map { ($0.path as NSString).lastPathComponent }
                                     + fixture.inputs.map { "\($0.label):" } + fixture.inputs.map { "--\($0.label)" })
        var mention = Mention.anyOf([name])
        var expect = Expect.reject
        var spec: FileSpec
        var detail: String
        var paths: [String: String] = [:]
        var params = "p"
        var folderRename: (String, String)?

        func withHeader(descr: String = "'<f4'", fortran: String = "False", shape s: String? = nil,
                        extra: [UInt8] = [], major: UInt8 = 1, minor: UInt8 = 0, data d: [UInt8]? = nil) -> FileSpec {
            .bytes(NPYBytes.file(body: NPYBytes.body(descr: descr, fortran: fortran, shape: s ?? NPYBytes.shapeText(shape),
                                                     extra: extra),
                                 major: major, minor: minor, data: d ?? data))
        }
        func inQuotedDescr(_ inserted: [UInt8]) -> FileSpec {
            // Inside the dtype string ('<f?4') or inside an extra key: either way the
            // header is invalid, and the text a message might quote holds the bytes.
            if Bool.random(using: &rng) {
                return .bytes(NPYBytes.file(body: Array("{'descr': '<f".utf8) + inserted + Array("4', 'fortran_order': False, 'shape': \(NPYBytes.shapeText(shape)), }".utf8), data: data))
            }
            return withHeader(extra: Array("'ke".utf8) + inserted + Array("y': 1, ".utf8))
        }

        switch self {
        case .truncated:
            let at = Int.random(in: 0..<good.count, using: &rng)
            spec = .bytes(Array(good.prefix(at)))
            detail = "\(name) cut at byte \(at) of \(good.count)"
        case .headerLengthLarge, .headerLengthSmall:
            var b = good
            let (at, _, dataStart) = NPYBytes.layout(good)
            let n = dataStart - 10
            let delta = [1, 2, 3, 4, 8, 16, 63].randomElement(using: &rng)!
            var m = self == .headerLengthLarge ? n + delta : n - delta
            if Int.random(in: 0..<4, using: &rng) == 0 { m = self == .headerLengthLarge ? 0xFFFF : 0 }
            b[at] = UInt8(m & 0xFF)
            b[at + 1] = UInt8((m >> 8) & 0xFF)
            spec = .bytes(b)
            detail = "\(name) header length \(n) -> \(m)"
        case .badMagic:
            var b = good
            let i = Int.random(in: 0..<6, using: &rng)
            b[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
            spec = .bytes(b)
            detail = "\(name) magic byte \(i) = 0x\(String(b[i], radix: 16))"
        case .badMajor:
            let major = [UInt8(0), 4, 255].randomElement(using: &rng)!
            spec = withHeader(major: major)
            detail = "\(name) version \(major).0"
        case .badMinor:
            let major = [UInt8(1), 2, 3].randomElement(using: &rng)!
            let minor = UInt8.random(in: 1...255, using: &rng)
            spec = withHeader(major: major, minor: minor)
            detail = "\(name) version \(major).\(minor)"
        case .descr:
            let letters = Array("abcdefxyz<>|=!09#")
            let garbage = String((0..<Int.random(in: 1...6, using: &rng)).map { _ in letters.randomElement(using: &rng)! })
            let d = ["'>f4'", "'<f2'", "'<i4'", "'|u1'", "'<c8'", "'\(garbage)'", "42", "'<f4' 'x'"].randomElement(using: &rng)!
            spec = withHeader(descr: d)
            detail = "\(name) descr \(d)"
        case .fortran:
            let f = ["True", "Maybe", "1", "'False'", "Tru"].randomElement(using: &rng)!
            spec = withHeader(fortran: f)
            detail = "\(name) fortran_order \(f)"
        case .negativeDim, .floatDim, .hugeDim:
            var dims = shape.map(String.init)
            let i = Int.random(in: 0..<dims.count, using: &rng)
            switch self {
            case .negativeDim: dims[i] = "-\(Int.random(in: 1...5, using: &rng))"
            case .floatDim: dims[i] = "\(shape[i]).0"
            default: dims[i] = ["4611686018427387904", "9223372036854775807", "9223372036854775808"].randomElement(using: &rng)!
            }
            spec = withHeader(shape: NPYBytes.shapeText(dims))
            detail = "\(name) shape \(NPYBytes.shapeText(dims))"
        case .zeroAndHuge:
            var dims: [String]
            if Bool.random(using: &rng) {
                dims = ["0", "1", "1", "4611686018427387904"]
            } else {
                dims = shape.map(String.init)
                if dims.count < 2 { dims = ["1"] + dims }
                let i = Int.random(in: 0..<dims.count, using: &rng)
                var j = Int.random(in: 0..<(dims.count - 1), using: &rng)
                if j >= i { j += 1 }
                dims[i] = "0"
                dims[j] = "4611686018427387904"
            }
            spec = withHeader(shape: NPYBytes.shapeText(dims), data: [])
            detail = "\(name) shape \(NPYBytes.shapeText(dims)), no data"
            mention = anyInput
            expect = .rejectOrComplete(fixture.completion)
        case .tooManyDims:
            let dims = Bool.random(using: &rng) ? shape + [1] : [1] + shape
            spec = .bytes(NPY.encode(Tensor(shape: dims, storage: t.storage)))
            detail = "\(name) shape \(dims)"
            mention = anyInput
        case .tooFewDims:
            let dims = shape.count >= 2 ? Array(shape.dropLast(2)) + [shape[shape.count - 2] * shape[shape.count - 1]] : []
            let storage = dims.isEmpty ? [t.storage[0]] : t.storage
            spec = .bytes(NPY.encode(Tensor(shape: dims, storage: storage)))
            detail = "\(name) shape \(dims)"
            mention = anyInput
        case .mismatchedExtent:
            var dims = shape
            let i = Int.random(in: 0..<dims.count, using: &rng)
            dims[i] = dims[i] > 1 && Bool.random(using: &rng) ? dims[i] - 1 : dims[i] + 1
            spec = .bytes(NPY.encode(rng.normalTensor(dims)))
            detail = "\(name) shape \(dims) (was \(shape))"
            mention = anyInput
        case .headerNewline:
            spec = inQuotedDescr([0x0A])
            detail = "\(name) header with \\n in a string"
        case .headerTab:
            spec = inQuotedDescr([0x09])
            detail = "\(name) header with \\t in a string"
        case .headerNUL:
            spec = inQuotedDescr([0x00])
            detail = "\(name) header with \\0 in a string"
        case .headerInvalidUTF8:
            let bad: [[UInt8]] = [[0xFF], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0x80]]
            let b = bad.randomElement(using: &rng)!
            spec = inQuotedDescr(b)
            detail = "\(name) header with bytes \(b.map { String(format: "%02x", $0) }.joined())"
        case .trailingBytes:
            let n = Int.random(in: 1...9, using: &rng)
            spec = .bytes(good + (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) })
            detail = "\(name) + \(n) trailing bytes"
        case .empty:
            spec = .bytes([])
            detail = "\(name) empty"
        case .directory:
            spec = .directory
            detail = "\(name) is a directory"
        case .missing:
            spec = .absent
            detail = "\(name) missing"
        case .newlineName:
            let at = Int.random(in: 0..<good.count, using: &rng)
            spec = .bytes(Array(good.prefix(at)))
            if target.path.hasPrefix("p/") {
                // The parameter files have fixed names: the folder gets the newline.
                folderRename = ("p", "p\nevil")
                params = "p\nevil"
                mention = .anyOf([name])
                detail = "--params 'p\\nevil', \(name) cut at byte \(at)"
            } else {
                let renamed = (name as NSString).deletingPathExtension + "\nevil.npy"
                paths[target.label] = renamed
                folderRename = (target.path, renamed)
                mention = .anyOf(["evil.npy"])
                detail = "'\(renamed.replacingOccurrences(of: "\n", with: "\\n"))' cut at byte \(at)"
            }
        case .nonFinite:
            var bad = t
            let i = Int.random(in: 0..<t.count, using: &rng)
            let (value, text): (Float, String) = [(Float.nan, "NaN"), (Float.infinity, "+Inf"), (-Float.infinity, "-Inf")]
                .randomElement(using: &rng)!
            bad.storage[i] = value
            spec = .bytes(NPY.encode(bad))
            var multi: [Int] = []
            var rest = i
            for d in shape.reversed() { multi.insert(rest % d, at: 0); rest /= d }
            mention = .fileAndIndex(file: name, flat: i, multi: multi)
            detail = "\(name) \(text) at flat index \(i) \(multi)"
        }
        let write = fixture.writer([target.path: spec], folderRename: folderRename)
        return FuzzCase(family: fixture.family, kind: rawValue, detail: detail,
                        args: fixture.args(paths: paths, params: params), expect: expect, mention: mention, prepare: write)
    }
}

// MARK: - family 4: checkpoints, edited below the safetensors reader

/// A safetensors file taken apart, so that any field can be rewritten,
/// including into something the format forbids.
struct RawSafeTensors: Sendable {
    struct Entry: Sendable {
        var name: String
        var dtype: String
        var shapeText: String
        var offsetsText: String
        var begin: Int
        var end: Int
        var shape: [Int]
    }

    var entries: [Entry]
    var metadata: [String: String]
    var data: [UInt8]
    /// Set to write a header length that is not the header's.
    var headerLengthDelta = 0
    /// Set to cut the file in the middle of the header.
    var cutInsideHeader = false

    init(_ bytes: [UInt8]) throws {
        guard bytes.count >= 8 else { throw SetupError("base checkpoint too short") }
        var n = 0
        for k in 0..<8 { n |= Int(bytes[k]) << (8 * k) }
        let json = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)]))
        guard let header = json as? [String: Any] else { throw SetupError("base checkpoint header is not an object") }
        metadata = (header["__metadata__"] as? [String: String]) ?? [:]
        entries = []
        for (name, value) in header where name != "__metadata__" {
            let e = value as! [String: Any]
            let shape = (e["shape"] as! [NSNumber]).map(\.intValue)
            let offsets = (e["data_offsets"] as! [NSNumber]).map(\.intValue)
            entries.append(Entry(name: name, dtype: e["dtype"] as! String,
                                 shapeText: "[" + shape.map(String.init).joined(separator: ",") + "]",
                                 offsetsText: "[\(offsets[0]),\(offsets[1])]",
                                 begin: offsets[0], end: offsets[1], shape: shape))
        }
        entries.sort { $0.name < $1.name }
        data = Array(bytes[(8 + n)...])
    }

    static func quoted(_ s: String) -> String {
        String(decoding: try! JSONEncoder().encode(s), as: UTF8.self)
    }

    func encode() -> [UInt8] {
        var parts: [String] = []
        if !metadata.isEmpty {
            parts.append("\"__metadata__\":{" + metadata.sorted { $0.key < $1.key }
                .map { "\(Self.quoted($0.key)):\(Self.quoted($0.value))" }.joined(separator: ",") + "}")
        }
        for e in entries {
            parts.append("\(Self.quoted(e.name)):{\"data_offsets\":\(e.offsetsText),\"dtype\":\(Self.quoted(e.dtype)),\"shape\":\(e.shapeText)}")
        }
        var json = Array(("{" + parts.joined(separator: ",") + "}").utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        let n = UInt64(Int64(json.count + headerLengthDelta))
        var out: [UInt8] = (0..<8).map { UInt8((n >> (8 * UInt64($0))) & 0xFF) }
        out += json
        out += data
        return cutInsideHeader ? Array(out.prefix(8 + json.count / 2)) : out
    }

    /// Names of the model's own parameters (not Adam's moments, not snapshots).
    var parameterNames: [String] {
        entries.map(\.name).filter { !$0.hasPrefix("adam.") && !$0.hasPrefix("best.") }
    }

    mutating func setFloat(_ value: Float, tensor: String, index: Int) {
        let e = entries.first { $0.name == tensor }!
        let at = e.begin + 4 * index
        let b = value.bitPattern
        data[at] = UInt8(b & 0xFF); data[at + 1] = UInt8((b >> 8) & 0xFF)
        data[at + 2] = UInt8((b >> 16) & 0xFF); data[at + 3] = UInt8(b >> 24)
    }

    mutating func edit(_ tensor: String, _ body: (inout Entry) -> Void) {
        let i = entries.firstIndex { $0.name == tensor }!
        body(&entries[i])
    }

    /// Rewrites one field of the run configuration stored in metadata 'config'.
    mutating func setConfigField(_ field: String, json literal: String) throws {
        let value = try JSONSerialization.jsonObject(with: Data(literal.utf8), options: [.fragmentsAllowed])
        guard let text = metadata["config"],
              var config = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              var run = config["run"] as? [String: Any] else { throw SetupError("base checkpoint has no config.run") }
        guard run[field] != nil else { throw SetupError("config.run has no field '\(field)'") }
        run[field] = value
        config["run"] = run
        metadata["config"] = String(decoding: try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]),
                                    as: UTF8.self)
    }
}

/// One edit of the base checkpoint.
struct CheckpointMutation: Sendable {
    var kind: String
    var detail: String
    /// The checkpoint may still be usable by `fwp eval` (an edit eval never reads,
    /// or a value eval may clamp): exit 0 is then allowed with a complete result.
    var evalMayAccept = false
    var resumeMayAccept = false
    var apply: @Sendable (inout RawSafeTensors) throws -> Void

    /// JSON literals.
    static let hugeValues = ["4611686018427387904", "1000000000000", "-1", "\"x\""]

    /// Every edit of the brief, the random parts drawn from `rng`.
    static func all(rng: inout SeededRNG) -> [CheckpointMutation] {
        var list: [CheckpointMutation] = []
        // Configuration fields.
        for field in ["hidden", "embedding", "testExamples", "trainExamples", "innerSteps", "copies", "evalBatchSize", "pairs"] {
            for text in hugeValues {
                let positive = text != "-1" && text != "\"x\""
                // copies: not used by a fast-weights model; evalBatchSize: a batch larger
                // than the split is fine; trainExamples: eval builds only the test split.
                let evalOK = positive && ["copies", "evalBatchSize", "trainExamples"].contains(field)
                let resumeOK = positive && ["copies", "evalBatchSize"].contains(field)
                list.append(CheckpointMutation(kind: "config.\(field) = huge/-1/string", detail: "config.run.\(field) = \(text)",
                                               evalMayAccept: evalOK, resumeMayAccept: resumeOK) { try $0.setConfigField(field, json: text) })
            }
        }
        // Training-state metadata (fwp eval does not read it).
        for key in ["step", "adam.step", "sampler.epoch", "sampler.position"] {
            for value in ["9223372036854775807", "9223372036854775808", "-1", "1e3"] {
                list.append(CheckpointMutation(kind: "metadata \(key) = 2**63-1/2**63/-1/1e3", detail: "metadata \(key) = \(value)",
                                               evalMayAccept: true) { $0.metadata[key] = value })
            }
        }
        // Non-finite parameter values: the current parameters and the best snapshot.
        for (where_, value, text) in [("", Float.infinity, "+Inf"), ("", Float.nan, "NaN"),
                                      ("best.", Float.nan, "NaN"), ("best.", -Float.infinity, "-Inf")] {
            let pick = UInt64.random(in: 0...UInt64.max, using: &rng)
            list.append(CheckpointMutation(kind: "parameter value Inf/NaN", detail: "\(text) in a \(where_.isEmpty ? "current" : "best") parameter (pick \(pick % 1000))") { raw in
                let names = raw.parameterNames
                let name = where_ + names[Int(pick % UInt64(names.count))]
                let e = raw.entries.first { $0.name == name }!
                let count = (e.end - e.begin) / 4
                raw.setFloat(value, tensor: name, index: Int((pick >> 20) % UInt64(max(count, 1))))
            })
        }
        // Shapes written as floats.
        for snapshot in ["", "best."] {
            list.append(CheckpointMutation(kind: "shape written as floats", detail: "a \(snapshot.isEmpty ? "current" : "best") parameter's shape as [d.0, ...]") { raw in
                let name = snapshot + raw.parameterNames.first { n in raw.entries.first { $0.name == n }!.shape.count == 2 }!
                raw.edit(name) { e in
                    e.shapeText = "[" + e.shape.enumerated().map { $0.offset == 0 ? "\($0.element).0" : "\($0.element)" }
                        .joined(separator: ", ") + "]"
                }
            })
        }
        // The header itself.
        list.append(CheckpointMutation(kind: "header length off by one", detail: "header length + 1") { $0.headerLengthDelta = 1 })
        list.append(CheckpointMutation(kind: "header length off by one", detail: "header length - 1") { $0.headerLengthDelta = -1 })
        list.append(CheckpointMutation(kind: "header truncated", detail: "file cut inside the header") { $0.cutInsideHeader = true })
        for variant in ["end beyond the data", "begin > end", "end 2**62", "negative begin"] {
            list.append(CheckpointMutation(kind: "data offsets out of range", detail: "data_offsets: \(variant)") { raw in
                let n = raw.data.count
                let last = raw.entries.max { $0.end < $1.end }!.name
                raw.edit(last) { e in
                    switch variant {
                    case "end beyond the data": e.offsetsText = "[\(e.begin),\(n + 4)]"
                    case "begin > end": e.offsetsText = "[\(e.end),\(e.begin)]"
                    case "end 2**62": e.offsetsText = "[\(e.begin),4611686018427387904]"
                    default: e.offsetsText = "[-4,\(e.end)]"
                    }
                }
            })
        }
        return list
    }
}

// MARK: - shared command lines

enum Tiny {
    /// `[name, value]`, or `name=value` for a negative value (which the parser would take for an option).
    static func option(_ name: String, _ value: String) -> [String] {
        value.hasPrefix("-") ? ["\(name)=\(value)"] : [name, value]
    }

    /// Sizes of a retrieval run that trains in a fraction of a second (as RetrievalCommandTests' `tiny`).
    static let retrieval: [(String, String)] = [("--pairs", "2"), ("--embedding", "4"), ("--batch", "8"),
                                                 ("--train-examples", "64"), ("--validation-examples", "20"),
                                                 ("--test-examples", "24"), ("--eval-batch", "10")]

    /// `fwp train retrieval` of the fast-weights model at R = `hidden`, with `override` replacing options.
    static func retrievalArgs(model: String = "fast-weights", hidden: String = "4", steps: String = "2",
                              evalEvery: String? = nil, override: [String: String] = [:], out: String) -> [String] {
        var a = ["train", "retrieval", "--model", model] + option("--hidden", override["--hidden"] ?? hidden) + ["--steps", steps]
        if let evalEvery { a += ["--eval-every", evalEvery] }
        for (k, v) in retrieval { a += option(k, override[k] ?? v) }
        for (k, v) in override.sorted(by: { $0.key < $1.key }) where k != "--hidden" && !retrieval.contains(where: { $0.0 == k }) {
            a += option(k, v)
        }
        return a + ["--out", out, "--quiet"]
    }

    /// The run every checkpoint case starts from.
    static func baseRun(out: String) -> [String] {
        retrievalArgs(steps: "4", evalEvery: "2", out: out)
    }

    static let retrievalOutputs = ["checkpoint.safetensors", "log.csv", "summary.json"]

    static let synthetic: [(String, String)] = [("--setting", "1"), ("--size", "4"), ("--model", "delta:elu1"),
                                                 ("--key-size", "4"), ("--steps", "2")]

    static func syntheticArgs(override: [String: String] = [:], out: String) -> [String] {
        var a = ["train", "synthetic"]
        for (k, v) in synthetic { a += option(k, override[k] ?? v) }
        for (k, v) in override.sorted(by: { $0.key < $1.key }) where !synthetic.contains(where: { $0.0 == k }) { a += option(k, v) }
        return a + ["--out", out, "--quiet"]
    }
}
