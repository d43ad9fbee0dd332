import FWCore

/// A feature map phi applied to every key and query vector (docs/contract.md section 2).
///
/// | case | spelling | Dphi | phi(x), x in R^d |
/// |---|---|---|---|
/// | `identity` | `identity` | d | x |
/// | `silu` | `silu` | d | x sigmoid(x) (signed) |
/// | `elu1` | `elu1` | d | x + 1 for x > 0, exp(x) otherwise |
/// | `dpfp(order: N)` | `dpfp:N` | 2 d N | r = relu([x, -x]); phi[j*2d + i] = r[i] r[(i - (j+1)) mod 2d] |
/// | `favor(features: M)` | `favor:M` | 2 M | exp(+-(Omega x)_i - \|x\|^2/2) / sqrt(2M) |
///
/// The forward and backward over a batch of row vectors are in
/// `FeatureMap+Forward.swift` and `FeatureMap+Backward.swift`; the
/// derivation is in `FeatureMaps.md`.
public enum FeatureMap: Equatable, Sendable, CustomStringConvertible {
    /// phi(x) = x (Dphi = d). Outputs can be negative.
    case identity
    /// phi(x) = x * sigmoid(x) elementwise (Dphi = d; DeltaNet-style layers). Outputs can be negative.
    case silu
    /// phi(x) = elu(x) + 1 (Dphi = d; Katharopoulos et al.).
    case elu1
    /// Deterministic parameter-free projection of order N (Dphi = 2 d N; Schlag et al.).
    case dpfp(order: Int)
    /// FAVOR+ positive random features, hyperbolic form (Dphi = 2 M; Performer).
    case favor(features: Int)

    /// The spellings `init(parsing:)` accepts, for error messages and help text.
    public static let validForms = "identity, silu, elu1, dpfp:N (N >= 1) or favor:M (M >= 1)"

    /// Parses `identity`, `elu1`, `dpfp:N` or `favor:M` (N, M positive
    /// integers). Throws `FWError.invalidArgument` listing the valid forms
    /// for an unknown name or a bad number. The bound N <= 2d - 1 depends on
    /// the input size and is checked by `validate(inputSize:)`.
    public init(parsing text: String) throws {
        switch text {
        case "identity": self = .identity
        case "silu": self = .silu
        case "elu1": self = .elu1
        default:
            let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == "dpfp" || parts[0] == "favor" else {
                throw FWError.invalidArgument(
                    "unknown feature map '\(text)': expected \(FeatureMap.validForms)")
            }
            // Int(_:) accepts a leading '+'; insist on plain digits.
            guard parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(parts[1]), n >= 1 else {
                throw FWError.invalidArgument(
                    "feature map '\(text)': '\(parts[1])' is not a positive integer; expected \(FeatureMap.validForms)")
            }
            self = parts[0] == "dpfp" ? .dpfp(order: n) : .favor(features: n)
        }
    }

    /// The spelling `init(parsing:)` reads back: `identity`, `elu1`, `dpfp:N`, `favor:M`.
    public var description: String {
        switch self {
        case .identity: return "identity"
        case .silu: return "silu"
        case .elu1: return "elu1"
        case let .dpfp(n): return "dpfp:\(n)"
        case let .favor(m): return "favor:\(m)"
        }
    }

    /// Dphi, the size of phi(x) for x in R^d (call `validate(inputSize:)`
    /// first: it checks that this product fits).
    public func outputSize(inputSize d: Int) -> Int {
        switch self {
        case .identity, .silu, .elu1: return d
        case let .dpfp(n): return 2 * d * n
        case let .favor(m): return 2 * m
        }
    }

    /// True when every output is >= 0 (all but `identity` and `silu`); required by the
    /// `sum` normalisation and by the attention denominator. Decided per
    /// case, so that a new map must say.
    public var isNonNegative: Bool {
        switch self {
        case .identity, .silu: return false
        case .elu1, .dpfp, .favor: return true
        }
    }

    /// True for `favor`, which needs a random matrix Omega `[M, d]`.
    public var needsOmega: Bool {
        if case .favor = self { return true }
        return false
    }

    /// Throws `FWError.invalidArgument` unless the map is defined for inputs
    /// of size `d >= 1`: `dpfp:N` needs 1 <= N <= 2d - 1, `favor:M` needs M >= 1,
    /// and Dphi (`outputSize`) must be at most `SizeLimits.maxExtent`.
    public func validate(inputSize d: Int) throws {
        guard d >= 1 else {
            throw FWError.invalidArgument("feature map \(self): input size must be >= 1, got \(d)")
        }
        switch self {
        case .identity, .silu, .elu1:
            return
        case let .dpfp(n):
            // n <= 2d - 1, written so that it cannot overflow: n / 2 < d.
            guard n >= 1 && n / 2 < d else {
                throw FWError.invalidArgument(
                    "feature map \(self): order must satisfy 1 <= N <= 2d - 1 for input size d = \(d)")
            }
        case let .favor(m):
            guard m >= 1 else {
                throw FWError.invalidArgument("feature map \(self): the number of features M must be >= 1")
            }
        }
        // Dphi is a BLAS size too (checked products: d and N may be huge).
        let factors: [Int]
        switch self {
        case .identity, .silu, .elu1: factors = [d]
        case let .dpfp(n): factors = [2, d, n]
        case let .favor(m): factors = [2, m]
        }
        let dphi = try SizeLimits.product(factors, "feature map \(self) at input size \(d)")
        guard dphi <= SizeLimits.maxExtent else {
            throw FWError.invalidArgument(
                "feature map \(self) at input size \(d): Dphi = \(dphi) exceeds \(SizeLimits.maxExtent), the largest size OpenBLAS takes")
        }
    }
}
