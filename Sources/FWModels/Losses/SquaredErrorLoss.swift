import FWCore

/// Half the squared error, summed over the `dimensions` of a row and
/// averaged over `n` rows:
///
/// ```
/// loss = (1/n) sum_i 0.5 * || target[i, :] - y[i, :] ||^2
/// dy  += dloss * (y - target) / n
/// ```
public enum SquaredErrorLoss {
    /// The mean over rows of `0.5 * ||target - y||^2`.
    public static func forward(y: UnsafePointer<Float>, target: UnsafePointer<Float>,
                               n: Int, dimensions: Int) -> Float {
        if n == 0 { return 0 }
        var total = 0.0
        for i in 0..<(n * dimensions) {
            let d = Double(target[i]) - Double(y[i])
            total += d * d
        }
        return Float(0.5 * total / Double(n))
    }

    /// `dy += dloss * (y - target) / n`.
    public static func backward(dy: UnsafeMutablePointer<Float>,
                                y: UnsafePointer<Float>, target: UnsafePointer<Float>,
                                n: Int, dimensions: Int, dloss: Float = 1) {
        if n == 0 { return }
        let scale = dloss / Float(n)
        for i in 0..<(n * dimensions) { dy[i] += scale * (y[i] - target[i]) }
    }

    /// The loss of `y [..., dimensions]` against `target` of the same shape
    /// (rows are all axes but the last).
    public static func forward(_ y: Tensor, target: Tensor) throws -> Float {
        let (n, d) = try rows(y, target)
        if y.count == 0 { return 0 }
        return y.withUnsafeBufferPointer { yb in
            target.withUnsafeBufferPointer { tb in forward(y: yb.baseAddress!, target: tb.baseAddress!, n: n, dimensions: d) }
        }
    }

    /// `dy = dloss * (y - target) / n`, same shape as `y`.
    public static func backward(_ y: Tensor, target: Tensor, dloss: Float = 1) throws -> Tensor {
        let (n, d) = try rows(y, target)
        var dy = Tensor(shape: y.shape)
        if y.count == 0 { return dy }
        y.withUnsafeBufferPointer { yb in
            target.withUnsafeBufferPointer { tb in
                dy.withUnsafeMutableBufferPointer { db in
                    backward(dy: db.baseAddress!, y: yb.baseAddress!, target: tb.baseAddress!, n: n, dimensions: d, dloss: dloss)
                }
            }
        }
        return dy
    }

    private static func rows(_ y: Tensor, _ target: Tensor) throws -> (Int, Int) {
        try target.checkShape("target", y.shape)
        let d = y.rank == 0 ? 1 : y.shape.last!
        return (d == 0 ? 0 : y.count / d, d)
    }
}
