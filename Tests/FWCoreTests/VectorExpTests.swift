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

    /// elu1, its backward, logistic, silu and silu's backward over buffers of
    /// every tail length, against Double: relative error a few ulp, the
    /// ends (|x| up to 100, where exp under- and overflows) finite, and
    /// nothing written past the buffer.
    func testActivationsAgainstDouble() {
        func logistic(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
        let maps: [(String, (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, Int) -> Void,
                    (Double, Double) -> Double)] = [
            ("elu1", { o, x, _, n in VectorExp.elu1(out: o, x: x, count: n) }, { x, _ in x > 0 ? x + 1 : Foundation.exp(x) }),
            ("elu1Backward", { o, x, g, n in VectorExp.elu1Backward(dx: o, g: g, x: x, count: n) },
             { x, g in x > 0 ? g : g * Foundation.exp(x) }),
            ("logistic", { o, x, _, n in VectorExp.logistic(out: o, x: x, count: n) }, { x, _ in logistic(x) }),
            ("silu", { o, x, _, n in VectorExp.silu(out: o, x: x, count: n) }, { x, _ in x * logistic(x) }),
            ("siluBackward", { o, x, g, n in VectorExp.siluBackward(dx: o, g: g, x: x, count: n) },
             { x, g in let s = logistic(x); return g * s * (1 + x * (1 - s)) }),
        ]
        var rng = SeededRNG(seed: 5)
        for (name, f, exact) in maps {
            var worst = 0.0
            for n in 1...41 {
                var x = (0..<n).map { _ in Float(rng.uniformDouble() * 24 - 12) }
                if n == 41 { x[0] = 100; x[1] = -100; x[2] = 0; x[3] = -0.0; x[4] = 88; x[5] = -88 }
                let g = (0..<n).map { _ in Float(rng.uniformDouble() * 2 - 1) }
                var out = [Float](repeating: -7, count: n + 3)
                x.withUnsafeBufferPointer { xb in
                    g.withUnsafeBufferPointer { gb in
                        out.withUnsafeMutableBufferPointer { ob in f(ob.baseAddress!, xb.baseAddress!, gb.baseAddress!, n) }
                    }
                }
                XCTAssertEqual(Array(out[n...]), [-7, -7, -7], "\(name) n = \(n): nothing written past the buffer")
                for i in 0..<n {
                    let e = exact(Double(x[i]), Double(g[i]))
                    XCTAssertTrue(out[i].isFinite, "\(name)(\(x[i])) = \(out[i])")
                    // Relative to the value, with an absolute floor for values near 0 (silu' crosses 0).
                    let err = abs(Double(out[i]) - e) / max(abs(e), 1e-6)
                    worst = max(worst, err)
                    XCTAssertLessThanOrEqual(err, 4e-6, "\(name)(\(x[i]), g \(g[i])) = \(out[i]) vs \(e)")
                }
            }
            print("  \(name): worst relative error \(worst)")
        }
    }
}
