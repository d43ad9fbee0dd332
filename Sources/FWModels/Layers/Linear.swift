import FWCore

/// A fully connected layer over `n` rows:
///
/// ```
/// out[n, outputs] = inp[n, inputs] W^T + b      W [outputs, inputs], b [outputs]
/// ```
///
/// Backward (accumulating, `+=`):
///
/// ```
/// dinp    += dout W              [n, inputs]
/// dweight += dout^T inp          [outputs, inputs]
/// dbias   += sum over rows dout  [outputs]
/// ```
///
/// The static pair works on raw row-major pointers (one `sgemm` each way);
/// an instance holds the slices it registered in a `ParameterStore` and adds
/// Tensor-level conveniences.
public struct Linear: Sendable {
    /// Width of an input row.
    public let inputs: Int
    /// Width of an output row.
    public let outputs: Int
    /// `W [outputs, inputs]`, named `<name>.weight`.
    public let weight: ParameterSlice
    /// `b [outputs]`, named `<name>.bias`, or nil without a bias.
    public let bias: ParameterSlice?

    /// Registers `<name>.weight` `[outputs, inputs]` (default
    /// `U(-1/sqrt(inputs), 1/sqrt(inputs))`) and, with `bias`, `<name>.bias`
    /// `[outputs]` (zeros) in `store`.
    public init(_ inputs: Int, _ outputs: Int, bias: Bool = true, name: String,
                store: inout ParameterStore, rng: inout SeededRNG,
                weightInitializer: ParameterInitializer = .uniformFanIn) {
        precondition(inputs > 0 && outputs > 0, "Linear: sizes must be positive, got \(inputs) -> \(outputs)")
        self.inputs = inputs
        self.outputs = outputs
        self.weight = store.register("\(name).weight", shape: [outputs, inputs], initializer: weightInitializer, rng: &rng)
        self.bias = bias ? store.register("\(name).bias", shape: [outputs], initializer: .zeros) : nil
    }

    /// `out[n, outputs] = inp[n, inputs] W^T + b` (`bias` nil: no bias).
    public static func forward(out: UnsafeMutablePointer<Float>,
                               inp: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               n: Int, inputs: Int, outputs: Int) {
        // With a bias: start from the bias rows, then one sgemm adds x W^T;
        // without: the sgemm writes out (beta 0: out need not be initialised).
        if let bias {
            for i in 0..<n {
                let row = out + i * outputs
                for o in 0..<outputs { row[o] = bias[o] }
            }
        }
        BLAS.sgemm(.none, .transpose, m: n, n: outputs, k: inputs,
                   alpha: 1, a: inp, lda: inputs, b: weight, ldb: inputs,
                   beta: bias == nil ? 0 : 1, c: out, ldc: outputs)
    }

    /// Accumulates `dinp += dout W`, `dweight += dout^T inp`, `dbias += sum_rows dout`.
    /// Pass `dinp` nil when the input needs no gradient (e.g. data), `dbias`
    /// nil without a bias.
    public static func backward(dinp: UnsafeMutablePointer<Float>?,
                                dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?,
                                dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                                weight: UnsafePointer<Float>,
                                n: Int, inputs: Int, outputs: Int) {
        if let dinp {
            // [n, outputs] x [outputs, inputs]
            BLAS.sgemm(.none, .none, m: n, n: inputs, k: outputs,
                       alpha: 1, a: dout, lda: outputs, b: weight, ldb: inputs,
                       beta: 1, c: dinp, ldc: inputs)
        }
        // [outputs, n] x [n, inputs]
        BLAS.sgemm(.transpose, .none, m: outputs, n: inputs, k: n,
                   alpha: 1, a: dout, lda: outputs, b: inp, ldb: inputs,
                   beta: 1, c: dweight, ldc: inputs)
        if let dbias {
            for i in 0..<n {
                let row = dout + i * outputs
                for o in 0..<outputs { dbias[o] += row[o] }
            }
        }
    }

    /// `x [..., inputs]` -> `[..., outputs]` with this layer's parameters in `store`.
    public func callAsFunction(_ x: Tensor, _ store: ParameterStore) throws -> Tensor {
        let n = try rows(of: x, "Linear input")
        var y = Tensor.uninitialized(shape: Array(x.shape.dropLast()) + [outputs])
        if n == 0 { return y }
        store.withValues { p in
            x.withUnsafeBufferPointer { xb in
                y.withUnsafeMutableBufferPointer { yb in
                    Linear.forward(out: yb.baseAddress!, inp: xb.baseAddress!,
                                   weight: p + weight.offset, bias: bias.map { p + $0.offset },
                                   n: n, inputs: inputs, outputs: outputs)
                }
            }
        }
        return y
    }

    /// Given `dy [..., outputs]` and the forward input `x [..., inputs]`,
    /// accumulates dW and db into `store.gradients` and returns `dx [..., inputs]`.
    public func backward(_ dy: Tensor, input x: Tensor, store: inout ParameterStore) throws -> Tensor {
        let n = try rows(of: x, "Linear input")
        try dy.checkShape("Linear dy", Array(x.shape.dropLast()) + [outputs])
        var dx = Tensor(shape: x.shape)
        if n == 0 { return dx }
        store.withPointers { p in
            x.withUnsafeBufferPointer { xb in
                dy.withUnsafeBufferPointer { dyb in
                    dx.withUnsafeMutableBufferPointer { dxb in
                        Linear.backward(dinp: dxb.baseAddress!, dweight: p.gradient(weight),
                                        dbias: bias.map { p.gradient($0) },
                                        dout: dyb.baseAddress!, inp: xb.baseAddress!, weight: p.value(weight),
                                        n: n, inputs: inputs, outputs: outputs)
                    }
                }
            }
        }
        return dx
    }

    private func rows(of x: Tensor, _ name: String) throws -> Int {
        guard x.rank >= 1, x.shape.last == inputs else {
            throw FWError.shapeMismatch(tensor: name, expected: "[..., \(inputs)]", got: x.shape)
        }
        return x.count / inputs
    }
}
