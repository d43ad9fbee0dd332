// Float64 references ("oracles") of the attention layers of FWModels:
// naive loops written from the formulas in FastWeightLayer's and
// SoftmaxAttentionLayer's doc comments (Attention.md). The fast weight op
// itself is the existing Float64 oracle `ReferenceFWP`.
import Foundation
import FastWeights

/// Float64 evaluations of `FastWeightLayer` and `SoftmaxAttentionLayer`.
public enum AttentionLayersReference {
    /// `p[n, outputs] = x[n, inputs] W^T` (no bias).
    static func project(_ x: [Double], _ w: [Double], n: Int, inputs: Int, outputs: Int) -> [Double] {
        var p = [Double](repeating: 0, count: n * outputs)
        for r in 0..<n {
            for o in 0..<outputs {
                var s = 0.0
                for i in 0..<inputs { s += x[r * inputs + i] * w[o * inputs + i] }
                p[r * outputs + o] = s
            }
        }
        return p
    }

    /// y `[B, T, D]` of a fast weight layer with weights `wqkv [P, D]`,
    /// `wout [D, H dv]` and (favor) `omega [M, dk]`:
    ///
    /// p = x Wqkv^T; a row is [q heads | k heads | v heads | beta logits];
    /// q, k scaled by dk^(-1/4) for favor; beta = 1 / (1 + exp(-logit));
    /// o = FWP(q, k, v, beta); y = [o_0 .. o_{H-1}] Wout^T.
    public static func fastWeightLayer(_ c: FastWeightLayerConfig, x: [Double], wqkv: [Double], wout: [Double],
                                       omega: [Double], B: Int, T: Int) -> [Double] {
        let (D, H, dk, dv) = (c.modelSize, c.heads, c.headSize, c.valueSize)
        let P = H * (2 * dk + dv) + (c.rule == .delta ? H : 0)
        let p = project(x, wqkv, n: B * T, inputs: D, outputs: P)
        var s = 1.0
        if case .favor = c.featureMap { s = pow(Double(dk), -0.25) }
        var q = [Double](repeating: 0, count: B * H * T * dk), k = q
        var v = [Double](repeating: 0, count: B * H * T * dv)
        var beta = [Double](repeating: 0, count: B * H * T)
        for b in 0..<B {
            for h in 0..<H {
                for t in 0..<T {
                    let row = (b * T + t) * P
                    let seq = (b * H + h) * T + t
                    for i in 0..<dk {
                        q[seq * dk + i] = s * p[row + h * dk + i]
                        k[seq * dk + i] = s * p[row + H * dk + h * dk + i]
                    }
                    for i in 0..<dv { v[seq * dv + i] = p[row + 2 * H * dk + h * dv + i] }
                    if c.rule == .delta { beta[seq] = 1 / (1 + exp(-p[row + H * (2 * dk + dv) + h])) }
                }
            }
        }
        let op = ReferenceFWP(rule: c.rule, map: c.featureMap, norm: c.normalization, denominator: c.denominator,
                              B: B, H: H, T: T, dk: dk, dv: dv)
        let o = op.evaluate(q: q, k: k, v: v, beta: beta, omega: omega, initialState: nil).y
        var merged = [Double](repeating: 0, count: B * T * H * dv)
        for b in 0..<B {
            for h in 0..<H {
                for t in 0..<T {
                    for i in 0..<dv { merged[(b * T + t) * H * dv + h * dv + i] = o[((b * H + h) * T + t) * dv + i] }
                }
            }
        }
        return project(merged, wout, n: B * T, inputs: H * dv, outputs: D)
    }

    /// y `[B, T, D]` of causal softmax attention with `wqkv [3 H dk, D]`, `wout [D, H dk]`:
    /// per head, y_i = sum_{j <= i} softmax_j(q_i . k_j / sqrt(dk)) v_j, then the output projection.
    public static func softmaxAttention(x: [Double], wqkv: [Double], wout: [Double],
                                        B: Int, T: Int, D: Int, H: Int, dk: Int) -> [Double] {
        let P = 3 * H * dk
        let p = project(x, wqkv, n: B * T, inputs: D, outputs: P)
        var merged = [Double](repeating: 0, count: B * T * H * dk)
        for b in 0..<B {
            for h in 0..<H {
                func vec(_ t: Int, _ block: Int) -> [Double] {
                    let base = (b * T + t) * P + block * H * dk + h * dk
                    return Array(p[base..<(base + dk)])
                }
                for i in 0..<T {
                    let qi = vec(i, 0)
                    var scores = [Double](repeating: 0, count: i + 1)
                    for j in 0...i {
                        let kj = vec(j, 1)
                        var d = 0.0
                        for a in 0..<dk { d += qi[a] * kj[a] }
                        scores[j] = d / Double(dk).squareRoot()
                    }
                    let m = scores.max()!
                    let e = scores.map { exp($0 - m) }
                    let z = e.reduce(0, +)
                    for j in 0...i {
                        let vj = vec(j, 2)
                        for a in 0..<dk { merged[(b * T + i) * H * dk + h * dk + a] += e[j] / z * vj[a] }
                    }
                }
            }
        }
        return project(merged, wout, n: B * T, inputs: H * dk, outputs: D)
    }
}
