import XCTest
import FWTestSupport
import Foundation

/// The eight-lane exp against Double `exp`: ulp error over the whole normal
/// range, the ends (overflow to +Inf, underflow to 0, NaN), and the buffer
/// passes (sum of a softmax row, max) at every tail length.
final class VectorExpTests: XCTestCase {
    /// ulps of `got` from the Float nearest to `exact`.
    private func ulps(_ got: Float, _ exact: Double) -> Double {
        let e = Float(exact)
        return abs(Double(got) - Double(e)) / Double(e.ulp)
    }

    func testAtMostTwoUlpOverTheNormalRange() {
        var worst = 0.0, worstX: Float = 0
        var x: Float = -87.3
        // About 180k points, every lane position used.
        while x < 88.7 {
            let v = VectorExp.Lanes((0..<8).map { x + Float($0) * 1.3e-5 })
            let y = VectorExp.exp(v)
            for i in 0..<8 {
                let u = ulps(y[i], Foundation.exp(Double(v[i])))
                if u > worst { worst = u; worstX = v[i] }
            }
            x += 1e-3
        }
        XCTAssertLessThanOrEqual(worst, 2, "worst \(worst) ulp at x = \(worstX)")
        // Near 0, where softmax's largest entry sits: exact 1 at 0.
        XCTAssertEqual(VectorExp.exp(Float(0)), 1)
        for x: Float in [1e-30, -1e-30, 1e-7, -1e-7, 0.34657, -0.34657, 1, -1] {
            XCTAssertLessThanOrEqual(ulps(VectorExp.exp(x), Foundation.exp(Double(x))), 1, "x = \(x)")
        }
    }

    func testEndsOfTheRange() {
        XCTAssertEqual(VectorExp.exp(Float(88.73)), .infinity)
        XCTAssertEqual(VectorExp.exp(Float.infinity), .infinity)
        XCTAssertEqual(VectorExp.exp(Float(-87.34)), 0)
        XCTAssertEqual(VectorExp.exp(-Float.infinity), 0)
        XCTAssertEqual(VectorExp.exp(-Float.greatestFiniteMagnitude), 0)
        XCTAssertTrue(VectorExp.exp(Float.nan).isNaN)
        // Just inside both ends: finite, normal, within 2 ulp.
        let hi: Float = 88.72283, lo: Float = -87.33654
        XCTAssertTrue(VectorExp.exp(hi).isFinite)
        XCTAssertLessThanOrEqual(ulps(VectorExp.exp(hi), Foundation.exp(Double(hi))), 2)
        XCTAssertTrue(VectorExp.exp(lo).isNormal)
        XCTAssertLessThanOrEqual(ulps(VectorExp.exp(lo), Foundation.exp(Double(lo))), 2)
        // A NaN in one lane leaves the others alone.
        let y = VectorExp.exp(VectorExp.Lanes(0, .nan, 1, -1, 2, -2, 3, -3))
        XCTAssertTrue(y[1].isNaN)
        XCTAssertEqual(y[0], 1)
        XCTAssertLessThanOrEqual(ulps(y[7], Foundation.exp(-3.0)), 2)
    }

    func testSoftmaxRowPassesAtEveryTailLength() {
        var rng = SeededRNG(seed: 4)
        for n in 1...40 {
            let x = (0..<n).map { _ in Float(Double(rng.next() % 1_000_000) / 50_000 - 10) }
            let m = x.withUnsafeBufferPointer { VectorExp.max($0.baseAddress!, count: n) }
            XCTAssertEqual(m, x.max()!, "n = \(n)")
            var out = [Float](repeating: -1, count: n + 3)          // 3 guard entries after the row
            let sum = x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { VectorExp.expSum(xp.baseAddress!, minus: m, into: $0.baseAddress!, count: n) }
            }
            let exact = x.map { Foundation.exp(Double($0 - m)) }
            for i in 0..<n { XCTAssertLessThanOrEqual(ulps(out[i], exact[i]), 2, "n = \(n), i = \(i)") }
            XCTAssertEqual(Array(out[n...]), [-1, -1, -1], "n = \(n): nothing written past the row")
            XCTAssertEqual(Double(sum), exact.reduce(0, +), accuracy: 1e-6 * Double(n), "n = \(n)")
        }
    }
}
