#if canImport(Glibc)
import Glibc
#endif
import FWCore

/// Pointwise activations over `count` numbers, with their backward from the
/// forward's *output* `out` (all three derivatives are functions of it):
///
/// ```
/// relu:    out = max(x, 0)            dinp += dout * (out > 0 ? 1 : 0)
/// tanh:    out = tanh(x)              dinp += dout * (1 - out^2)
/// sigmoid: out = 1 / (1 + exp(-x))    dinp += dout * out * (1 - out)
/// ```
///
/// (`relu'(0)` is taken as 0.) The forward may run in place (`out == inp`).
public enum ActivationFunction: String, Sendable, Equatable, CaseIterable {
    case relu, tanh, sigmoid

    /// `out[i] = f(inp[i])` for `i < count`.
    public func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
        switch self {
        case .relu:
            for i in 0..<count { out[i] = max(inp[i], 0) }
        case .tanh:
            for i in 0..<count { out[i] = Glibc.tanhf(inp[i]) }
        case .sigmoid:
            VectorExp.logistic(out: out, x: inp, count: count)
        }
    }

    /// `dinp[i] += dout[i] * f'(x_i)`, with `f'` written through `out = f(x)`;
    /// with `accumulate` false, `dinp[i] = dout[i] * f'(x_i)` (dinp need not be initialised).
    /// (Branch-free loops: the compiler vectorises the select.)
    public func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                         out: UnsafePointer<Float>, count: Int, accumulate: Bool = true) {
        switch (self, accumulate) {
        case (.relu, true):
            for i in 0..<count { dinp[i] += out[i] > 0 ? dout[i] : 0 }
        case (.relu, false):
            for i in 0..<count { dinp[i] = out[i] > 0 ? dout[i] : 0 }
        case (.tanh, true):
            for i in 0..<count { dinp[i] += dout[i] * (1 - out[i] * out[i]) }
        case (.tanh, false):
            for i in 0..<count { dinp[i] = dout[i] * (1 - out[i] * out[i]) }
        case (.sigmoid, true):
            for i in 0..<count { dinp[i] += dout[i] * out[i] * (1 - out[i]) }
        case (.sigmoid, false):
            for i in 0..<count { dinp[i] = dout[i] * out[i] * (1 - out[i]) }
        }
    }

    /// The logistic function, without overflow for large `|x|`: the same
    /// bits as the buffer form `VectorExp.logistic` (0 below x = -87.3, where
    /// the exact value is subnormal).
    @inlinable
    public static func logistic(_ x: Float) -> Float {
        VectorExp.logistic(VectorExp.Lanes(repeating: x))[0]
    }

    /// `f(x)` elementwise, any shape.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = Tensor.uninitialized(shape: x.shape)
        if x.count == 0 { return y }
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in forward(out: yb.baseAddress!, inp: xb.baseAddress!, count: x.count) }
        }
        return y
    }

    /// `dx = dy * f'(x)` from `dy` and the forward's output `y` (same shape).
    public func backward(_ dy: Tensor, output y: Tensor) throws -> Tensor {
        try dy.checkShape("\(rawValue) dy", y.shape)
        var dx = Tensor.uninitialized(shape: y.shape)
        if y.count == 0 { return dx }
        dy.withUnsafeBufferPointer { db in
            y.withUnsafeBufferPointer { yb in
                dx.withUnsafeMutableBufferPointer { dxb in
                    backward(dinp: dxb.baseAddress!, dout: db.baseAddress!, out: yb.baseAddress!, count: y.count,
                             accumulate: false)
                }
            }
        }
        return dx
    }
}
