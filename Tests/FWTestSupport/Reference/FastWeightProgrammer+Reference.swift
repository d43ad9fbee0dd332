import Foundation
import FastWeights

/// A Float64 evaluation of the whole fast weight programmer op, written from
/// docs/contract.md sections 2-4 as plain loops: the oracle for `FastWeightProgrammer`
/// (and, by central finite differences, for its gradients).
///
/// All arrays are flat row-major Float64 in the contract layouts: q, k
/// `[B, H, T, Dk]`, v `[B, H, T, Dv]`, beta and g `[B, H, T]`, omega `[M, Dk]`,
/// states `[B, H, Dv, Dphi]`.
public struct ReferenceFWP {
    public var rule: FastWeightRule
    public var map: FeatureMap
    public var norm: FeatureNormalization
    public var denominator: Bool
    public var B: Int, H: Int, T: Int, dk: Int, dv: Int

    public init(rule: FastWeightRule, map: FeatureMap, norm: FeatureNormalization, denominator: Bool,
                B: Int, H: Int, T: Int, dk: Int, dv: Int) {
        self.rule = rule; self.map = map; self.norm = norm; self.denominator = denominator
        self.B = B; self.H = H; self.T = T; self.dk = dk; self.dv = dv
    }

    public var dphi: Int { map.outputSize(inputSize: dk) }

    /// n(phi(x)) of one vector (docs/contract.md sections 2-3), from the feature-map oracle.
    func features(_ x: [Double], omega: [Double]) -> [Double] {
        FeatureMapsReference.normalize(FeatureMapsReference.phi(map, x, omega: omega), norm)
    }

    /// y `[B, H, T, Dv]` and S_T `[B, H, Dv, Dphi]`.
    public func evaluate(q: [Double], k: [Double], v: [Double], beta: [Double], g: [Double] = [], omega: [Double],
                         initialState: [Double]?) -> (y: [Double], state: [Double]) {
        let P = dphi
        var y = [Double](repeating: 0, count: B * H * T * dv)
        var finalState = [Double](repeating: 0, count: B * H * dv * P)
        for s in 0..<(B * H) {
            // S is Dv x Dphi, z is Dphi.
            var S = initialState.map { Array($0[(s * dv * P)..<((s + 1) * dv * P)]) } ?? [Double](repeating: 0, count: dv * P)
            var z = [Double](repeating: 0, count: P)
            for t in 0..<T {
                let row = s * T + t
                let kt = features(Array(k[(row * dk)..<((row + 1) * dk)]), omega: omega)
                let qt = features(Array(q[(row * dk)..<((row + 1) * dk)]), omega: omega)
                let vt = Array(v[(row * dv)..<((row + 1) * dv)])
                // Section 4b: the gated rules decay the state first (a_t = exp(g_t)).
                if rule == .gatedSum || rule == .gatedDelta {
                    let a = Foundation.exp(g[row])
                    for i in 0..<(dv * P) { S[i] *= a }
                }
                switch rule {
                case .sum, .gatedSum:
                    for i in 0..<dv { for j in 0..<P { S[i * P + j] += vt[i] * kt[j] } }
                case .delta, .gatedDelta:
                    let b = beta[row]
                    var vbar = [Double](repeating: 0, count: dv)
                    for i in 0..<dv { for j in 0..<P { vbar[i] += S[i * P + j] * kt[j] } }
                    for i in 0..<dv { for j in 0..<P { S[i * P + j] += b * (vt[i] - vbar[i]) * kt[j] } }
                }
                for j in 0..<P { z[j] += kt[j] }
                var den = 1.0
                if denominator {
                    den = 1e-6
                    for j in 0..<P { den += z[j] * qt[j] }
                }
                for i in 0..<dv {
                    var o = 0.0
                    for j in 0..<P { o += S[i * P + j] * qt[j] }
                    y[row * dv + i] = o / den
                }
            }
            for i in 0..<(dv * P) { finalState[s * dv * P + i] = S[i] }
        }
        return (y, finalState)
    }

    /// The scalar `<dy, y> + <dS_T, S_T>` whose gradients the op's backward returns.
    public func loss(q: [Double], k: [Double], v: [Double], beta: [Double], g: [Double] = [], omega: [Double],
                     initialState: [Double]?, dy: [Double], dstate: [Double]?) -> Double {
        let (y, s) = evaluate(q: q, k: k, v: v, beta: beta, g: g, omega: omega, initialState: initialState)
        return dot(dy, y) + (dstate.map { dot($0, s) } ?? 0)
    }
}
