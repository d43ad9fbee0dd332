// Shared helpers for every test target: the docs/contract.md section 7 tolerance
// check, central finite differences, and Float64 conversions. The Float64
// reference ("oracle") evaluations of each op live in Reference/.
import XCTest
@_exported import FastWeights

/// docs/contract.md section 7: `max|a - b| <= tol * max(1, max|b|)`.
public let specTolerance: Double = 2e-4

/// The largest absolute difference between `a` and `b` (same count).
public func maxAbsDifference(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "maxAbsDifference: counts \(a.count) and \(b.count)")
    var m = 0.0
    for i in 0..<a.count { m = max(m, abs(Double(a[i]) - b[i])) }
    return m
}

/// Asserts docs/contract.md's bound between a Float32 result `a` and a reference `b`,
/// printing the named tensor's error and bound on failure.
public func assertSpecClose(_ a: [Float], _ b: [Double], _ label: String,
                            tolerance: Double = specTolerance,
                            file: StaticString = #filePath, line: UInt = #line) {
    guard a.count == b.count else {
        XCTFail("\(label): count \(a.count) vs reference \(b.count)", file: file, line: line)
        return
    }
    let scale = max(1, b.reduce(0) { max($0, abs($1)) })
    let err = maxAbsDifference(a, b)
    let nonFinite = a.contains { !$0.isFinite }
    if nonFinite || err > tolerance * scale {
        XCTFail("\(label): max|a-b| = \(err) > \(tolerance) * \(scale)\(nonFinite ? " (non-finite values)" : "")",
                file: file, line: line)
    }
}

/// The same check between two Float32 results (e.g. recurrent vs chunked).
public func assertSpecClose(_ a: [Float], _ b: [Float], _ label: String,
                            tolerance: Double = specTolerance,
                            file: StaticString = #filePath, line: UInt = #line) {
    assertSpecClose(a, b.map(Double.init), label, tolerance: tolerance, file: file, line: line)
}

/// Central finite differences of a scalar Float64 function:
/// `(f(x + h e_i) - f(x - h e_i)) / 2h` for every i.
public func centralDifferences(at x: [Double], h: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
    var g = [Double](repeating: 0, count: x.count)
    var xp = x
    for i in 0..<x.count {
        let xi = x[i]
        xp[i] = xi + h
        let fp = f(xp)
        xp[i] = xi - h
        let fm = f(xp)
        xp[i] = xi
        g[i] = (fp - fm) / (2 * h)
    }
    return g
}

/// `sum_i a_i b_i` in Float64 (the scalar loss `<dy, y>` used by gradient checks).
public func dot(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    var s = 0.0
    for i in 0..<a.count { s += a[i] * b[i] }
    return s
}

extension Array where Element == Float {
    /// The same numbers as Float64.
    public var asDouble: [Double] { map(Double.init) }
}
