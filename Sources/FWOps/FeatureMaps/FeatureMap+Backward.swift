#if canImport(Glibc)
import Glibc
#endif
import FWCore

extension FeatureMap {
    /// `dx[rows, d]` (overwritten) = dL/dx from `dout[rows, dphi]` = dL/d n(phi(x)).
    ///
    /// `out` is the forward's result n(phi(x)) for the same `x`, `omega` and
    /// `normalization`. phi(x) is recomputed where the normalisation needs
    /// it, never stored. With g = dL/dphi (from `FeatureNormalization.backward`):
    /// ```
    /// identity: dx = g
    /// silu:     dx_t = g_t * s_t (1 + x_t (1 - s_t)),  s = sigmoid(x)
    /// elu1:     dx_t = g_t * (1 if x_t > 0 else exp(x_t))
    /// dpfp:     dr[i] = sum_j g[j,i] r[i-j-1] + g[j,i+j+1] r[i+j+1]   (indices mod 2d)
    ///           dx_t = dr[t] [x_t > 0] - dr[d+t] [x_t < 0]
    /// favor:    w = g * phi (entrywise, 2M);  a_i = w_i - w_{M+i}
    ///           dx = Omega^T a - x * sum(w)      (one sgemm over all rows)
    /// ```
    /// For favor, w is formed from `out` and `dout` alone (see below), so
    /// nothing is recomputed and no exp is taken.
    public func backward(dx: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                         x: UnsafePointer<Float>, out: UnsafePointer<Float>, rows: Int, d: Int,
                         omega: UnsafePointer<Float>?, normalization: FeatureNormalization) {
        precondition(rows >= 0 && d >= 1, "FeatureMap.backward: rows=\(rows) d=\(d)")
        precondition(needsOmega == (omega != nil), "FeatureMap.backward: omega must be given exactly for favor (\(self))")
        let dphi = outputSize(inputSize: d)
        switch self {
        case .identity:
            // phi(x) = x, so x itself is the normalisation's input.
            normalization.backward(du: dx, dout: dout, u: x, out: out, rows: rows, size: d)

        case .silu, .elu1, .dpfp:
            if case let .dpfp(order) = self {
                precondition(order >= 1 && order <= 2 * d - 1, "FeatureMap.backward: \(self) with d=\(d)")
            }
            // Scratch, allocated once per call: g = dL/dphi for one row, and
            // dpfp's r = relu([x, -x]) and dr = dL/dr.
            let g = UnsafeMutablePointer<Float>.allocate(capacity: dphi)
            let r = UnsafeMutablePointer<Float>.allocate(capacity: 2 * d)
            let dr = UnsafeMutablePointer<Float>.allocate(capacity: 2 * d)
            defer { g.deallocate(); r.deallocate(); dr.deallocate() }
            for row in 0..<rows {
                let xr = x + row * d
                let dxr = dx + row * d
                let dy = dout + row * dphi
                if normalization == .none {
                    g.update(from: dy, count: dphi)
                } else {
                    // The normalisation's divisor needs phi(x): recompute it
                    // into g, then overwrite g in place with dL/dphi.
                    recompute(g, x: xr, d: d, r: r)
                    normalization.backward(du: g, dout: dy, u: g, out: out + row * dphi, rows: 1, size: dphi)
                }
                if self == .silu {
                    VectorExp.siluBackward(dx: dxr, g: g, x: xr, count: d)
                } else if self == .elu1 {
                    // d phi_t / d x_t = 1 for x_t > 0, exp(x_t) = phi_t otherwise.
                    VectorExp.elu1Backward(dx: dxr, g: g, x: xr, count: d)
                } else if case let .dpfp(order) = self {
                    let width = 2 * d
                    dpfpRelu(r, xr, d: d)
                    dr.update(repeating: 0, count: width)
                    // phi[j*2d + i] = r[i] r[k], k = (i - j - 1) mod 2d: both
                    // factors receive the gradient times the other factor.
                    // Each sum runs as two branch-free loops over contiguous k.
                    for j in 0..<order {
                        let shift = j + 1
                        let gj = g + j * width
                        for i in shift..<width { dr[i] += gj[i] * r[i - shift] }
                        for i in 0..<shift { dr[i] += gj[i] * r[i - shift + width] }
                        for i in shift..<width { dr[i - shift] += gj[i] * r[i] }
                        for i in 0..<shift { dr[i - shift + width] += gj[i] * r[i] }
                    }
                    // r[t] = relu(x_t), r[d+t] = relu(-x_t); relu'(0) = 0.
                    for t in 0..<d {
                        let xt = xr[t]
                        dxr[t] = xt > 0 ? dr[t] : (xt < 0 ? -dr[d + t] : 0)
                    }
                }
            }

        case let .favor(m):
            precondition(m >= 1, "FeatureMap.backward: \(self)")
            // d phi^+-_i / dx = phi^+-_i (+-omega_i - x), so with w = g * phi:
            //   dx = sum_i (w_i - w_{M+i}) omega_i - x sum(w).
            // w needs no phi: with o = out and s the normalisation's divisor,
            // phi = s o and g = (dout - c) / s (FeatureNormalization.backward), so
            //   none: w = dout * o
            //   sum:  w = (dout - <dout, o>) * o
            //   l2:   w = (dout - o <dout, o>) * o.
            //
            // Why the forward's max-subtraction (sum only) may be treated as a
            // constant here: the forward computes p = phi * exp(-c(x)) with a
            // per-vector c(x) (the exponent's max, plus the |x|^2/2 term and
            // 1/sqrt(2M)), and p / sum(p) = phi / sum(phi) for *any* c, so the
            // output is the same function of x whether or not c depends on x;
            // its derivative cannot depend on c either. Formally, dL/dc =
            // -<dL/dp, p> = -(<dout, o> - <dout, o> sum(o)) = 0 because
            // sum(o) = 1. (So the max's kinks at ties do not matter.) The
            // formula above uses only o = out, which is shift-invariant.
            let a = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows * m))
            let wsum = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows))
            defer { a.deallocate(); wsum.deallocate() }
            for row in 0..<rows {
                let o = out + row * dphi
                let dy = dout + row * dphi
                let ar = a + row * m
                var c: Float = 0
                if normalization != .none {
                    for i in 0..<dphi { c += dy[i] * o[i] }
                }
                var s: Float = 0
                for i in 0..<m {
                    let wp: Float, wm: Float
                    switch normalization {
                    case .none:
                        wp = dy[i] * o[i]
                        wm = dy[m + i] * o[m + i]
                    case .sum:
                        wp = (dy[i] - c) * o[i]
                        wm = (dy[m + i] - c) * o[m + i]
                    case .l2:
                        wp = (dy[i] - o[i] * c) * o[i]
                        wm = (dy[m + i] - o[m + i] * c) * o[m + i]
                    }
                    ar[i] = wp - wm
                    s += wp + wm
                }
                wsum[row] = s
            }
            // dx[rows, d] = A[rows, M] Omega[M, d], then dx -= sum(w) x per row.
            BLAS.sgemm(.none, .none, m: rows, n: d, k: m,
                       alpha: 1, a: a, lda: m, b: omega!, ldb: d,
                       beta: 0, c: dx, ldc: d)
            for row in 0..<rows {
                let s = wsum[row]
                let xr = x + row * d
                let dxr = dx + row * d
                for t in 0..<d { dxr[t] -= s * xr[t] }
            }
        }
    }

    /// dL/dx `[..., d]` from `dout` = dL/d n(phi(x)) `[..., Dphi]`, where
    /// `out` = `apply(x, omega:, normalization:)` `[..., Dphi]`. Throws
    /// `FWError.shapeMismatch` naming `x`, `omega`, `dout` or `out`, or
    /// `FWError.invalidArgument` as `apply` does.
    public func gradient(_ dout: Tensor, x: Tensor, out: Tensor, omega: Tensor?,
                         normalization: FeatureNormalization) throws -> Tensor {
        let (rows, d) = try checkArguments(x: x, omega: omega, normalization: normalization)
        var outShape = x.shape
        outShape[outShape.count - 1] = outputSize(inputSize: d)
        try dout.checkShape("dout", outShape)
        try out.checkShape("out", outShape)
        var dx = Tensor(shape: x.shape)
        if rows == 0 { return dx }
        x.withUnsafeBufferPointer { xb in
            dout.withUnsafeBufferPointer { gb in
                out.withUnsafeBufferPointer { ob in
                    dx.withUnsafeMutableBufferPointer { db in
                        FeatureMap.withOmegaPointer(omega) { om in
                            backward(dx: db.baseAddress!, dout: gb.baseAddress!, x: xb.baseAddress!,
                                     out: ob.baseAddress!, rows: rows, d: d, omega: om,
                                     normalization: normalization)
                        }
                    }
                }
            }
        }
        return dx
    }
}
