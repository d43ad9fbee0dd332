import XCTest
import Foundation
import FWTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A seeded fuzz test of `fwp` against hostile input: a few hundred
/// invocations of the built binary (the generators are in HostileInputs.swift),
/// each in its own scratch folder, under a 15 s timeout and a virtual-memory
/// limit. The contract for a rejected input: no signal, exit status 2,
/// exactly one stderr line `fwp: error: ...` (control characters escaped)
/// naming the file at fault, and the case's folder (so every output folder)
/// exactly as it was. All failures are collected and reported at the end.
///
/// Environment: FWP_FUZZ_SEED (master seed), FWP_FUZZ_CASES (comma-separated
/// indices to run only those), FWP_FUZZ_JOBS (cases at once, default 6),
/// FWP_FUZZ_KEEP=1 (keep the scratch folders), FWP_FUZZ_VERBOSE=1 (list every case).
/// Every child gets FWP_KEEP_BLAS_CORE=1 (except one case that checks the
/// note), so that the OpenBLAS re-exec note does not add a stderr line.
final class HostileInputFuzzTests: XCTestCase {
    static let timeout: Double = 15
    /// `ulimit -v` for every child, in KiB: a runaway allocation fails instead of
    /// taking the machine's memory (a tiny run needs well under 0.5 GiB).
    static let memoryLimitKiB = 3_000_000

    nonisolated(unsafe) static var root: CommandRunner?
    nonisolated(unsafe) static var baseError: String?

    /// Once per class: the tiny retrieval run every checkpoint case edits.
    override class func setUp() {
        super.setUp()
        guard let cli = try? CommandRunner.make() else { baseError = "cannot make a scratch folder"; return }
        root = cli
        let r = cli.runLimited(Tiny.baseRun(out: "base"), in: cli.folder)
        if r.timedOut || r.signal != nil || r.status != 0 {
            baseError = "base run failed: \(r.describeStatus): \(r.stderrText.prefix(300))"
        } else if !FileManager.default.fileExists(atPath: cli.path("base/checkpoint.safetensors")) {
            baseError = "base run wrote no checkpoint"
        }
    }

    override class func tearDown() {
        if ProcessInfo.processInfo.environment["FWP_FUZZ_KEEP"] != "1" { root?.remove() }
        super.tearDown()
    }

    func testHostileInputsFollowTheErrorContract() throws {
        let cli = try XCTUnwrap(Self.root, Self.baseError ?? "no scratch folder")
        if let e = Self.baseError { XCTFail(e); return }
        let env = ProcessInfo.processInfo.environment
        let master = env["FWP_FUZZ_SEED"].flatMap { UInt64($0) } ?? 20_261_202
        let jobs = env["FWP_FUZZ_JOBS"].flatMap { Int($0) }.map { max(1, $0) } ?? 6
        let base = cli.path("base")
        var cases = try HostileCases.all(master: master, basePath: base)
        if let only = env["FWP_FUZZ_CASES"] {
            let wanted = Set(only.split(separator: ",").compactMap { Int($0) })
            cases = cases.filter { wanted.contains($0.index) }
        }

        let started = Date()
        let outcomes = FuzzPool.run(cases, jobs: jobs, root: cli.folder, base: base)
        let seconds = Date().timeIntervalSince(started)

        let failed = outcomes.filter { !$0.problems.isEmpty }
        let report = FuzzReport(outcomes: outcomes, master: master, seconds: seconds)
        let reportPath = CommandRunner.binary.deletingLastPathComponent().appendingPathComponent("HostileInputFuzz-report.txt").path
        let full = report.full()
        try? full.write(toFile: reportPath, atomically: true, encoding: .utf8)
        print(full)
        if env["FWP_FUZZ_VERBOSE"] == "1" { print(report.everything()) }
        print("HostileInputFuzz: \(outcomes.count) cases in \(String(format: "%.1f", seconds)) s, \(failed.count) failed")
        if !failed.isEmpty { XCTFail(report.summary(reportPath: reportPath)) }
    }
}

// MARK: - running fwp with a timeout and a memory limit

/// The result of one limited run.
struct LimitedRun: Sendable {
    var status: Int32 = 0
    /// The signal that ended the process, if one did.
    var signal: Int32?
    var timedOut = false
    var stdout = Data()
    var stderr = Data()
    var seconds = 0.0

    var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    var describeStatus: String {
        if timedOut { return "hang (killed after \(Int(HostileInputFuzzTests.timeout)) s)" }
        if let s = signal { return "signal \(s) (\(signalName(s)))" }
        return "exit \(status)"
    }
}

func signalName(_ s: Int32) -> String {
    [4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM"][s] ?? "signal \(s)"
}

extension CommandRunner {
    /// Runs `fwp args...` in `dir` through `/bin/sh -c 'ulimit -v N; exec fwp "$@"'`
    /// (so the child is fwp itself), with stdout and stderr going to files (no
    /// pipe to fill), SWIFT_BACKTRACE=enable=no and FWP_KEEP_BLAS_CORE=1 (no
    /// re-exec note on stderr on CPUs whose OpenBLAS kernels are old), plus
    /// `environment`. After `timeout` seconds the child and its descendants
    /// are killed and the run is marked as a hang; after 3 s it is reniced so
    /// that a hang does not slow the other cases.
    func runLimited(_ args: [String], in dir: String, environment: [String: String] = [:],
                    timeout: Double = HostileInputFuzzTests.timeout,
                    memoryKiB: Int = HostileInputFuzzTests.memoryLimitKiB) -> LimitedRun {
        var result = LimitedRun()
        let logs = folder + "/.logs"
        try? FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let tag = UUID().uuidString
        let outPath = logs + "/\(tag).out", errPath = logs + "/\(tag).err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
        guard let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath) else {
            result.status = -1
            result.stderr = Data("harness: cannot open log files\n".utf8)
            return result
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "ulimit -v \(memoryKiB) || exit 125; exec \"$0\" \"$@\"", Self.binary.path] + args
        var env = ProcessInfo.processInfo.environment
        env["SWIFT_BACKTRACE"] = "enable=no"
        env["FWP_KEEP_BLAS_CORE"] = "1"
        for (k, v) in environment { env[k] = v }
        p.environment = env
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = out
        p.standardError = err
        let start = Date()
        do { try p.run() } catch {
            result.status = -1
            result.stderr = Data("harness: cannot launch: \(error)\n".utf8)
            return result
        }
        let pid = p.processIdentifier
        var reniced = false
        while p.isRunning {
            let t = Date().timeIntervalSince(start)
            if t > timeout {
                result.timedOut = true
                ProcessTree.kill(pid)
                break
            }
            if t > 3 && !reniced { ProcessTree.renice(pid); reniced = true }
            usleep(t < 1 ? 2_000 : 20_000)
        }
        p.waitUntilExit()
        result.seconds = Date().timeIntervalSince(start)
        try? out.close()
        try? err.close()
        if p.terminationReason == .uncaughtSignal { result.signal = p.terminationStatus } else { result.status = p.terminationStatus }
        result.stdout = FileManager.default.contents(atPath: outPath) ?? Data()
        result.stderr = FileManager.default.contents(atPath: errPath) ?? Data()
        return result
    }
}

/// The processes a case started, by id: for the timeout and the renice.
enum ProcessTree {
    /// `pid` and its descendants (from /proc/<pid>/stat's parent ids).
    static func family(of pid: Int32) -> [Int32] {
        var parent: [Int32: Int32] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let p = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let pp = Int32(fields[1]) { parent[p] = pp }
        }
        var result = [pid]
        var i = 0
        while i < result.count {
            for (child, pp) in parent where pp == result[i] && !result.contains(child) { result.append(child) }
            i += 1
        }
        return result
    }

    static func kill(_ pid: Int32) {
        let all = family(of: pid)
        for p in all { _ = Glibc.kill(p, SIGKILL) }
    }

    /// Nice 19 for every thread of `pid` and its descendants.
    static func renice(_ pid: Int32) {
        for p in family(of: pid) {
            for t in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(p)/task")) ?? [] {
                if let tid = UInt32(t) { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), tid, 19) }
            }
        }
    }
}

// MARK: - the state of a folder

/// A folder's whole contents (hidden files included), to compare before and after.
indirect enum FSTree: Equatable {
    case absent
    case file(Data)
    case link(String)
    case directory([String: FSTree])

    static func snapshot(_ path: String) -> FSTree {
        let fm = FileManager.default
        guard let attrs = try? fm.attributesOfItem(atPath: path), let type = attrs[.type] as? FileAttributeType else {
            return .absent
        }
        switch type {
        case .typeDirectory:
            var children: [String: FSTree] = [:]
            for name in (try? fm.contentsOfDirectory(atPath: path)) ?? [] { children[name] = snapshot(path + "/" + name) }
            return .directory(children)
        case .typeSymbolicLink:
            return .link((try? fm.destinationOfSymbolicLink(atPath: path)) ?? "?")
        default:
            return .file(fm.contents(atPath: path) ?? Data())
        }
    }

    /// What differs, as "+path" (new), "-path" (gone), "~path" (changed).
    static func changes(_ a: FSTree, _ b: FSTree, at path: String = ".") -> [String] {
        switch (a, b) {
        case let (.directory(x), .directory(y)):
            var out: [String] = []
            for name in Set(x.keys).union(y.keys).sorted() {
                out += changes(x[name] ?? .absent, y[name] ?? .absent, at: path == "." ? name : path + "/" + name)
            }
            return out
        case (.absent, .absent): return []
        case (.absent, _): return ["+" + path]
        case (_, .absent): return ["-" + path]
        default: return a == b ? [] : ["~" + path]
        }
    }
}

// MARK: - judging one case

struct CaseOutcome: Sendable {
    var fuzzCase: FuzzCase
    var run: LimitedRun
    /// (cause, detail): the cause groups the summary; empty: the case passed.
    var problems: [(cause: String, detail: String)]
}

enum Judge {
    static func problems(_ c: FuzzCase, _ r: LimitedRun, before: FSTree, after: FSTree, dir: String) -> [(cause: String, detail: String)] {
        var p: [(cause: String, detail: String)] = []
        let changed = FSTree.changes(before, after)
        func changedProblem() {
            if !changed.isEmpty {
                p.append(("folder changed", "left the folder changed: " + changed.prefix(5).joined(separator: " ")
                          + (changed.count > 5 ? " (+\(changed.count - 5))" : "")))
            }
        }
        if r.timedOut {
            p.append(("hang", "no exit after \(Int(HostileInputFuzzTests.timeout)) s: killed"))
            return p
        }
        if let s = r.signal {
            p.append(("signal \(signalName(s))", "killed by \(signalName(s))"))
            changedProblem()
            return p
        }
        switch c.expect {
        case .succeed(let comp):
            if r.status != 0 { p.append(("control failed", "valid invocation: exit \(r.status)")) }
            else { p += completeness(comp, r, dir: dir).map { ("control incomplete", $0) } }
            return p
        case .rejectOrComplete(let comp) where r.status == 0:
            let missing = completeness(comp, r, dir: dir)
            if !missing.isEmpty { p.append(("exit 0, incomplete outputs", missing.joined(separator: "; "))) }
            return p
        default:
            break
        }
        if r.status == 0 {
            p.append(("exit 0 (accepted)", "exit 0 for a hostile input"))
            changedProblem()
            return p
        }
        if r.status != 2 { p.append(("exit \(r.status)", "exit \(r.status), not 2")) }
        // One line, escaped, with the prefix.
        guard let text = String(validating: [UInt8](r.stderr), as: UTF8.self) else {
            p.append(("stderr not UTF-8", "stderr is not valid UTF-8"))
            changedProblem()
            return p
        }
        let newlines = text.filter { $0 == "\n" }.count
        if text.isEmpty {
            p.append(("stderr empty", "no message on stderr"))
        } else if newlines != 1 || !text.hasSuffix("\n") {
            p.append(("stderr not one line", "stderr has \(newlines) newlines\(text.hasSuffix("\n") ? "" : ", no trailing one")"))
        }
        let body = text.hasSuffix("\n") ? String(text.dropLast()) : text
        let controls = body.unicodeScalars.filter { $0.properties.generalCategory == .control && $0 != "\n" }
        if !controls.isEmpty {
            p.append(("unescaped control char", "stderr holds raw " + Set(controls.map { String(format: "U+%04X", $0.value) }).sorted().joined(separator: ",")))
        }
        if !text.hasPrefix("fwp: error: ") { p.append(("no 'fwp: error: ' prefix", "stderr does not start with 'fwp: error: '")) }
        switch c.mention {
        case .none: break
        case .anyOf(let needles):
            if !needles.contains(where: { body.contains($0) }) {
                p.append(("file not named", "message names none of " + needles.prefix(3).map { "'\($0)'" }.joined(separator: ", ")
                          + (needles.count > 3 ? ", ..." : "")))
            }
        case let .fileAndIndex(file, flat, multi):
            if !body.contains(file) { p.append(("file not named", "message does not name '\(file)'")) }
            let numbers = integers(in: body)
            let hasMulti = multi.count <= numbers.count
                && (0...(numbers.count - multi.count)).contains { Array(numbers[$0..<($0 + multi.count)]) == multi }
            if !numbers.contains(flat) && !hasMulti {
                p.append(("index not named", "message names neither index \(flat) nor \(multi)"))
            }
        }
        changedProblem()
        return p
    }

    static func integers(in s: String) -> [Int] {
        var out: [Int] = []
        var cur = ""
        for ch in s + " " {
            if ch.isASCII && ch.isNumber { cur.append(ch) } else if !cur.isEmpty { out.append(Int(cur) ?? -1); cur = "" }
        }
        return out
    }

    /// What is missing from a successful run's outputs.
    static func completeness(_ comp: Completion, _ r: LimitedRun, dir: String) -> [String] {
        var missing: [String] = []
        for f in comp.files {
            let path = dir + "/" + f
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else {
                missing.append("no \(f)")
                continue
            }
            if f.hasSuffix(".npy") {
                if (try? NPY.read(path)) == nil { missing.append("\(f) does not read back") }
            } else if ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int ?? 0) == 0 {
                missing.append("\(f) empty")
            }
        }
        switch comp.stdout {
        case .any: break
        case .nonEmpty: if r.stdout.isEmpty { missing.append("nothing on stdout") }
        case .jsonObject:
            if (try? JSONSerialization.jsonObject(with: r.stdout)) as? [String: Any] == nil { missing.append("stdout is not a JSON object") }
        }
        return missing
    }
}

// MARK: - the pool

enum FuzzPool {
    final class Shared: @unchecked Sendable {
        let lock = NSLock()
        var next = 0
        var outcomes: [CaseOutcome?]
        init(_ n: Int) { outcomes = Array(repeating: nil, count: n) }
    }

    static func run(_ cases: [FuzzCase], jobs: Int, root: String, base: String) -> [CaseOutcome] {
        let cli = CommandRunner(folder: root)
        let shared = Shared(cases.count)
        let group = DispatchGroup()
        for _ in 0..<min(jobs, max(cases.count, 1)) {
            group.enter()
            let worker = Thread {
                while true {
                    shared.lock.lock()
                    let i = shared.next
                    shared.next += 1
                    shared.lock.unlock()
                    if i >= cases.count { break }
                    let o = execute(cases[i], cli: cli, base: base)
                    shared.lock.lock()
                    shared.outcomes[i] = o
                    shared.lock.unlock()
                }
                group.leave()
            }
            worker.stackSize = 4 << 20
            worker.start()
        }
        group.wait()
        return shared.outcomes.map { $0! }
    }

    static func execute(_ c: FuzzCase, cli: CommandRunner, base: String) -> CaseOutcome {
        let dir = cli.path("c\(c.index)")
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let setup = CaseSetup(dir: dir, base: base) { args in cli.runLimited(args, in: dir) }
        do { try c.prepare(setup) } catch {
            return CaseOutcome(fuzzCase: c, run: LimitedRun(), problems: [("set-up failed", "\(error)")])
        }
        let before = FSTree.snapshot(dir)
        let r = cli.runLimited(c.args, in: dir, environment: c.env)
        let after = FSTree.snapshot(dir)
        let problems = Judge.problems(c, r, before: before, after: after, dir: dir)
        if problems.isEmpty { try? FileManager.default.removeItem(atPath: dir) }
        return CaseOutcome(fuzzCase: c, run: r, problems: problems)
    }
}

// MARK: - the report

struct FuzzReport {
    var outcomes: [CaseOutcome]
    var master: UInt64
    var seconds: Double

    static func escape(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\0": out += "\\0"
            default:
                if u.properties.generalCategory == .control { out += String(format: "\\x%02x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out
    }

    static func shellWord(_ s: String) -> String {
        let safe = s.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_./:=,+".unicodeScalars.contains($0) }
        if safe && !s.isEmpty { return s }
        if s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) { return "$'" + escape(s).replacingOccurrences(of: "'", with: "\\'") + "'" }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    static func commandLine(_ c: FuzzCase) -> String {
        let env = c.env.sorted { $0.key < $1.key }.map { "\($0.key)=\(shellWord($0.value)) " }.joined()
        return "(cd c\(c.index) && \(env)fwp " + c.args.map(shellWord).joined(separator: " ") + ")"
    }

    static func clip(_ s: String, _ n: Int) -> String { s.count <= n ? s : String(s.prefix(n)) + "..." }

    func line(_ o: CaseOutcome) -> String {
        let c = o.fuzzCase
        let err = Self.clip(Self.escape(String(decoding: o.run.stderr, as: UTF8.self)), 240)
        return "#\(c.index) seed \(c.seed) [\(c.family) / \(c.kind)] \(Self.escape(c.detail))\n"
            + "    \(Self.clip(Self.commandLine(c), 400))\n"
            + "    -> \(o.run.describeStatus), \(String(format: "%.2f", o.run.seconds)) s; "
            + o.problems.map(\.detail).joined(separator: "; ") + "\n"
            + "    stderr: \(err.isEmpty ? "(empty)" : err)"
    }

    var failed: [CaseOutcome] { outcomes.filter { !$0.problems.isEmpty } }

    /// Every failing case, one block each.
    func full() -> String {
        var s = "HostileInputFuzz: master seed \(master), \(outcomes.count) cases, \(failed.count) failed, \(String(format: "%.1f", seconds)) s\n"
        s += "(re-run some with FWP_FUZZ_SEED=\(master) FWP_FUZZ_CASES=i,j,...; a case's files are in its folder c<i>)\n"
        for o in failed { s += line(o) + "\n" }
        return s
    }

    /// At most ~40 lines: the failures grouped by family and cause, with the mutations and case numbers.
    func summary(reportPath: String) -> String {
        struct Key: Hashable { var family: String; var cause: String }
        var groups: [Key: [CaseOutcome]] = [:]
        var order: [Key] = []
        for o in failed {
            let k = Key(family: o.fuzzCase.family, cause: o.problems[0].cause)
            if groups[k] == nil { order.append(k) }
            groups[k, default: []].append(o)
        }
        var lines = ["\(failed.count) of \(outcomes.count) hostile invocations broke the contract (seed \(master), "
                     + "\(String(format: "%.1f", seconds)) s); every case, with its command line and stderr, in \(reportPath):"]
        let limit = 36
        for (n, k) in order.enumerated() {
            if n == limit { lines.append("... and \(order.count - limit) more groups in the report"); break }
            let list = groups[k]!
            var kinds: [String] = []
            for o in list where !kinds.contains(o.fuzzCase.kind) { kinds.append(o.fuzzCase.kind) }
            let ids = list.prefix(8).map { "#\($0.fuzzCase.index)" }.joined(separator: ",") + (list.count > 8 ? ",..." : "")
            let first = list[0]
            let err = String(decoding: first.run.stderr, as: UTF8.self)
            let example = " e.g. #\(first.fuzzCase.index) " + Self.clip(Self.escape(first.fuzzCase.detail), 50)
                + (err.isEmpty ? "" : " -> \"" + Self.clip(Self.escape(err), 70) + "\"")
            lines.append("\(list.count)x \(k.family): \(k.cause) [\(ids)] in: " + Self.clip(kinds.joined(separator: "; "), 150) + example)
        }
        return lines.joined(separator: "\n")
    }

    /// Every case, passed or not, one line each (FWP_FUZZ_VERBOSE=1).
    func everything() -> String {
        outcomes.map { o in
            "#\(o.fuzzCase.index) [\(o.fuzzCase.family) / \(o.fuzzCase.kind)] \(Self.escape(o.fuzzCase.detail)) -> \(o.run.describeStatus) "
                + (o.problems.isEmpty ? "ok" : "FAIL") + " | " + Self.clip(Self.escape(String(decoding: o.run.stderr, as: UTF8.self)), 160)
        }.joined(separator: "\n")
    }
}

// MARK: - every case

enum HostileCases {
    static func mix(_ master: UInt64, _ index: Int) -> UInt64 {
        var z = master &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Builds every case; case i draws from `SeededRNG(seed: mix(master, i))`.
    static func all(master: UInt64, basePath: String) throws -> [FuzzCase] {
        var cases: [FuzzCase] = []
        func add(_ build: (inout SeededRNG) throws -> FuzzCase) rethrows {
            let seed = mix(master, cases.count)
            var rng = SeededRNG(seed: seed)
            var c = try build(&rng)
            c.index = cases.count
            c.seed = seed
            cases.append(c)
        }
        func fixed(_ c: FuzzCase) { add { _ in c } }

        // Controls: the valid invocations the mutations start from must work.
        for f in [OpFixture.fwp, OpFixture.fastRNN] {
            fixed(FuzzCase(family: "control", kind: "valid \(f.template[1])", detail: "unmutated inputs", args: f.args(),
                           expect: .succeed(f.completion), prepare: f.writer([:])))
        }
        fixed(FuzzCase(family: "control", kind: "valid train retrieval", detail: "tiny run", args: Tiny.baseRun(out: "run"),
                       expect: .succeed(Completion(files: Tiny.retrievalOutputs.map { "run/" + $0 }))))
        fixed(FuzzCase(family: "control", kind: "valid train synthetic", detail: "tiny run", args: Tiny.syntheticArgs(out: "syn"),
                       expect: .succeed(Completion(files: ["syn/log.csv", "syn/summary.json"]))))
        fixed(FuzzCase(family: "control", kind: "valid eval", detail: "base re-encoded by the harness",
                       args: ["eval", "--checkpoint", "m.safetensors", "--json"],
                       expect: .succeed(Completion(files: [], stdout: .jsonObject))) { setup in
            let raw = try RawSafeTensors([UInt8](try Data(contentsOf: URL(fileURLWithPath: basePath + "/checkpoint.safetensors"))))
            try setup.write("m.safetensors", raw.encode())
        })
        // A resume continues in the checkpoint's own folder (a copy of base here).
        fixed(FuzzCase(family: "control", kind: "valid resume", detail: "base re-encoded in a copy of base, resumed in place",
                       args: ["train", "retrieval", "--resume", "D/checkpoint.safetensors", "--quiet"],
                       expect: .succeed(Completion(files: Tiny.retrievalOutputs.map { "D/" + $0 }))) { setup in
            let raw = try RawSafeTensors([UInt8](try Data(contentsOf: URL(fileURLWithPath: basePath + "/checkpoint.safetensors"))))
            try setup.copy(basePath, to: "D")
            try setup.write("D/checkpoint.safetensors", raw.encode())
        })

        // Family 3 first (its runaway cases then overlap with the rest).
        try extremeOptions(add: add)
        try checkpoints(add: add, basePath: basePath, master: master)
        runFolders(fixed: fixed)
        outputDestinations(fixed: fixed)
        languageModels(fixed: fixed)

        // Family 1: every mutation kind in turn, on a random input.
        let kinds = NPYMutation.allCases
        for i in 0..<(5 * kinds.count) { add { rng in kinds[i % kinds.count].makeCase(.fwp, rng: &rng) } }
        for i in 0..<(4 * kinds.count) { add { rng in kinds[i % kinds.count].makeCase(.fastRNN, rng: &rng) } }
        // The brief's own examples of minor versions, on q.npy.
        let fwp = OpFixture.fwp
        let q = fwp.inputs[0]
        for (major, minor) in [(UInt8(1), UInt8(1)), (2, 7)] {
            let bytes = NPYBytes.file(body: NPYBytes.body(shape: NPYBytes.shapeText(q.tensor.shape)), major: major, minor: minor,
                                      data: NPYBytes.data(q.tensor))
            fixed(FuzzCase(family: fwp.family, kind: NPYMutation.badMinor.rawValue, detail: "q.npy version \(major).\(minor)",
                           args: fwp.args(), mention: .anyOf(["q.npy"]), prepare: fwp.writer(["q.npy": .bytes(bytes)])))
        }
        let rnn = OpFixture.fastRNN
        let emptyX = NPYBytes.file(body: NPYBytes.body(shape: "(0, 1099511627776, 3)"), data: [])
        for withDh in [true, false] {
            var args = rnn.args()
            var outputs = rnn.outputs
            if !withDh {
                let i = args.firstIndex(of: "--dh")!
                args.removeSubrange(i...(i + 1))
                outputs = ["out/h.npy"]
            }
            fixed(FuzzCase(family: rnn.family, kind: "x shape (0, 2**40, 3)", detail: "x.npy (0, 2**40, 3), no data, \(withDh ? "with" : "without") --dh",
                           args: args, expect: .rejectOrComplete(Completion(files: outputs)),
                           mention: .anyOf(["x.npy", "x:", "--x", "dh.npy", "dh:", "--dh"]),
                           prepare: rnn.writer(["x.npy": .bytes(emptyX)])))
        }
        return cases
    }

    typealias Adder = ((inout SeededRNG) throws -> FuzzCase) throws -> Void

    // MARK: family 2

    static func outputDestinations(fixed: (FuzzCase) -> Void) {
        let f = OpFixture.fwp
        let family = "out folder"
        var args = f.args()
        fixed(FuzzCase(family: family, kind: "--out is a regular file", detail: "out is a file", args: args,
                       prepare: { setup in
                           try f.writer([:])(setup)
                           try setup.write("out", Array("not a folder\n".utf8))
                       }))
        for blocked in ["state.npy", "dv.npy", "dbeta.npy"] {
            fixed(FuzzCase(family: family, kind: "--out holds a directory named like an output", detail: "out/\(blocked) is a directory",
                           args: args, prepare: { setup in
                               try f.writer([:])(setup)
                               try setup.mkdir("out/\(blocked)")
                               try setup.write("out/\(blocked)/keep.txt", Array("keep\n".utf8))
                               try setup.write("out/.hidden", Array("hidden\n".utf8))
                           }))
        }
        args[args.count - 1] = "afile/sub/out"
        fixed(FuzzCase(family: family, kind: "--out under a regular file", detail: "--out afile/sub/out", args: args,
                       prepare: { setup in
                           try f.writer([:])(setup)
                           try setup.write("afile", Array("a file\n".utf8))
                       }))
    }

    // MARK: family 3

    static func extremeOptions(add: Adder) throws {
        let family = "options"
        func fixed(_ c: FuzzCase) throws { try add { _ in c } }
        let f = OpFixture.fwp
        let write = f.writer([:])
        // --chunk
        for v in ["0", "-1", "9223372036854775807"] {
            try fixed(FuzzCase(family: family, kind: "op fwp --chunk extreme", detail: "--algo chunked --chunk \(v)",
                               args: f.args() + ["--algo", "chunked"] + Tiny.option("--chunk", v),
                               expect: v.hasPrefix("9") ? .rejectOrComplete(f.completion) : .reject, prepare: write))
        }
        try fixed(FuzzCase(family: family, kind: "op fwp --chunk without --algo chunked", detail: "--chunk 4, no --algo",
                           args: f.args() + ["--chunk", "4"], prepare: write))
        try fixed(FuzzCase(family: family, kind: "op fwp --chunk without --algo chunked", detail: "--algo recurrent --chunk 4",
                           args: f.args() + ["--algo", "recurrent", "--chunk", "4"], prepare: write))
        // fast-rnn --steps
        let r = OpFixture.fastRNN
        for v in ["-1", "9223372036854775807", "100000000000"] {
            var args = r.args()
            let at = args.firstIndex(of: "--steps")!
            args.replaceSubrange(at...(at + 1), with: Tiny.option("--steps", v))
            try fixed(FuzzCase(family: family, kind: "op fast-rnn --steps extreme", detail: "--steps \(v)", args: args,
                               prepare: r.writer([:])))
        }
        // train retrieval sizes
        let outputs = Completion(files: Tiny.retrievalOutputs.map { "o/" + $0 })
        for option in ["--hidden", "--embedding", "--train-examples", "--validation-examples", "--test-examples", "--eval-batch", "--batch"] {
            for v in ["4611686018427387904", "9223372036854775807", "1000000000", "0", "-1"] {
                // A larger evaluation batch than the split is legitimate.
                let ok = option == "--eval-batch" && !v.hasPrefix("0") && !v.hasPrefix("-")
                try fixed(FuzzCase(family: family, kind: "train retrieval \(option) extreme", detail: "\(option) \(v)",
                                   args: Tiny.retrievalArgs(override: [option: v], out: "o"),
                                   expect: ok ? .rejectOrComplete(outputs) : .reject))
            }
        }
        for v in ["4611686018427387904", "1000000000"] {
            try fixed(FuzzCase(family: family, kind: "train retrieval --model alstm --copies extreme", detail: "--copies \(v)",
                               args: Tiny.retrievalArgs(model: "alstm", override: ["--copies": v], out: "o")))
        }
        // train synthetic sizes
        let synOutputs = Completion(files: ["s/log.csv", "s/summary.json"])
        for option in ["--size", "--key-size", "--embedding", "--batch", "--eval-sequences", "--max-queries"] {
            for v in ["4611686018427387904", "1000000000", "0", "-1"] {
                // More queries allowed than the sequence has keys is legitimate.
                let ok = option == "--max-queries" && !v.hasPrefix("0") && !v.hasPrefix("-")
                try fixed(FuzzCase(family: family, kind: "train synthetic \(option) extreme", detail: "\(option) \(v)",
                                   args: Tiny.syntheticArgs(override: [option: v], out: "s"),
                                   expect: ok ? .rejectOrComplete(synOutputs) : .reject))
            }
        }
        for m in ["delta:favor:4611686018427387904", "delta:dpfp:9223372036854775807"] {
            try fixed(FuzzCase(family: family, kind: "train synthetic --model with a huge parameter", detail: "--model \(m)",
                               args: Tiny.syntheticArgs(override: ["--model": m], out: "s")))
        }
        // Empty lists.
        for (detail, args) in [("schlag2021 --models ''", ["reproduce", "schlag2021", "--setting", "1", "--quick", "--models", "", "--out", "R"]),
                               ("schlag2021 --sizes ''", ["reproduce", "schlag2021", "--setting", "1", "--quick", "--sizes", "", "--out", "R"]),
                               ("ba2016 --models ''", ["reproduce", "ba2016", "--quick", "--models", "", "--out", "R"]),
                               ("ba2016 --hidden ''", ["reproduce", "ba2016", "--quick", "--hidden", "", "--out", "R"])] {
            try fixed(FuzzCase(family: family, kind: "reproduce with an empty list", detail: detail, args: args))
        }
        // bench
        for spelling in ["--T", "--t"] {
            for v in ["9223372036854775807", "0"] {
                try fixed(FuzzCase(family: family, kind: "bench --T extreme", detail: "\(spelling) \(v)", args: ["bench", spelling, v]))
            }
        }
        for (detail, args) in [("--lm-step --decode", ["bench", "--lm-step", "--decode"]), ("--lm-step --quick", ["bench", "--lm-step", "--quick"]),
                               ("--rules delta --decode", ["bench", "--rules", "delta", "--decode"])] {
            try fixed(FuzzCase(family: family, kind: "bench with row choices that exclude each other", detail: detail, args: args,
                               mention: .anyOf([args[1]])))
        }
        try fixed(FuzzCase(family: family, kind: "bench --markdown into a missing folder",
                           detail: "--quick --json OUT/b.json --markdown /nonexistent-dir/b.md",
                           args: ["bench", "--quick", "--json", "OUT/b.json", "--markdown", "/nonexistent-dir/b.md"],
                           mention: .anyOf(["nonexistent-dir"]), prepare: { try $0.mkdir("OUT") }))
        // Without FWP_KEEP_BLAS_CORE=1 (which every other case sets): on a CPU whose OpenBLAS
        // kernels are older than it, fwp re-runs itself and says so on stderr first.
        try fixed(FuzzCase(family: family, kind: "missing input, OpenBLAS re-exec on (FWP_KEEP_BLAS_CORE=0)", detail: "FWP_KEEP_BLAS_CORE=0, q.npy missing",
                           args: f.args(), env: ["FWP_KEEP_BLAS_CORE": "0"], mention: .anyOf(["q.npy"]),
                           prepare: f.writer(["q.npy": .absent])))
        // FWP_THREADS
        for v in ["0", "-1", "9223372036854775807", "99999999999999999999", "abc"] {
            try fixed(FuzzCase(family: family, kind: "FWP_THREADS extreme", detail: "FWP_THREADS=\(v)", args: f.args(),
                               env: ["FWP_THREADS": v], expect: .rejectOrComplete(f.completion), prepare: write))
        }
    }

    // MARK: family 4

    static func checkpoints(add: Adder, basePath: String, master: UInt64) throws {
        let family = "checkpoint"
        var rng = SeededRNG(seed: master ^ 0xC4EC)
        let mutations = CheckpointMutation.all(rng: &rng)
        let baseCheckpoint = basePath + "/checkpoint.safetensors"
        for (m, mutation) in mutations.enumerated() {
            let name = "m\(m).safetensors"
            let prepare: @Sendable (CaseSetup) throws -> Void = { setup in
                var raw = try RawSafeTensors([UInt8](try Data(contentsOf: URL(fileURLWithPath: baseCheckpoint))))
                try mutation.apply(&raw)
                try setup.write(name, raw.encode())
            }
            try add { _ in
                FuzzCase(family: family, kind: mutation.kind, detail: "eval: " + mutation.detail,
                         args: ["eval", "--checkpoint", name],
                         expect: mutation.evalMayAccept ? .rejectOrComplete(Completion(files: [], stdout: .nonEmpty)) : .reject,
                         mention: .anyOf([name]), prepare: prepare)
            }
            try add { _ in
                FuzzCase(family: family, kind: mutation.kind, detail: "eval --json: " + mutation.detail,
                         args: ["eval", "--checkpoint", name, "--json"],
                         expect: mutation.evalMayAccept ? .rejectOrComplete(Completion(files: [], stdout: .jsonObject)) : .reject,
                         mention: .anyOf([name]), prepare: prepare)
            }
            try add { _ in
                // The mutant sits in a copy of base and is resumed in place: a rejected
                // resume must leave the whole folder (checkpoint, log, summary) as it was.
                FuzzCase(family: family, kind: mutation.kind, detail: "resume: " + mutation.detail,
                         args: ["train", "retrieval", "--resume", "D/checkpoint.safetensors", "--quiet"],
                         expect: mutation.resumeMayAccept ? .rejectOrComplete(Completion(files: Tiny.retrievalOutputs.map { "D/" + $0 })) : .reject,
                         mention: .anyOf(["checkpoint.safetensors"]), prepare: { setup in
                             try setup.copy(basePath, to: "D")
                             var raw = try RawSafeTensors([UInt8](try Data(contentsOf: URL(fileURLWithPath: baseCheckpoint))))
                             try mutation.apply(&raw)
                             try setup.write("D/checkpoint.safetensors", raw.encode())
                         })
            }
        }
        try add { _ in
            FuzzCase(family: family, kind: "resume with --steps below the saved step", detail: "--resume base-copy/... --steps 2 (saved: 4)",
                     args: ["train", "retrieval", "--resume", "base-copy/checkpoint.safetensors", "--steps", "2", "--quiet"],
                     prepare: { try $0.copy(basePath, to: "base-copy") })
        }
    }

    // MARK: family 5

    static func runFolders(fixed: (FuzzCase) -> Void) {
        let family = "run folder"
        let first = Tiny.baseRun(out: "run1")
        let second = first + ["--lr", "1e30"]
        fixed(FuzzCase(family: family, kind: "fresh run over a finished run", detail: "second run with --lr 1e30",
                       args: second, prepare: { try $0.mustRun(first) }))
        fixed(FuzzCase(family: family, kind: "fresh run over a finished run, --force", detail: "second run with --lr 1e30 --force",
                       args: second + ["--force"], prepare: { try $0.mustRun(first) }))
        fixed(FuzzCase(family: family, kind: "--out holds a directory checkpoint.safetensors",
                       detail: "run/checkpoint.safetensors/keep.txt", args: Tiny.baseRun(out: "run"), prepare: { setup in
                           try setup.mkdir("run/checkpoint.safetensors")
                           try setup.write("run/checkpoint.safetensors/keep.txt", Array("keep\n".utf8))
                       }))
        let synthetic = Tiny.syntheticArgs(out: "syn1")
        fixed(FuzzCase(family: family, kind: "fresh synthetic run over a finished one", detail: "second run with --lr 1e30",
                       args: Tiny.syntheticArgs(override: ["--lr": "1e30"], out: "syn1"), prepare: { try $0.mustRun(synthetic) }))
    }
}
