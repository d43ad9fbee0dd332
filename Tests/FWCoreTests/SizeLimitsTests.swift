import XCTest
import FWTestSupport
import Foundation

/// Checked sizes, the memory budget and finiteness checks: the guards that
/// turn absurd inputs into one clear error instead of a trap or an abort.
final class SizeLimitsTests: XCTestCase {
    func testProductReportsOverflowInsteadOfTrapping() throws {
        XCTAssertEqual(try SizeLimits.product([4, 8, 1024], "x"), 32768)
        XCTAssertEqual(try SizeLimits.product([0, Int.max, Int.max], "x"), 0)
        XCTAssertThrowsError(try SizeLimits.product([1 << 40, 1 << 40], "the state")) { error in
            XCTAssertEqual("\(error)", "the state is too large: 1099511627776 x 1099511627776 overflows")
        }
    }

    func testExtentsAreBoundedByBLASSizes() throws {
        XCTAssertNoThrow(try SizeLimits.checkExtents("q", [0, 1, Int(Int32.max)]))
        XCTAssertThrowsError(try SizeLimits.checkExtents("q", [0, 1, 1, 1 << 62])) { error in
            XCTAssertTrue("\(error)".hasPrefix("q: extent 4611686018427387904 in shape [0, 1, 1, 4611686018427387904] is outside 0...2147483647"), "\(error)")
        }
    }

    func testMemoryBudgetSaysHowMuchAJobWouldNeed() throws {
        XCTAssertNoThrow(try MemoryBudget.check(1024, "a small job"))
        XCTAssertThrowsError(try MemoryBudget.check(MemoryBudget.physicalBytes * 2, "a big job")) { error in
            XCTAssertTrue("\(error)".hasPrefix("a big job would need "), "\(error)")
            XCTAssertTrue("\(error)".contains("of memory; this machine has "), "\(error)")
        }
        XCTAssertThrowsError(try MemoryBudget.check(.infinity, "x"))
        XCTAssertEqual(MemoryBudget.describe(512), "512 bytes")
        XCTAssertEqual(MemoryBudget.describe(1.5 * 1024 * 1024 * 1024), "1.5 GiB")
        XCTAssertEqual(MemoryBudget.describe(1e30), "more than 10^18 bytes")
    }

    func testFirstNonFiniteEntryIsNamedByItsIndex() throws {
        var t = Tensor(shape: [2, 3, 4], repeating: 1)
        XCTAssertNil(t.firstNonFiniteIndex)
        XCTAssertNoThrow(try t.checkFinite("v"))
        t[1, 2, 3] = -.infinity
        t[1, 0, 2] = .nan
        XCTAssertEqual(t.firstNonFiniteIndex, 12 + 2)
        XCTAssertEqual(t.multiIndex(23), [1, 2, 3])
        XCTAssertThrowsError(try t.checkFinite("v")) { error in
            XCTAssertEqual(error as? FWError, .nonFinite("v: non-finite value nan at index [1, 0, 2]"))
        }
    }

    func testWorkerCountFromTheEnvironmentIsBounded() {
        XCTAssertEqual(ThreadOwnership.parseWorkerCount("2"), 2)
        for bad in ["0", "-1", "abc", "", "9223372036854775807", "99999999999999999999", "257"] {
            XCTAssertNil(ThreadOwnership.parseWorkerCount(bad), bad)
        }
        XCTAssertTrue((1...ThreadOwnership.maxWorkers).contains(ThreadOwnership.workers))
    }

    func testFolderOfAPath() {
        XCTAssertEqual(FilePaths.folder(of: "a/b/c.npy"), "a/b")
        XCTAssertEqual(FilePaths.folder(of: "c.npy"), ".")
        XCTAssertEqual(FilePaths.folder(of: "/c.npy"), "/")
        XCTAssertEqual(FilePaths.folder(of: "a//b/"), "a")
        XCTAssertEqual(FilePaths.folder(of: ""), ".")
    }
}
