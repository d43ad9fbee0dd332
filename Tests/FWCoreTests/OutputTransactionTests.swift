import XCTest
import FWTestSupport
import Foundation

/// `OutputTransaction`: every file or none, old files back on failure, no
/// temporaries or backups left, folders it made removed again.
final class OutputTransactionTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "tx-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func path(_ name: String) -> String { dir + "/" + name }
    func listing(_ sub: String = "") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path(sub))) ?? []).sorted()
    }
    func text(_ name: String) -> String? { try? String(contentsOfFile: path(name), encoding: .utf8) }

    func testCommitWritesEveryFileAndReplacesOldOnes() throws {
        try "old".write(toFile: path("a.txt"), atomically: true, encoding: .utf8)
        try OutputTransaction.run { tx in
            try tx.stage(Array("new a".utf8), to: path("a.txt"))
            try tx.stage(Array("new b".utf8), to: path("b.txt"))
        }
        XCTAssertEqual(text("a.txt"), "new a")
        XCTAssertEqual(text("b.txt"), "new b")
        XCTAssertEqual(listing(), ["a.txt", "b.txt"], "no temporaries or backups left")
    }

    func testAFailureLeavesEveryDestinationAsItWas() throws {
        try "old".write(toFile: path("a.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: path("c.txt"), withIntermediateDirectories: false)
        XCTAssertThrowsError(try OutputTransaction.run { tx in
            try tx.stage(Array("new a".utf8), to: path("a.txt"))
            try tx.stage(Array("new b".utf8), to: path("b.txt"))
            try tx.stage(Array("new c".utf8), to: path("c.txt"))     // a folder is in the way
        }) { error in
            XCTAssertTrue("\(error)".contains("c.txt: is a folder"), "\(error)")
        }
        XCTAssertEqual(text("a.txt"), "old")
        XCTAssertEqual(listing(), ["a.txt", "c.txt"])
    }

    func testAFailureDuringCommitRestoresTheOldFiles() throws {
        try "old a".write(toFile: path("a.txt"), atomically: true, encoding: .utf8)
        let tx = OutputTransaction()
        try tx.stage(Array("new a".utf8), to: path("a.txt"))
        try tx.stage(Array("new b".utf8), to: path("b.txt"))
        // b's destination becomes a folder after staging: the commit fails half-way.
        try FileManager.default.createDirectory(atPath: path("b.txt"), withIntermediateDirectories: false)
        XCTAssertThrowsError(try tx.commit())
        tx.rollback()
        XCTAssertEqual(text("a.txt"), "old a")
        XCTAssertEqual(listing(), ["a.txt", "b.txt"])
        XCTAssertEqual(listing("b.txt"), [])
    }

    func testFoldersItMadeGoAgainOnFailure() throws {
        XCTAssertThrowsError(try OutputTransaction.run { tx in
            try tx.makeFolder(path("x/y"))
            try tx.stage(Array("1".utf8), to: path("x/y/one.txt"))
            throw FWError.invalidArgument("the command failed after staging")
        })
        XCTAssertEqual(listing(), [])
    }

    func testRemovedFilesComeBackOnFailureAndGoOnSuccess() throws {
        try "stale".write(toFile: path("old.txt"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try OutputTransaction.run { tx in
            tx.remove(path("old.txt"))
            try tx.stage(Array("x".utf8), to: path("sub/new.txt"))   // no such folder
        })
        XCTAssertEqual(listing(), ["old.txt"])
        try OutputTransaction.run { tx in tx.remove(path("old.txt")) }
        XCTAssertEqual(listing(), [])
    }

    func testDestinationsAreCheckedBeforeAnyWork() throws {
        XCTAssertNoThrow(try OutputTransaction.checkDestination(path("a.json")))
        XCTAssertNoThrow(try OutputTransaction.checkDestination(path("new/deeper/a.json"), createFolder: true))
        XCTAssertThrowsError(try OutputTransaction.checkDestination(path("new/a.json"))) { error in
            XCTAssertTrue("\(error)".contains("no such folder"), "\(error)")
        }
        try "f".write(toFile: path("file"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try OutputTransaction.checkDestination(path("file/a.json"), createFolder: true))
        XCTAssertEqual(listing(), ["file"], "checking writes nothing")
    }
}
