#if canImport(Glibc)
import Glibc
#endif
import FWCore
import FWOps

/// The per-token arithmetic of `LanguageModelStream`, in plain Swift on raw
/// pointers (SIMD8 dot products, loops the compiler vectorises): no BLAS
/// call and no allocation per token. Matrices are row-major.
enum StreamKernels {
    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// `sum_j a[j] b[j]` over n entries.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        var j = 0
        while j + 16 <= n {
            acc0 += load8(a + j) * load8(b + j)
            acc1 += load8(a + j + 8) * load8(b + j + 8)
            j += 16
        }
        if j + 8 <= n {
            acc0 += load8(a + j) * load8(b + j)
            j += 8
        }
        var s = (acc0 + acc1).sum()
        while j < n { s += a[j] * b[j]; j += 1 }
        return s
    }

    /// `out[r] = W[r, :] . x (+ bias[r])` for W `[rows, cols]`; four rows per
    /// sweep so that every load of x serves four rows. (At batch 1 the
    /// weights stream from L3 and this is as fast as OpenBLAS's sgemv,
    /// measured: 6.3-6.6k against 6.1-6.7k tokens/s for the linear mixer at D 128, 4 blocks.)
    static func matvec(out: UnsafeMutablePointer<Float>, weight w: UnsafePointer<Float>, x: UnsafePointer<Float>,
                       bias: UnsafePointer<Float>?, rows: Int, cols: Int) {
        var r = 0
        while r + 4 <= rows {
            let w0 = w + r * cols, w1 = w0 + cols, w2 = w1 + cols, w3 = w2 + cols
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var j = 0
            while j + 8 <= cols {
                let xv = load8(x + j)
                a0 += load8(w0 + j) * xv
                a1 += load8(w1 + j) * xv
                a2 += load8(w2 + j) * xv
                a3 += load8(w3 + j) * xv
                j += 8
            }
            var s0 = a0.sum(), s1 = a1.sum(), s2 = a2.sum(), s3 = a3.sum()
            while j < cols {
                let xj = x[j]
                s0 += w0[j] * xj; s1 += w1[j] * xj; s2 += w2[j] * xj; s3 += w3[j] * xj
                j += 1
            }
            if let bias { s0 += bias[r]; s1 += bias[r + 1]; s2 += bias[r + 2]; s3 += bias[r + 3] }
            out[r] = s0; out[r + 1] = s1; out[r + 2] = s2; out[r + 3] = s3
            r += 4
        }
        while r < rows {
            out[r] = dot(w + r * cols, x, cols) + (bias?[r] ?? 0)
            r += 1
        }
    }

    /// `y[j] += a * x[j]` over n entries.
    @inline(__always)
    static func axpy(_ y: UnsafeMutablePointer<Float>, _ a: Float, _ x: UnsafePointer<Float>, _ n: Int) {
        let av = SIMD8<Float>(repeating: a)
        var j = 0
        while j + 8 <= n {
            store8(load8(y + j) + av * load8(x + j), y + j)
            j += 8
        }
        while j < n { y[j] += a * x[j]; j += 1 }
    }

    // MARK: one fast-weight step of one head

    /// The sum rule, one fused sweep over S `[dv, Dphi]` (row i = value dim i):
    ///
    /// ```
    /// for each row i, in one pass over its Dphi entries:
    ///     a_i  = S_i . q'          (the old row)
    ///     S_i += v_i k'            (the write)
    /// o_i = a_i + v_i (k' . q')    = (S + v k'^T)_i . q', the read after the write
    /// ```
    static func sumStep(state S: UnsafeMutablePointer<Float>, rows dv: Int, features n: Int,
                        k: UnsafePointer<Float>, q: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        out o: UnsafeMutablePointer<Float>) {
        let kq = dot(k, q, n)
        for i in 0..<dv {
            let row = S + i * n
            let vi = v[i]
            let vv = SIMD8<Float>(repeating: vi)
            var acc = SIMD8<Float>()
            var j = 0
            while j + 8 <= n {
                let s = load8(row + j)
                acc += s * load8(q + j)
                store8(s + vv * load8(k + j), row + j)
                j += 8
            }
            var a = acc.sum()
            while j < n {
                let s = row[j]
                a += s * q[j]
                row[j] = s + vi * k[j]
                j += 1
            }
            o[i] = a + vi * kq
        }
    }

    /// The delta rule, per row of S one read pass and one write pass while
    /// the row is in L1 (the write needs the whole read first), with the
    /// gated delta rule's decay a = exp(g) (docs/contract.md 4b; a = 1: the
    /// plain delta rule, the same bits, as 1 * x is exact):
    ///
    /// ```
    /// vbar_i, r_i = S_i . k',  S_i . q'            (read: the old row against both)
    /// u_i         = beta (v_i - a vbar_i)           vbar_t = a_t S_{t-1} k'_t
    /// S_i         = a S_i + u_i k'                  (write) S_t = a_t S_{t-1} + beta_t (v_t - vbar_t) k'_t^T
    /// o_i         = a r_i + u_i (k' . q')           = S_t,i . q'
    /// ```
    static func deltaStep(state S: UnsafeMutablePointer<Float>, rows dv: Int, features n: Int,
                          k: UnsafePointer<Float>, q: UnsafePointer<Float>, v: UnsafePointer<Float>,
                          beta: Float, decay a: Float = 1, out o: UnsafeMutablePointer<Float>) {
        let kq = dot(k, q, n)
        let av = SIMD8<Float>(repeating: a)
        for i in 0..<dv {
            let row = S + i * n
            var ak = SIMD8<Float>(), aq = SIMD8<Float>()
            var j = 0
            while j + 8 <= n {
                let s = load8(row + j)
                ak += s * load8(k + j)
                aq += s * load8(q + j)
                j += 8
            }
            var vbar = ak.sum(), r = aq.sum()
            while j < n { vbar += row[j] * k[j]; r += row[j] * q[j]; j += 1 }
            let u = beta * (v[i] - a * vbar)
            let uv = SIMD8<Float>(repeating: u)
            j = 0
            while j + 8 <= n {
                store8(av * load8(row + j) + uv * load8(k + j), row + j)
                j += 8
            }
            while j < n { row[j] = a * row[j] + u * k[j]; j += 1 }
            o[i] = a * r + u * kq
        }
    }

    /// The denominator's key sum for one head: returns `z_t . q'_t + eps`
    /// after `z += k'` (z `[Dphi]`), as `z_{t-1} . q' + k' . q' + eps` in one pass.
    static func keySumStep(z: UnsafeMutablePointer<Float>, features n: Int, k: UnsafePointer<Float>,
                           q: UnsafePointer<Float>, epsilon: Float) -> Float {
        var acc = SIMD8<Float>()
        var j = 0
        while j + 8 <= n {
            let zn = load8(z + j) + load8(k + j)
            acc += zn * load8(q + j)
            store8(zn, z + j)
            j += 8
        }
        var s = acc.sum()
        while j < n { z[j] += k[j]; s += z[j] * q[j]; j += 1 }
        return s + epsilon
    }

    // MARK: feature maps of one vector

    /// `out[Dphi] = n(phi(x[d]))` exactly as `FeatureMap.forward` computes it
    /// for one row, without its scratch allocations and BLAS call:
    /// `omega [m, d]` for favor, `scratch` holds at least max(2d, m) floats.
    static func features(_ map: FeatureMap, _ normalization: FeatureNormalization,
                         out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, d: Int,
                         omega: UnsafePointer<Float>?, scratch: UnsafeMutablePointer<Float>) {
        let dphi = map.outputSize(inputSize: d)
        switch map {
        case .identity:
            out.update(from: x, count: d)
        case .silu:
            VectorExp.silu(out: out, x: x, count: d)
        case .elu1:
            VectorExp.elu1(out: out, x: x, count: d)
        case let .dpfp(order):
            // r = relu([x, -x]); block j = r * r rolled right by j + 1.
            let width = 2 * d, r = scratch
            for t in 0..<d {
                let xt = x[t]
                r[t] = xt > 0 ? xt : 0
                r[d + t] = xt < 0 ? -xt : 0
            }
            for j in 0..<order {
                let shift = j + 1, oj = out + j * width
                for i in shift..<width { oj[i] = r[i] * r[i - shift] }
                for i in 0..<shift { oj[i] = r[i] * r[i - shift + width] }
            }
        case let .favor(m):
            // u = Omega x; sum: exp(+-u_i - max|u|) (the shift and 1/sqrt(2m)
            // cancel in the normalisation); otherwise exp(+-u_i - |x|^2/2) / sqrt(2m).
            let u = scratch, w = omega!
            for i in 0..<m { u[i] = dot(w + i * d, x, d) }
            if normalization == .sum {
                var umax: Float = 0
                for i in 0..<m { umax = max(umax, abs(u[i])) }
                for i in 0..<m {
                    out[i] = expf(u[i] - umax)
                    out[m + i] = expf(-u[i] - umax)
                }
            } else {
                var half: Float = 0
                for t in 0..<d { half += x[t] * x[t] }
                half *= 0.5
                let scale = 1 / Float(2 * m).squareRoot()
                for i in 0..<m {
                    out[i] = expf(u[i] - half) * scale
                    out[m + i] = expf(-u[i] - half) * scale
                }
            }
        }
        switch normalization {
        case .none:
            break
        case .sum:
            var s: Float = 0
            for i in 0..<dphi { s += out[i] }
            let inv: Float = s == 0 ? 0 : 1 / s
            for i in 0..<dphi { out[i] *= inv }
        case .l2:
            var s2: Float = 0
            for i in 0..<dphi { s2 += out[i] * out[i] }
            let inv = 1 / (s2 + FeatureNormalization.l2Epsilon).squareRoot()
            for i in 0..<dphi { out[i] *= inv }
        }
    }
}
