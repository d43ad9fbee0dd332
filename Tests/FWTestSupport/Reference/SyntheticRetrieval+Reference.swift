import FastWeights
import Foundation

/// Float64 reference of `SyntheticRetrievalModel`'s loss, written from the
/// model's doc comment with naive loops. The sum rule and the delta rule
/// build the fast weight matrix W [S, p] explicitly, token by token (the
/// model reads the sum rule through scores instead), so agreement also
/// checks that the two forms are the same function.
public struct SyntheticRetrievalReference {
    public let size: Int, keySize: Int, embedding: Int
    public let reader: SyntheticReader
    public let slices: [ParameterSlice]

    public init(size: Int, keySize: Int, embedding: Int, reader: SyntheticReader, slices: [ParameterSlice]) {
        self.size = size
        self.keySize = keySize
        self.embedding = embedding
        self.reader = reader
        self.slices = slices
    }

    func param(_ p: [Double], _ name: String) -> [Double] {
        let s = slices.first { $0.name == name }!
        return Array(p[s.range])
    }

    /// The outputs y `[Q][S]` for every query of `batch`.
    public func outputs(_ p: [Double], batch: SyntheticRetrievalTask.Batch, omega: [Double]?) -> [[Double]] {
        let (S, d, e) = (size, keySize, embedding)
        let E = param(p, "key_embedding"), table = param(p, "key.value_table")
        let wk = param(p, "key.embedding_weight"), bk = param(p, "key.bias")
        let wq = param(p, "query.weight"), bq = param(p, "query.bias")
        var scale = 1.0
        if case .favor? = reader.featureMap { scale = pow(Double(d), -0.25) }
        let N = batch.count, L = batch.keys.count / N
        func key(_ r: Int) -> [Double] {
            let k = Int(batch.keys[r]), v = Int(batch.values[r])
            return (0..<d).map { c in
                var s = table[v * d + c] + bk[c]
                for i in 0..<e { s += wk[c * e + i] * E[k * e + i] }
                return scale * s
            }
        }
        func query(_ j: Int) -> [Double] {
            let q = Int(batch.queries[j])
            return (0..<d).map { c in
                var s = bq[c]
                for i in 0..<e { s += wq[c * e + i] * E[q * e + i] }
                return scale * s
            }
        }
        var ys: [[Double]] = []
        for n in 0..<N {
            let keys = (0..<L).map { key(n * L + $0) }
            let values = (0..<L).map { Int(batch.values[n * L + $0]) }
            for j in batch.queryStart[n]..<batch.queryStart[n + 1] {
                let q = query(j)
                var y = [Double](repeating: 0, count: S)
                switch reader {
                case .softmax:
                    let s = keys.map { k in zip(k, q).map(*).reduce(0, +) / Double(d).squareRoot() }
                    let m = s.max()!
                    let w = s.map { exp($0 - m) }
                    let z = w.reduce(0, +)
                    for t in 0..<L { y[values[t]] += w[t] / z }
                case let .sumRule(phi):
                    // W = sum_t v_t k'_t^T, z = sum_t k'_t; y = W q' / (z . q' + 1e-6).
                    let qf = FeatureMapsReference.phi(phi, q, omega: omega)
                    let pdim = qf.count
                    var W = [Double](repeating: 0, count: S * pdim), z = [Double](repeating: 0, count: pdim)
                    for t in 0..<L {
                        let kf = FeatureMapsReference.phi(phi, keys[t], omega: omega)
                        for c in 0..<pdim { W[values[t] * pdim + c] += kf[c]; z[c] += kf[c] }
                    }
                    let den = zip(z, qf).map(*).reduce(0, +) + 1e-6
                    for r in 0..<S { y[r] = (0..<pdim).map { W[r * pdim + $0] * qf[$0] }.reduce(0, +) / den }
                case let .deltaRule(phi):
                    let wb = param(p, "beta.embedding_weight"), bt = param(p, "beta.value_table"), bb = param(p, "beta.bias")
                    let qf = FeatureMapsReference.normalize(FeatureMapsReference.phi(phi, q, omega: omega), .sum)
                    let pdim = qf.count
                    var W = [Double](repeating: 0, count: S * pdim)
                    for t in 0..<L {
                        let r = n * L + t
                        let kf = FeatureMapsReference.normalize(FeatureMapsReference.phi(phi, keys[t], omega: omega), .sum)
                        var pre = bt[values[t]] + bb[0]
                        for i in 0..<e { pre += wb[i] * E[Int(batch.keys[r]) * e + i] }
                        let beta = 1 / (1 + exp(-pre))
                        let vbar = (0..<S).map { row in (0..<pdim).map { W[row * pdim + $0] * kf[$0] }.reduce(0, +) }
                        for row in 0..<S {
                            let target = row == values[t] ? 1.0 : 0.0
                            for c in 0..<pdim { W[row * pdim + c] += beta * (target - vbar[row]) * kf[c] }
                        }
                    }
                    for r in 0..<S { y[r] = (0..<pdim).map { W[r * pdim + $0] * qf[$0] }.reduce(0, +) }
                }
                ys.append(y)
            }
        }
        return ys
    }

    /// mean over queries of 0.5 ||onehot(target) - y||^2.
    public func loss(_ p: [Double], batch: SyntheticRetrievalTask.Batch, omega: [Double]?) -> Double {
        let ys = outputs(p, batch: batch, omega: omega)
        var total = 0.0
        for (j, y) in ys.enumerated() {
            for (c, v) in y.enumerated() {
                let diff = v - (c == Int(batch.targets[j]) ? 1 : 0)
                total += 0.5 * diff * diff
            }
        }
        return total / Double(ys.count)
    }
}
