// A Float64 evaluation of the DeltaNet / Gated DeltaNet layer and of each of
// its pieces, written from FLA's definitions as plain loops, independent of
// the engine (no ReferenceFWP, no layer code): the oracle for the forward and,
// by central finite differences, for every gradient. Flat row-major arrays.
import Foundation
import FastWeights

/// Float64 evaluations of `DeltaNetLayer` and its pieces.
public enum DeltaNetReference {
    public static func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }
    public static func silu(_ x: Double) -> Double { x * sigmoid(x) }
    public static func softplus(_ x: Double) -> Double { log1p(exp(x)) }

    /// y = silu(sum_j w[c, j] x[b, t-(K-1)+j, c]) `[B, T, C]` and the final
    /// state `[B, K-1, C]`; x at t < 0 from `state` (zeros when nil).
    public static func shortConvolution(_ x: [Double], weight w: [Double], state: [Double]?,
                                 B: Int, T: Int, C: Int, K: Int) -> (y: [Double], state: [Double]) {
        let h = K - 1
        // The extended sequence [state; x] per b, length h + T.
        func ext(_ b: Int, _ i: Int, _ c: Int) -> Double {
            i >= h ? x[(b * T + i - h) * C + c] : (state?[(b * h + i) * C + c] ?? 0)
        }
        var y = [Double](repeating: 0, count: B * T * C), final = [Double](repeating: 0, count: B * h * C)
        for b in 0..<B {
            for t in 0..<T {
                for c in 0..<C {
                    var u = 0.0
                    for j in 0..<K { u += w[c * K + j] * ext(b, t + j, c) }
                    y[(b * T + t) * C + c] = silu(u)
                }
            }
            for s in 0..<h { for c in 0..<C { final[(b * h + s) * C + c] = ext(b, T + s, c) } }
        }
        return (y, final)
    }

    /// u / sqrt(sum u^2 + 1e-6), per row of width d.
    public static func l2(_ u: [Double], d: Int) -> [Double] {
        var out = u
        for r in 0..<(u.count / d) {
            let s = (0..<d).reduce(0.0) { $0 + u[r * d + $1] * u[r * d + $1] }
            for i in 0..<d { out[r * d + i] = u[r * d + i] / (s + 1e-6).squareRoot() }
        }
        return out
    }

    /// g[b, h, t] = -exp(A_log[h]) softplus(z[b, h, t] + dt_bias[h]), z `[B, H, T]`.
    public static func decay(_ z: [Double], aLog: [Double], dtBias: [Double], H: Int, T: Int) -> [Double] {
        z.indices.map { i in let h = (i / T) % H; return -exp(aLog[h]) * softplus(z[i] + dtBias[h]) }
    }

    /// o / sqrt(mean(o^2) + eps) * w (* silu(z)), per row of width c.
    public static func rmsNorm(_ o: [Double], weight w: [Double], gate z: [Double]?, c: Int, eps: Double) -> [Double] {
        var out = o
        for r in 0..<(o.count / c) {
            let ms = (0..<c).reduce(0.0) { $0 + o[r * c + $1] * o[r * c + $1] } / Double(c)
            for j in 0..<c {
                let i = r * c + j
                out[i] = o[i] / (ms + eps).squareRoot() * w[j] * (z.map { silu($0[i]) } ?? 1)
            }
        }
        return out
    }

    /// out = inp W^T, `[n, outputs]`.
    public static func linear(_ inp: [Double], _ w: [Double], n: Int, inputs: Int, outputs: Int) -> [Double] {
        LayersReference.linear(inp, weight: w, bias: nil, n: n, inputs: inputs, outputs: outputs)
    }

    /// The layer's carried state, flat: S `[B, H, dv, dk]`, conv states `[B, K-1, C]`.
    public struct State {
        public var S: [Double], q: [Double], k: [Double], v: [Double]
        public init(S: [Double], q: [Double], k: [Double], v: [Double]) { self.S = S; self.q = q; self.k = k; self.v = v }
    }

    /// The whole layer: y `[B, T, D]` and the final state, with parameters
    /// by their store names (`param("dn.proj.weight")`, ...).
    public static func layer(_ c: DeltaNetLayerConfig, name: String, x: [Double], param: (String) -> [Double],
                      state: State?, B: Int, T: Int) -> (y: [Double], state: State) {
        let (D, H, dk, dv, K) = (c.modelSize, c.heads, c.headSize, c.valueSize, c.convolutionSize)
        let n = B * T
        // Projections, one per block (the engine fuses them; the reference slices the rows of Wproj).
        let wp = param("\(name).proj.weight")
        func project(_ column: Int, _ width: Int) -> [Double] {
            linear(x, Array(wp[(column * D)..<((column + width) * D)]), n: n, inputs: D, outputs: width)
        }
        let qc = shortConvolution(project(c.queryColumn, H * dk), weight: param("\(name).q_conv.weight"),
                                  state: state?.q, B: B, T: T, C: H * dk, K: K)
        let kc = shortConvolution(project(c.keyColumn, H * dk), weight: param("\(name).k_conv.weight"),
                                  state: state?.k, B: B, T: T, C: H * dk, K: K)
        let vc = shortConvolution(project(c.valueColumn, H * dv), weight: param("\(name).v_conv.weight"),
                                  state: state?.v, B: B, T: T, C: H * dv, K: K)
        let qn = l2(qc.y, d: dk), kn = l2(kc.y, d: dk)   // per head: rows of dk inside [n, H dk]
        let bLogits = project(c.betaColumn, H)          // [n, H]
        let aLogits = c.gated ? project(c.decayColumn, H) : []
        let gLogits = c.outputGate ? project(c.gateColumn, H * dv) : []
        let m = c.negativeEigenvalues ? 2.0 : 1.0
        let scale = 1 / Double(dk).squareRoot()
        var S = state?.S ?? [Double](repeating: 0, count: B * H * dv * dk)
        var o = [Double](repeating: 0, count: n * H * dv)   // [B, T, H, dv]
        for b in 0..<B {
            for h in 0..<H {
                let s0 = (b * H + h) * dv * dk
                for t in 0..<T {
                    let r = b * T + t
                    let kt = (0..<dk).map { kn[r * H * dk + h * dk + $0] }
                    let qt = (0..<dk).map { qn[r * H * dk + h * dk + $0] * scale }
                    let vt = (0..<dv).map { vc.y[r * H * dv + h * dv + $0] }
                    let beta = m * sigmoid(bLogits[r * H + h])
                    let a = c.gated
                        ? exp(-exp(param("\(name).A_log")[h]) * softplus(aLogits[r * H + h] + param("\(name).dt_bias")[h]))
                        : 1
                    // S_t = a S_{t-1} (I - beta k k^T) + beta v k^T.
                    var Sk = [Double](repeating: 0, count: dv)
                    for i in 0..<dv { for j in 0..<dk { Sk[i] += S[s0 + i * dk + j] * kt[j] } }
                    for i in 0..<dv {
                        for j in 0..<dk {
                            S[s0 + i * dk + j] = a * (S[s0 + i * dk + j] - beta * Sk[i] * kt[j]) + beta * vt[i] * kt[j]
                        }
                    }
                    // o_t = S_t q_t.
                    for i in 0..<dv {
                        var acc = 0.0
                        for j in 0..<dk { acc += S[s0 + i * dk + j] * qt[j] }
                        o[r * H * dv + h * dv + i] = acc
                    }
                }
            }
        }
        let normed = rmsNorm(o, weight: param("\(name).o_norm.weight"), gate: c.outputGate ? gLogits : nil,
                             c: dv, eps: Double(c.normEpsilon))
        let y = linear(normed, param("\(name).out.weight"), n: n, inputs: H * dv, outputs: D)
        return (y, State(S: S, q: qc.state, k: kc.state, v: vc.state))
    }
}
