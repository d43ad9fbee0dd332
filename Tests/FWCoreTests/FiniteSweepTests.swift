import XCTest
@testable import FWCore

/// `Tensor.firstNonFiniteIndex` (the API boundary's NaN/Inf check) finds the
/// first bad entry wherever it sits: in the 16-lane bulk, the tail, either
/// side of a 4096-float block boundary, and among several bad entries.
final class FiniteSweepTests: XCTestCase {
    func testEveryPositionAndKindIsFound() {
        let n = 2 * 4096 + 21
        let clean = Tensor(shape: [n], storage: (0..<n).map { Float($0 % 7) - 3.5 })
        XCTAssertNil(clean.firstNonFiniteIndex)
        XCTAssertNil(Tensor(shape: [0], storage: []).firstNonFiniteIndex)
        XCTAssertNil(Tensor(shape: [3], storage: [Float.greatestFiniteMagnitude, -.greatestFiniteMagnitude, 0]).firstNonFiniteIndex,
                     "the largest finite values are finite")
        for position in [0, 1, 15, 16, 4095, 4096, 4097, 8191, 8192, n - 5, n - 1] {
            for bad in [Float.nan, .infinity, -.infinity] {
                var x = clean
                x.storage[position] = bad
                XCTAssertEqual(x.firstNonFiniteIndex, position, "\(bad) at \(position)")
                if position + 3 < n {
                    x.storage[position + 3] = .nan
                    XCTAssertEqual(x.firstNonFiniteIndex, position, "the first of two, \(bad) at \(position)")
                }
            }
        }
        var short = Tensor(shape: [5], storage: [1, 2, 3, 4, 5])
        short.storage[4] = .infinity
        XCTAssertThrowsError(try short.checkFinite("x")) { XCTAssertEqual("\($0)", "x: non-finite value inf at index [4]") }
    }
}
