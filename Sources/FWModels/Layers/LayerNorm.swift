import FWCore

/// Layer normalisation of each of `n` rows of width `c` (docs/contract.md section 5's LN):
///
/// ```
/// mean = sum_j x_j / c
/// rstd = 1 / sqrt(sum_j (x_j - mean)^2 / c + 1e-5)      (divisor c, not c - 1)
/// xhat = (x - mean) * rstd
/// out  = weight * xhat + bias                           weight, bias [c]
/// ```
///
/// The forward saves `mean [n]` and `rstd [n]` for the backward:
///
/// ```
/// dbias   += dout
/// dweight += dout * xhat
/// g        = weight * dout
/// dinp    += rstd * (g - mean_j(g) - xhat * mean_j(g * xhat))
/// ```
public struct LayerNorm: Sendable {
    /// The variance epsilon, 1e-5.
    public static let eps: Float = 1e-5

    /// Width of a row.
    public let dimensions: Int
    /// Gain `[dimensions]`, named `<name>.weight` (ones).
    public let weight: ParameterSlice
    /// Shift `[dimensions]`, named `<name>.bias` (zeros).
    public let bias: ParameterSlice

    /// Registers `<name>.weight` (ones) and `<name>.bias` (zeros), each `[dimensions]`.
    public init(_ dimensions: Int, name: String, store: inout ParameterStore) {
        precondition(dimensions > 0, "LayerNorm: dimensions must be positive, got \(dimensions)")
        self.dimensions = dimensions
        self.weight = store.register("\(name).weight", shape: [dimensions], initializer: .ones)
        self.bias = store.register("\(name).bias", shape: [dimensions], initializer: .zeros)
    }

    /// `sum_j f(x[j])` over `c` numbers, in 8 lanes then the rest.
    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, _ c: Int, _ f: (SIMD8<Float>) -> SIMD8<Float>) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var j = 0
        while j + 8 <= c {
            acc += f(UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self))
            j += 8
        }
        var total = acc.sum()
        while j < c {
            total += f(SIMD8<Float>(repeating: x[j]))[0]
            j += 1
        }
        return total
    }

    /// `out[n, c] = weight * (inp - mean) * rstd + bias`, saving `mean [n]` and `rstd [n]`.
    public static func forward(out: UnsafeMutablePointer<Float>,
                               mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                               inp: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                               n: Int, c: Int) {
        for i in 0..<n {
            let x = inp + i * c
            // Two passes (mean, then centred variance) in Float32: free of the
            // cancellation of E[x^2] - E[x]^2; 8 partial sums each (SIMD8).
            let m = LayerNorm.sum(x, c) { $0 } / Float(c)
            let v = LayerNorm.sum(x, c) { ($0 - m) * ($0 - m) } / Float(c)
            let mf = m, sf = 1 / (v + eps).squareRoot()
            let o = out + i * c
            for j in 0..<c { o[j] = weight[j] * ((x[j] - mf) * sf) + bias[j] }
            mean[i] = mf
            rstd[i] = sf
        }
    }

    /// Accumulates `dinp`, `dweight`, `dbias` from `dout [n, c]`, the forward's
    /// input and its saved `mean`, `rstd`. `dinp` nil: no input gradient.
    public static func backward(dinp: UnsafeMutablePointer<Float>?,
                                dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                                weight: UnsafePointer<Float>,
                                mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                n: Int, c: Int) {
        for i in 0..<n {
            let x = inp + i * c, dy = dout + i * c
            let m = mean[i], s = rstd[i]
            // mean_j(g) and mean_j(g * xhat) with g = weight * dout.
            var gMean: Float = 0, gxMean: Float = 0
            for j in 0..<c {
                let xhat = (x[j] - m) * s
                let g = weight[j] * dy[j]
                gMean += g
                gxMean += g * xhat
            }
            gMean /= Float(c)
            gxMean /= Float(c)
            for j in 0..<c {
                let xhat = (x[j] - m) * s
                dbias[j] += dy[j]
                dweight[j] += dy[j] * xhat
            }
            if let dinp {
                let dx = dinp + i * c
                for j in 0..<c {
                    let xhat = (x[j] - m) * s
                    dx[j] += s * (weight[j] * dy[j] - gMean - xhat * gxMean)
                }
            }
        }
    }

    /// What the Tensor-level forward saves for the backward.
    public struct Saved: Sendable {
        /// Per-row means, `[rows]`.
        public var mean: [Float]
        /// Per-row `1 / sqrt(var + eps)`, `[rows]`.
        public var rstd: [Float]
    }

    /// Normalises every row of `x [..., dimensions]`; returns `y` (same shape)
    /// and the saved statistics.
    public func callAsFunction(_ x: Tensor, _ store: ParameterStore) throws -> (y: Tensor, saved: Saved) {
        let n = try rows(of: x)
        var y = Tensor.uninitialized(shape: x.shape)
        var saved = Saved(mean: .uninitialized(count: n), rstd: .uninitialized(count: n))
        if n == 0 { return (y, saved) }
        store.withValues { p in
            x.withUnsafeBufferPointer { xb in
                y.withUnsafeMutableBufferPointer { yb in
                    saved.mean.withUnsafeMutableBufferPointer { mb in
                        saved.rstd.withUnsafeMutableBufferPointer { rb in
                            LayerNorm.forward(out: yb.baseAddress!, mean: mb.baseAddress!, rstd: rb.baseAddress!,
                                              inp: xb.baseAddress!, weight: p + weight.offset, bias: p + bias.offset,
                                              n: n, c: dimensions)
                        }
                    }
                }
            }
        }
        return (y, saved)
    }

    /// Accumulates d(weight), d(bias) into `store.gradients` and returns `dx`.
    public func backward(_ dy: Tensor, input x: Tensor, saved: Saved, store: inout ParameterStore) throws -> Tensor {
        let n = try rows(of: x)
        try dy.checkShape("LayerNorm dy", x.shape)
        guard saved.mean.count == n, saved.rstd.count == n else {
            throw FWError.invalidArgument("LayerNorm.backward: saved statistics for \(saved.mean.count) rows, input has \(n)")
        }
        var dx = Tensor(shape: x.shape)
        if n == 0 { return dx }
        store.withPointers { p in
            x.withUnsafeBufferPointer { xb in
                dy.withUnsafeBufferPointer { db in
                    dx.withUnsafeMutableBufferPointer { dxb in
                        saved.mean.withUnsafeBufferPointer { mb in
                            saved.rstd.withUnsafeBufferPointer { rb in
                                LayerNorm.backward(dinp: dxb.baseAddress!, dweight: p.gradient(weight), dbias: p.gradient(bias),
                                                   dout: db.baseAddress!, inp: xb.baseAddress!, weight: p.value(weight),
                                                   mean: mb.baseAddress!, rstd: rb.baseAddress!, n: n, c: dimensions)
                            }
                        }
                    }
                }
            }
        }
        return dx
    }

    private func rows(of x: Tensor) throws -> Int {
        guard x.rank >= 1, x.shape.last == dimensions else {
            throw FWError.shapeMismatch(tensor: "LayerNorm input", expected: "[..., \(dimensions)]", got: x.shape)
        }
        return x.count / dimensions
    }
}
