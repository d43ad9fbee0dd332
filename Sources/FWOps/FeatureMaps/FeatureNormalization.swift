import FWCore

/// The normalisation n applied to every feature vector u = phi(x)
/// (docs/contract.md section 3), separately for every key and query.
///
/// ```
/// none: n(u) = u
/// sum:  n(u) = u / sum_i u_i          (a zero-sum vector gives 0, and passes 0 gradient)
/// l2:   n(u) = u / sqrt(sum_i u_i^2 + 1e-6)
/// ```
///
/// `sum` is only defined for maps with non-negative outputs:
/// `validate(map:normalization:)` rejects `identity` + `sum`.
public enum FeatureNormalization: Equatable, Sendable, CaseIterable, CustomStringConvertible {
    /// n(u) = u.
    case none
    /// n(u) = u / sum(u) (Schlag et al.).
    case sum
    /// n(u) = u / sqrt(sum(u^2) + 1e-6).
    case l2

    /// The epsilon under the square root of `l2`.
    public static let l2Epsilon: Float = 1e-6

    /// Parses `none`, `sum` or `l2`; anything else throws
    /// `FWError.invalidArgument` listing the valid forms.
    public init(parsing text: String) throws {
        switch text {
        case "none": self = .none
        case "sum": self = .sum
        case "l2": self = .l2
        default:
            throw FWError.invalidArgument("unknown normalisation '\(text)': expected none, sum or l2")
        }
    }

    /// The spelling `init(parsing:)` reads back.
    public var description: String {
        switch self {
        case .none: return "none"
        case .sum: return "sum"
        case .l2: return "l2"
        }
    }

    /// Throws `FWError.invalidArgument` for a pair docs/contract.md forbids:
    /// `sum` needs non-negative features, so `identity` + `sum` is an error.
    public static func validate(map: FeatureMap, normalization: FeatureNormalization) throws {
        if normalization == .sum && !map.isNonNegative {
            throw FWError.invalidArgument(
                "normalisation 'sum' needs a feature map with non-negative outputs (elu1, dpfp:N, favor:M), not '\(map)'")
        }
    }

    /// The per-vector divisor: s = sum(u) for `sum` (0 for a zero-sum
    /// vector), r = sqrt(sum(u^2) + 1e-6) for `l2`, 1 for `none`.
    func divisor(_ u: UnsafePointer<Float>, size n: Int) -> Float {
        switch self {
        case .none:
            return 1
        case .sum:
            var s: Float = 0
            for i in 0..<n { s += u[i] }
            return s
        case .l2:
            var s2: Float = 0
            for i in 0..<n { s2 += u[i] * u[i] }
            return (s2 + FeatureNormalization.l2Epsilon).squareRoot()
        }
    }

    /// `out[rows, size] = n(u[rows, size])`, row by row. `out` may be `u`
    /// (in place).
    public func forward(out: UnsafeMutablePointer<Float>, u: UnsafePointer<Float>, rows: Int, size n: Int) {
        precondition(rows >= 0 && n >= 0, "FeatureNormalization.forward: rows=\(rows) size=\(n)")
        for row in 0..<rows {
            let ur = u + row * n
            let o = out + row * n
            let s = divisor(ur, size: n)
            // sum: a zero-sum vector (all zeros for non-negative maps) stays zero.
            let inv: Float = s == 0 ? 0 : 1 / s
            for i in 0..<n { o[i] = ur[i] * inv }
        }
    }

    /// `du[rows, size]` (overwritten) = dL/du from `dout` = dL/dn(u); `u` is
    /// the un-normalised input and `out = n(u)` the forward's result. `du`
    /// may be `dout` or `u` (in place), not `out`.
    ///
    /// With s the divisor (sum or l2) and o = n(u), both cases reduce to
    /// ```
    /// du = (dout - c) / s,   sum: c = <dout, o> (a scalar),  l2: c = o <dout, o>
    /// ```
    /// (sum: d o_j/d u_i = (delta_ij - o_j)/s; l2: (delta_ij - o_i o_j)/s).
    /// A zero-sum vector under `sum` gets du = 0.
    public func backward(du: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                         u: UnsafePointer<Float>, out: UnsafePointer<Float>, rows: Int, size n: Int) {
        precondition(rows >= 0 && n >= 0, "FeatureNormalization.backward: rows=\(rows) size=\(n)")
        for row in 0..<rows {
            let g = du + row * n
            let dy = dout + row * n
            let o = out + row * n
            switch self {
            case .none:
                if UnsafePointer(g) != dy { g.update(from: dy, count: n) }
            case .sum, .l2:
                // Read everything that depends on u and out before writing du.
                let s = divisor(u + row * n, size: n)
                var c: Float = 0
                for i in 0..<n { c += dy[i] * o[i] }
                if s == 0 {
                    g.update(repeating: 0, count: n)
                } else if self == .sum {
                    let inv = 1 / s
                    for i in 0..<n { g[i] = (dy[i] - c) * inv }
                } else {
                    let inv = 1 / s
                    for i in 0..<n { g[i] = (dy[i] - o[i] * c) * inv }
                }
            }
        }
    }
}
