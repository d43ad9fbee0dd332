// Float64 references ("oracles") for the Transformer pieces of FWModels
// (Layers/Transformer): naive loops straight from the equations in
// Transformer.md, built on the Float64 layer references (LayersReference),
// never on the Float32 code.
import Foundation
import FWModels

/// Float64 references of the feed-forward network, positional encoding,
/// blocks and the whole Transformer model. Parameters are looked up by name
/// through `p` (e.g. `"block0.ln1.weight"`); sequences are `[B, T, D]` row-major.
public enum TransformerReference {
    /// `relu(x W1^T + b1) W2^T + b2` per row of `x [n, D]`, with the
    /// parameters `<name>.up.*` `[F, D]`, `[F]` and `<name>.down.*` `[D, F]`, `[D]`.
    public static func feedForward(_ x: [Double], name: String, p: (String) -> [Double],
                                   n: Int, modelSize D: Int, hiddenSize F: Int) -> [Double] {
        var z = [Double](repeating: 0, count: n * F)
        let w1 = p("\(name).up.weight"), b1 = p("\(name).up.bias")
        for i in 0..<n {
            for f in 0..<F {
                var s = b1[f]
                for d in 0..<D { s += w1[f * D + d] * x[i * D + d] }
                z[i * F + f] = max(s, 0)
            }
        }
        return LayersReference.linear(z, weight: p("\(name).down.weight"), bias: p("\(name).down.bias"),
                                      n: n, inputs: F, outputs: D)
    }

    /// `PE[t, j] = sin(t / 10000^(2i/D))` for j = 2i, `cos(...)` for j = 2i + 1; `[T, D]`.
    public static func positionalEncoding(length T: Int, dimensions D: Int) -> [Double] {
        var pe = [Double](repeating: 0, count: T * D)
        for t in 0..<T {
            for i in stride(from: 0, to: D, by: 2) {
                let angle = Double(t) / Foundation.pow(10_000, Double(i) / Double(D))
                pe[t * D + i] = Foundation.sin(angle)
                if i + 1 < D { pe[t * D + i + 1] = Foundation.cos(angle) }
            }
        }
        return pe
    }

    /// The tests' causal mixer: `y[b, t] = W * mean_{s <= t} x[b, s]` with `W [D, D]`.
    public static func causalMeanMixer(_ x: [Double], weight w: [Double], batch B: Int, length T: Int, modelSize D: Int) -> [Double] {
        var y = [Double](repeating: 0, count: B * T * D)
        for b in 0..<B {
            for t in 0..<T {
                var mean = [Double](repeating: 0, count: D)
                for s in 0...t {
                    for d in 0..<D { mean[d] += x[(b * T + s) * D + d] / Double(t + 1) }
                }
                for o in 0..<D {
                    var acc = 0.0
                    for d in 0..<D { acc += w[o * D + d] * mean[d] }
                    y[(b * T + t) * D + o] = acc
                }
            }
        }
        return y
    }

    /// One pre-norm block: `h = x + mixer(LN1(x))`, `y = h + FF(LN2(h))`,
    /// parameters `<name>.ln1.*`, `<name>.ln2.*`, `<name>.ff.*`.
    public static func block(_ x: [Double], name: String, p: (String) -> [Double],
                             batch B: Int, length T: Int, modelSize D: Int, feedForwardSize F: Int,
                             mixer: ([Double]) -> [Double]) -> [Double] {
        let n = B * T
        let u = LayersReference.layerNorm(x, weight: p("\(name).ln1.weight"), bias: p("\(name).ln1.bias"), n: n, c: D)
        let m = mixer(u)
        let h = zip(x, m).map { $0 + $1 }
        let w = LayersReference.layerNorm(h, weight: p("\(name).ln2.weight"), bias: p("\(name).ln2.bias"), n: n, c: D)
        let f = feedForward(w, name: "\(name).ff", p: p, n: n, modelSize: D, hiddenSize: F)
        return zip(h, f).map { $0 + $1 }
    }

    /// The model's head output `[B, T, O]`: embedding (+ PE), `layers` blocks
    /// `block<l>` (mixer `mixer(l, u)`), final LN, head.
    public static func modelOutputs(tokens: [Int32], p: (String) -> [Double], batch B: Int,
                                    modelSize D: Int, feedForwardSize F: Int, outputSize O: Int,
                                    layers: Int, positionalEncoding: Bool,
                                    mixer: (Int, [Double]) -> [Double]) -> [Double] {
        let T = tokens.count / B
        var x = LayersReference.embedding(p("embedding.weight"), ids: tokens, dimensions: D)
        if positionalEncoding {
            let pe = self.positionalEncoding(length: T, dimensions: D)
            for i in 0..<x.count { x[i] += pe[i % (T * D)] }
        }
        for l in 0..<layers {
            x = block(x, name: "block\(l)", p: p, batch: B, length: T, modelSize: D, feedForwardSize: F) { mixer(l, $0) }
        }
        let hidden = LayersReference.layerNorm(x, weight: p("final_ln.weight"), bias: p("final_ln.bias"), n: B * T, c: D)
        return LayersReference.linear(hidden, weight: p("head.weight"), bias: p("head.bias"), n: B * T, inputs: D, outputs: O)
    }

    /// Rows `out[:, T-1, :]` of a `[B, T, O]` array, as `[B, O]`.
    public static func lastPositions(_ out: [Double], batch B: Int, length T: Int, width O: Int) -> [Double] {
        var last: [Double] = []
        for b in 0..<B { last += out[((b * T + T - 1) * O)..<((b * T + T) * O)] }
        return last
    }
}
