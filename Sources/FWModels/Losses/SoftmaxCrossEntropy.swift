#if canImport(Glibc)
import Glibc
#endif
import FWCore

/// Softmax followed by the cross-entropy against integer targets, averaged
/// over `n` rows of `classes` logits:
///
/// ```
/// probs[i, :] = softmax(logits[i, :])          (max subtracted: exact, no overflow)
/// loss        = -(1/n) sum_i log probs[i, targets[i]]
/// correct     = #{ i : argmax_j logits[i, j] == targets[i] }   (first maximum on ties)
/// dlogits    += dloss * (probs - onehot(targets)) / n
/// ```
///
/// Targets are `Int32` in `0..<classes` (the raw functions stop on one out of
/// range; the Tensor-level forward throws).
public enum SoftmaxCrossEntropy {
    /// Writes `probs [n, classes]`; returns the mean loss and the number of
    /// rows whose argmax is the target.
    @discardableResult
    public static func forward(probs: UnsafeMutablePointer<Float>,
                               logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                               n: Int, classes: Int) -> (loss: Float, correct: Int) {
        precondition(classes > 0, "SoftmaxCrossEntropy: no classes")
        var total = 0.0
        var correct = 0
        for i in 0..<n {
            let z = logits + i * classes
            let p = probs + i * classes
            let t = Int(targets[i])
            precondition(t >= 0 && t < classes, "SoftmaxCrossEntropy: target \(t) at row \(i) outside 0..<\(classes)")
            var best = 0
            for j in 1..<classes where z[j] > z[best] { best = j }
            if best == t { correct += 1 }
            let zmax = z[best]
            let sum = VectorExp.expSum(z, minus: zmax, into: p, count: classes)
            let inv = 1 / sum
            for j in 0..<classes { p[j] *= inv }
            // -log p_t = log(sum) - (z_t - zmax): no log of a probability that underflowed.
            total += Double(logf(sum)) - Double(z[t] - zmax)
        }
        return (n > 0 ? Float(total / Double(n)) : 0, correct)
    }

    /// `dlogits += dloss * (probs - onehot(targets)) / n`.
    public static func backward(dlogits: UnsafeMutablePointer<Float>,
                                probs: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                n: Int, classes: Int, dloss: Float = 1) {
        if n == 0 { return }
        let scale = dloss / Float(n)
        for i in 0..<n {
            let p = probs + i * classes
            let d = dlogits + i * classes
            let t = Int(targets[i])
            precondition(t >= 0 && t < classes, "SoftmaxCrossEntropy: target \(t) at row \(i) outside 0..<\(classes)")
            for j in 0..<classes { d[j] += scale * p[j] }
            d[t] -= scale
        }
    }

    /// The Tensor-level forward's result.
    public struct Output: Sendable {
        /// Mean cross-entropy over the rows.
        public var loss: Float
        /// Rows whose argmax is the target.
        public var correct: Int
        /// Number of rows.
        public var count: Int
        /// `softmax(logits)`, same shape as the logits (the backward needs it).
        public var probabilities: Tensor
        /// `correct / count` (0 for no rows).
        public var accuracy: Float { count > 0 ? Float(correct) / Float(count) : 0 }
    }

    /// Loss, count correct and probabilities for `logits [..., classes]` and
    /// one target per row (`targets.count` = number of rows).
    public static func forward(logits: Tensor, targets: [Int32]) throws -> Output {
        guard logits.rank >= 1, let classes = logits.shape.last, classes > 0 else {
            throw FWError.shapeMismatch(tensor: "logits", expected: "[..., classes]", got: logits.shape)
        }
        let n = logits.count / classes
        guard targets.count == n else {
            throw FWError.invalidArgument("SoftmaxCrossEntropy: \(targets.count) targets for \(n) rows of logits \(describeShape(logits.shape))")
        }
        if let i = targets.firstIndex(where: { $0 < 0 || Int($0) >= classes }) {
            throw FWError.invalidArgument("SoftmaxCrossEntropy: target \(targets[i]) at row \(i) outside 0..<\(classes)")
        }
        var probs = Tensor(shape: logits.shape)
        if n == 0 { return Output(loss: 0, correct: 0, count: 0, probabilities: probs) }
        let (loss, correct) = logits.withUnsafeBufferPointer { lb in
            targets.withUnsafeBufferPointer { tb in
                probs.withUnsafeMutableBufferPointer { pb in
                    forward(probs: pb.baseAddress!, logits: lb.baseAddress!, targets: tb.baseAddress!, n: n, classes: classes)
                }
            }
        }
        return Output(loss: loss, correct: correct, count: n, probabilities: probs)
    }

    /// `dlogits` (same shape as the logits) of `dloss * loss` from a forward's output.
    public static func backward(_ output: Output, targets: [Int32], dloss: Float = 1) throws -> Tensor {
        let probs = output.probabilities
        var dlogits = Tensor(shape: probs.shape)
        guard targets.count == output.count else {
            throw FWError.invalidArgument("SoftmaxCrossEntropy: \(targets.count) targets for \(output.count) rows")
        }
        if output.count == 0 { return dlogits }
        let classes = probs.shape.last!
        probs.withUnsafeBufferPointer { pb in
            targets.withUnsafeBufferPointer { tb in
                dlogits.withUnsafeMutableBufferPointer { db in
                    backward(dlogits: db.baseAddress!, probs: pb.baseAddress!, targets: tb.baseAddress!,
                             n: output.count, classes: classes, dloss: dloss)
                }
            }
        }
        return dlogits
    }
}
