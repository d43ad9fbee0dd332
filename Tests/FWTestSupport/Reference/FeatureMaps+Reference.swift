// Float64 reference ("oracle") of docs/contract.md sections 2 and 3: every feature
// map phi and normalisation n, written as naive loops straight from the
// tables, and their composition over rows. No shortcuts: favor uses the
// plain formula (no max-subtraction), one exp per entry.
import Foundation
import FastWeights

/// Float64 evaluations of phi, n and n(phi(x)) for tests.
public enum FeatureMapsReference {
    /// phi(x) for one vector x in R^d; `omega` is `[M, d]` row-major for favor.
    public static func phi(_ map: FeatureMap, _ x: [Double], omega: [Double]?) -> [Double] {
        let d = x.count
        switch map {
        case .identity:
            return x
        case .silu:
            return x.map { $0 / (1 + exp(-$0)) }
        case .elu1:
            return x.map { $0 > 0 ? $0 + 1 : exp($0) }
        case let .dpfp(n):
            var r = [Double](repeating: 0, count: 2 * d)
            for i in 0..<d {
                r[i] = max(x[i], 0)
                r[d + i] = max(-x[i], 0)
            }
            var out = [Double](repeating: 0, count: 2 * d * n)
            for j in 0..<n {
                for i in 0..<(2 * d) {
                    // ((i - (j+1)) mod 2d), kept non-negative
                    let k = ((i - (j + 1)) % (2 * d) + 2 * d) % (2 * d)
                    out[j * 2 * d + i] = r[i] * r[k]
                }
            }
            return out
        case let .favor(m):
            let w = omega!
            precondition(w.count == m * d)
            var sq = 0.0
            for t in 0..<d { sq += x[t] * x[t] }
            var out = [Double](repeating: 0, count: 2 * m)
            for i in 0..<m {
                var u = 0.0
                for t in 0..<d { u += w[i * d + t] * x[t] }
                out[i] = exp(u - sq / 2) / (2 * Double(m)).squareRoot()
                out[m + i] = exp(-u - sq / 2) / (2 * Double(m)).squareRoot()
            }
            return out
        }
    }

    /// n(u) for one vector.
    public static func normalize(_ u: [Double], _ normalization: FeatureNormalization) -> [Double] {
        switch normalization {
        case .none:
            return u
        case .sum:
            var s = 0.0
            for v in u { s += v }
            if s == 0 { return u.map { _ in 0 } }
            return u.map { $0 / s }
        case .l2:
            var s2 = 0.0
            for v in u { s2 += v * v }
            let r = (s2 + 1e-6).squareRoot()
            return u.map { $0 / r }
        }
    }

    /// n(phi(x)) over `rows` vectors: x `[rows, d]` -> `[rows, Dphi]`.
    public static func apply(_ map: FeatureMap, _ normalization: FeatureNormalization,
                             x: [Double], rows: Int, d: Int, omega: [Double]?) -> [Double] {
        precondition(x.count == rows * d)
        var out: [Double] = []
        out.reserveCapacity(rows * map.outputSize(inputSize: d))
        for row in 0..<rows {
            let xr = Array(x[(row * d)..<((row + 1) * d)])
            out += normalize(phi(map, xr, omega: omega), normalization)
        }
        return out
    }
}
