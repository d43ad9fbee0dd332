// Float64 reference ("oracle") of the byte-level language model of
// FWModels/LanguageModel: naive loops written from the equations in
// CharLanguageModel's, LanguageModelBlock's and CarriedFastWeightLayer's doc
// comments, built on the layer, attention, feature-map and DeltaNet
// references (never on the Float32 code). The random draws of a training forward (dropout
// masks, FAVOR+'s Omega) are replayed from a copy of the generator in the
// model's documented order.
import Foundation
import FastWeights

/// Float64 evaluations of `CharLanguageModel`.
public enum LanguageModelReference {
    /// What a forward drew (or, in evaluation, used): per block Omega and the
    /// two dropout masks; nil masks are the identity.
    public struct Draws {
        public var embeddingMask: [Double]?
        public var omegas: [[Double]]
        public var mixerMasks: [[Double]?]
        public var feedForwardMasks: [[Double]?]
    }

    /// The carried state: per block S `[B, H, dv, Dphi]`, z `[B, H, Dphi]`
    /// (zeros for the delta rules) and the conv windows `[B, K-1, C]` (the
    /// DeltaNet mixers; empty otherwise).
    public struct State {
        public var S: [[Double]]
        public var z: [[Double]]
        public var conv: [[Double]]
        public var position: Int

        /// The model's state as Float64 arrays (zero z for mixers without the denominator).
        public init(_ s: LanguageModelState, config c: LanguageModelConfig) {
            S = s.fastWeights.map { $0.storage.asDouble }
            z = c.mixer.usesDenominator ? s.keySums.map { $0.storage.asDouble }
                : s.fastWeights.map { _ in [Double](repeating: 0, count: s.batchSize * c.heads * c.featureSize) }
            conv = s.convStates.map { $0.storage.asDouble }
            position = s.position
        }

        public init(S: [[Double]], z: [[Double]], conv: [[Double]] = [], position: Int) {
            self.S = S; self.z = z; self.conv = conv; self.position = position
        }
    }

    /// Replays the draws of one forward over `[B, T]` tokens: in training
    /// (p > 0 for masks) the embedding mask, then per block Omega (favor),
    /// the mixer mask and the feed-forward mask, each mask entry
    /// `uniform() >= p ? 1/(1-p) : 0`; in evaluation the model's fixed Omegas.
    public static func draws(_ model: CharLanguageModel, B: Int, T: Int, training: Bool,
                             rng: inout SeededRNG) throws -> Draws {
        let c = model.config
        let count = B * T * c.modelSize
        let p = Float(c.dropout)
        func mask(_ rng: inout SeededRNG) -> [Double]? {
            guard training, p > 0 else { return nil }
            let keep = Double(1 / (1 - p))
            return (0..<count).map { _ in rng.uniform() >= p ? keep : 0 }
        }
        var d = Draws(embeddingMask: mask(&rng), omegas: [], mixerMasks: [], feedForwardMasks: [])
        for block in model.blocks {
            var omega: [Double] = []
            if case let .fastWeights(layer) = block.mixer, case let .favor(m) = layer.featureMap {
                omega = training ? try FavorProjection.draw(features: m, inputSize: layer.headSize, rng: &rng).storage.asDouble
                                 : layer.evaluationOmega!.storage.asDouble
            }
            d.omegas.append(omega)
            d.mixerMasks.append(mask(&rng))
            d.feedForwardMasks.append(mask(&rng))
        }
        return d
    }

    /// `logits [B, T, 256]` (flat) and the state after the segment, for
    /// parameters looked up by name through `p` and the carried `state` (nil: zero).
    public static func forward(_ c: LanguageModelConfig, p: (String) -> [Double], tokens: [Int32], B: Int,
                               state: State?, draws: Draws) -> (logits: [Double], state: State) {
        let T = tokens.count / B, n = B * T
        let (D, F, V) = (c.modelSize, c.feedForwardSize, LanguageModelConfig.vocabularySize)
        let position = state?.position ?? 0
        // x_0 = Drop(sqrt(D) E[t] (+ PE[position + t])).
        let table = p("embedding.weight")
        var x = [Double](repeating: 0, count: n * D)
        for r in 0..<n {
            for j in 0..<D { x[r * D + j] = Double(D).squareRoot() * table[Int(tokens[r]) * D + j] }
        }
        if c.positionalEncoding {
            for b in 0..<B {
                for t in 0..<T {
                    for i in stride(from: 0, to: D, by: 2) {
                        let angle = Double(position + t) / Foundation.pow(10_000, Double(i) / Double(D))
                        x[(b * T + t) * D + i] += Foundation.sin(angle)
                        if i + 1 < D { x[(b * T + t) * D + i + 1] += Foundation.cos(angle) }
                    }
                }
            }
        }
        x = masked(x, draws.embeddingMask)
        var newS: [[Double]] = [], newZ: [[Double]] = [], newConv: [[Double]] = []
        for l in 0..<c.layers {
            let name = "block\(l)"
            let u = LayersReference.layerNorm(x, weight: p("\(name).ln1.weight"), bias: p("\(name).ln1.bias"), n: n, c: D)
            var m: [Double]
            if let dn = c.deltaNetConfig {
                let r = deltaNetMixer(dn, u, name: "\(name).mix", p: p, S0: state?.S[l], conv0: state?.conv[l], B: B, T: T)
                m = r.y
                newS.append(r.S)
                newZ.append([])
                newConv.append(r.conv)
            } else if c.mixer.carriesState {
                let r = fastWeightMixer(c, u, wqkv: p("\(name).mix.qkv.weight"), wout: p("\(name).mix.out.weight"),
                                        omega: draws.omegas[l], S0: state?.S[l], z0: state?.z[l], B: B, T: T)
                m = r.y
                newS.append(r.S)
                newZ.append(r.z)
            } else {
                m = AttentionLayersReference.softmaxAttention(x: u, wqkv: p("\(name).mix.qkv.weight"),
                                                              wout: p("\(name).mix.out.weight"),
                                                              B: B, T: T, D: D, H: c.heads, dk: c.headSize)
            }
            m = masked(m, draws.mixerMasks[l])
            let h = zip(x, m).map { $0 + $1 }
            let w = LayersReference.layerNorm(h, weight: p("\(name).ln2.weight"), bias: p("\(name).ln2.bias"), n: n, c: D)
            let f = masked(TransformerReference.feedForward(w, name: "\(name).ff", p: p, n: n, modelSize: D, hiddenSize: F),
                           draws.feedForwardMasks[l])
            x = zip(h, f).map { $0 + $1 }
        }
        let hidden = LayersReference.layerNorm(x, weight: p("final_ln.weight"), bias: p("final_ln.bias"), n: n, c: D)
        let weight = c.tiedEmbeddings ? table : p("head.weight")
        let logits = LayersReference.linear(hidden, weight: weight, bias: p("head.bias"), n: n, inputs: D, outputs: V)
        return (logits, State(S: newS, z: newZ, conv: newConv, position: position + T))
    }

    /// The DeltaNet mixer of one block (`DeltaNetReference.layer`), with the
    /// model's conv windows `[B, K-1, 2 H dk + H dv]` split into (and the
    /// final ones joined from) the layer's q, k, v conv states.
    static func deltaNetMixer(_ c: DeltaNetLayerConfig, _ x: [Double], name: String, p: (String) -> [Double],
                              S0: [Double]?, conv0: [Double]?, B: Int, T: Int) -> (y: [Double], S: [Double], conv: [Double]) {
        let (H, dk, dv, h) = (c.heads, c.headSize, c.valueSize, c.convolutionSize - 1)
        let (cq, cv) = (H * dk, H * dv), C = 2 * cq + cv
        var state: DeltaNetReference.State? = nil
        if let S0, let conv0 {
            var q: [Double] = [], k: [Double] = [], v: [Double] = []
            for r in 0..<(B * h) {
                q += conv0[(r * C)..<(r * C + cq)]
                k += conv0[(r * C + cq)..<(r * C + 2 * cq)]
                v += conv0[(r * C + 2 * cq)..<((r + 1) * C)]
            }
            state = DeltaNetReference.State(S: S0, q: q, k: k, v: v)
        }
        let r = DeltaNetReference.layer(c, name: name, x: x, param: p, state: state, B: B, T: T)
        var conv: [Double] = []
        for i in 0..<(B * h) {
            conv += r.state.q[(i * cq)..<((i + 1) * cq)]
            conv += r.state.k[(i * cq)..<((i + 1) * cq)]
            conv += r.state.v[(i * cv)..<((i + 1) * cv)]
        }
        return (r.y, r.state.S, conv)
    }

    /// The fast-weight mixer of one block, `y [B, T, D]`, and its final S, z:
    /// q, k, v, beta from x Wqkv^T; per (b, h) the recurrence from (S_0, z_0):
    /// sum `S += v k'^T`, delta `S += beta (v - S k') k'^T`; `z += k'`;
    /// `o = S q'` (/ (z . q' + 1e-5) for the sum-rule mixers); `y = (c o) Wout^T`.
    public static func fastWeightMixer(_ c: LanguageModelConfig, _ x: [Double], wqkv: [Double], wout: [Double],
                                       omega: [Double], S0: [Double]?, z0: [Double]?, B: Int, T: Int)
        -> (y: [Double], S: [Double], z: [Double]) {
        let (D, H, dk) = (c.modelSize, c.heads, c.headSize)
        let map = c.featureMap!, norm = c.featureNormalization, dphi = c.featureSize
        let delta = c.mixer.rule == .delta, den = c.mixer.usesDenominator
        let P = 3 * D + (delta ? H : 0)
        let scale = 1 / Double(dk).squareRoot()
        let proj = LayersReference.linear(x, weight: wqkv, bias: nil, n: B * T, inputs: D, outputs: P)
        var merged = [Double](repeating: 0, count: B * T * D)
        var Sout = [Double](repeating: 0, count: B * H * dk * dphi), zout = [Double](repeating: 0, count: B * H * dphi)
        for b in 0..<B {
            for h in 0..<H {
                let s = b * H + h
                var S = S0.map { Array($0[(s * dk * dphi)..<((s + 1) * dk * dphi)]) } ?? [Double](repeating: 0, count: dk * dphi)
                var z = z0.map { Array($0[(s * dphi)..<((s + 1) * dphi)]) } ?? [Double](repeating: 0, count: dphi)
                for t in 0..<T {
                    let row = (b * T + t) * P
                    let q = Array(proj[(row + h * dk)..<(row + h * dk + dk)])
                    let k = Array(proj[(row + D + h * dk)..<(row + D + h * dk + dk)])
                    let v = Array(proj[(row + 2 * D + h * dk)..<(row + 2 * D + h * dk + dk)])
                    let qf = FeatureMapsReference.normalize(FeatureMapsReference.phi(map, q, omega: omega), norm)
                    let kf = FeatureMapsReference.normalize(FeatureMapsReference.phi(map, k, omega: omega), norm)
                    if delta {
                        let beta = 1 / (1 + Foundation.exp(-proj[row + 3 * D + h]))
                        for i in 0..<dk {
                            var vbar = 0.0
                            for j in 0..<dphi { vbar += S[i * dphi + j] * kf[j] }
                            for j in 0..<dphi { S[i * dphi + j] += beta * (v[i] - vbar) * kf[j] }
                        }
                    } else {
                        for i in 0..<dk { for j in 0..<dphi { S[i * dphi + j] += v[i] * kf[j] } }
                    }
                    for j in 0..<dphi { z[j] += kf[j] }
                    var divisor = 1.0
                    if den {
                        divisor = 1e-5
                        for j in 0..<dphi { divisor += z[j] * qf[j] }
                    }
                    for i in 0..<dk {
                        var o = 0.0
                        for j in 0..<dphi { o += S[i * dphi + j] * qf[j] }
                        merged[(b * T + t) * D + h * dk + i] = scale * o / divisor
                    }
                }
                for i in 0..<(dk * dphi) { Sout[s * dk * dphi + i] = S[i] }
                for j in 0..<dphi { zout[s * dphi + j] = z[j] }
            }
        }
        let y = LayersReference.linear(merged, weight: wout, bias: nil, n: B * T, inputs: D, outputs: D)
        return (y, Sout, zout)
    }

    /// `x * mask` entrywise, or x for nil.
    static func masked(_ x: [Double], _ mask: [Double]?) -> [Double] {
        guard let mask else { return x }
        return zip(x, mask).map { $0 * $1 }
    }
}
