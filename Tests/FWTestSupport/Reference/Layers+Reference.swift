// Float64 references ("oracles") for the layers and losses of FWModels:
// naive loops straight from the formulas in the layers' doc comments, kept
// independent of the Float32 code (no BLAS, no shared helpers).
import Foundation
import FWModels

/// Float64 references of FWModels' layers and losses (row-major, `n` rows).
public enum LayersReference {
    /// `y[n, outputs] = x[n, inputs] W^T + b` with `W [outputs, inputs]`.
    public static func linear(_ x: [Double], weight w: [Double], bias b: [Double]?,
                              n: Int, inputs: Int, outputs: Int) -> [Double] {
        var y = [Double](repeating: 0, count: n * outputs)
        for i in 0..<n {
            for o in 0..<outputs {
                var s = b?[o] ?? 0
                for k in 0..<inputs { s += x[i * inputs + k] * w[o * inputs + k] }
                y[i * outputs + o] = s
            }
        }
        return y
    }

    /// `out[i, :] = table[ids[i], :]`.
    public static func embedding(_ table: [Double], ids: [Int32], dimensions d: Int) -> [Double] {
        var out: [Double] = []
        for id in ids { out += table[(Int(id) * d)..<(Int(id) * d + d)] }
        return out
    }

    /// `weight * (x - mean) / sqrt(var + 1e-5) + bias` per row, variance with divisor c.
    public static func layerNorm(_ x: [Double], weight: [Double], bias: [Double], n: Int, c: Int) -> [Double] {
        var y = [Double](repeating: 0, count: n * c)
        for i in 0..<n {
            let row = Array(x[(i * c)..<(i * c + c)])
            let mean = row.reduce(0, +) / Double(c)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(c)
            for j in 0..<c { y[i * c + j] = weight[j] * (row[j] - mean) / (variance + 1e-5).squareRoot() + bias[j] }
        }
        return y
    }

    /// relu, tanh or sigmoid, elementwise.
    public static func activation(_ f: ActivationFunction, _ x: [Double]) -> [Double] {
        switch f {
        case .relu: return x.map { max($0, 0) }
        case .tanh: return x.map { Foundation.tanh($0) }
        case .sigmoid: return x.map { 1 / (1 + Foundation.exp(-$0)) }
        }
    }

    /// `-(1/n) sum_i log softmax(logits[i])[targets[i]]`.
    public static func softmaxCrossEntropy(_ logits: [Double], targets: [Int32], classes: Int) -> Double {
        let n = targets.count
        var total = 0.0
        for i in 0..<n {
            let row = Array(logits[(i * classes)..<(i * classes + classes)])
            let m = row.max()!
            let logSum = Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +)) + m
            total += logSum - row[Int(targets[i])]
        }
        return total / Double(n)
    }

    /// `(1/n) sum_i 0.5 ||target_i - y_i||^2`.
    public static func squaredError(_ y: [Double], target: [Double], n: Int) -> Double {
        var s = 0.0
        for i in 0..<y.count { s += 0.5 * (target[i] - y[i]) * (target[i] - y[i]) }
        return s / Double(n)
    }
}
