import FWCore
#if canImport(Glibc)
import Glibc
#endif

// The associative LSTM's forward and backward kernels on raw row-major pointers.
//
// Complex vectors of H entries are N = 2H reals: re at [0, H), im at [H, 2H).
// For z = a * b (complex), with gz = dL/dz:
//
//     dL/da = gz * conj(b),   dL/db = gz * conj(a)
//
// bound(z) = z / max(1, |z|): identity inside the unit disc; outside, y = z/|z| and
//
//     dL/dz = (gy - y (y . gy)) / |z|      (y . gy = y_re gy_re + y_im gy_im)
//
// Per step (dh_t given, gh = dh_t + W^T da_{t+1} the total gradient at h_t,
// dc_s the gradient carried into c_{s,t} from step t+1):
//
//     m = (1/K) sum_s (P_s r_o) * c_s,   h = g_o bound(m)                     (K copies)
//     dg_o = gh . bound(m) (re and im summed),   dm = bound'(m)^T (g_o gh) / K
//     d(P_s r_o) += dm * conj(c_s),              gc_s = dc_s + dm * conj(P_s r_o)
//     c_s = g_f c_s' + (P_s r_i) * v,  v = g_i u:
//       dg_f += gc_s . c_s',  d(P_s r_i) += gc_s * conj(v),  dv += gc_s * conj(P_s r_i)
//       dc_s (carried to t-1) = g_f gc_s
//     dg_i = dv . u,  du = g_i dv,  then through sigmoid and bound to da.
//
// The permuted-key gradients scatter back: d r[perm_s[j]] += d(P_s r)[j].

extension AssociativeLSTM {
    /// `bound` of one complex number.
    @inline(__always)
    static func bound(_ re: Float, _ im: Float) -> (Float, Float) {
        let r = hypotf(re, im)
        return r > 1 ? (re / r, im / r) : (re, im)
    }

    /// The gradient through `bound` at z = (re, im) of an output gradient (gre, gim).
    @inline(__always)
    static func boundBackward(_ re: Float, _ im: Float, _ gre: Float, _ gim: Float) -> (Float, Float) {
        let r = hypotf(re, im)
        if !(r > 1) { return (gre, gim) }
        let yr = re / r, yi = im / r
        let d = yr * gre + yi * gim
        return ((gre - yr * d) / r, (gim - yi * d) / r)
    }

    /// The activated quantities of one step of one sequence, from its raw
    /// pre-activation row `a [9H]`: gates `[3H]` (i, f, o), and the bounded
    /// complex `ri`, `ro`, `u` and `v = g_i u`, each `[2H]`.
    @inline(__always)
    static func activate(
        _ a: UnsafePointer<Float>, H: Int,
        gates: UnsafeMutablePointer<Float>, ri: UnsafeMutablePointer<Float>, ro: UnsafeMutablePointer<Float>,
        u: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    ) {
        for j in 0..<(3 * H) { gates[j] = RecurrentBaseline.sigmoid(a[j]) }
        for j in 0..<H {
            (ri[j], ri[H + j]) = bound(a[3 * H + j], a[4 * H + j])
            (ro[j], ro[H + j]) = bound(a[5 * H + j], a[6 * H + j])
            (u[j], u[H + j]) = bound(a[7 * H + j], a[8 * H + j])
            v[j] = gates[j] * u[j]
            v[H + j] = gates[j] * u[H + j]
        }
    }

    /// Forward: fills `preactivations [B, T, 9H]` (raw), `cells [B, T, K, N]`, `h [B, T, N]`.
    static func forwardKernel(
        x: UnsafePointer<Float>, W: UnsafePointer<Float>, U: UnsafePointer<Float>, b: UnsafePointer<Float>,
        permutations perm: UnsafePointer<Int>,
        preactivations pre: UnsafeMutablePointer<Float>, cells: UnsafeMutablePointer<Float>,
        h: UnsafeMutablePointer<Float>,
        batch: Int, time: Int, hidden n: Int, input: Int, copies: Int
    ) {
        let H = n / 2
        let rows = 9 * H
        // Scratch for one (sequence, step): gates [3H], ri, ro, u, v, m [2H] each.
        var scratch = [Float](repeating: 0, count: 3 * H + 5 * n)
        scratch.withUnsafeMutableBufferPointer { sb in
            let gates = sb.baseAddress!
            let ri = gates + 3 * H, ro = ri + n, u = ro + n, v = u + n, m = v + n
            // a = X U^T + b for all B*T rows at once.
            RecurrentBaseline.inputProjection(x: x, U: U, b: b, A: pre, count: batch * time, rows: rows, input: input)
            let invK = 1 / Float(copies)
            for t in 0..<time {
                // a[:, t] += h[:, t-1] W^T  (one [B, N] x [N, 9H] product over the batch)
                if t > 0 {
                    RecurrentBaseline.addRecurrent(h: h, W: W, A: pre, t: t, batch: batch, time: time, rows: rows, hidden: n)
                }
                for s in 0..<batch {
                    let r = s * time + t
                    activate(pre + r * rows, H: H, gates: gates, ri: ri, ro: ro, u: u, v: v)
                    let gf = gates + H, go = gates + 2 * H
                    m.initialize(repeating: 0, count: n)
                    for k in 0..<copies {
                        let p = perm + k * H
                        let c = cells + (r * copies + k) * n
                        let cPrev: UnsafeMutablePointer<Float>? = t > 0 ? cells + ((r - 1) * copies + k) * n : nil
                        for j in 0..<H {
                            let q = p[j]
                            // c_s = g_f c_s' + (P_s r_i) * v
                            let kr = ri[q], ki = ri[H + q]
                            var cr = kr * v[j] - ki * v[H + j]
                            var ci = kr * v[H + j] + ki * v[j]
                            if let cp = cPrev {
                                cr += gf[j] * cp[j]
                                ci += gf[j] * cp[H + j]
                            }
                            c[j] = cr
                            c[H + j] = ci
                            // m += (P_s r_o) * c_s
                            let or = ro[q], oi = ro[H + q]
                            m[j] += or * cr - oi * ci
                            m[H + j] += or * ci + oi * cr
                        }
                    }
                    // h = g_o bound(m / K)
                    let ht = h + r * n
                    for j in 0..<H {
                        let (br, bi) = bound(m[j] * invK, m[H + j] * invK)
                        ht[j] = go[j] * br
                        ht[H + j] = go[j] * bi
                    }
                }
            }
        }
    }

    /// Backward: `dh` holds dL/dh on entry (it accumulates the recurrent
    /// gradient, in place); `dA [B, T, 9H]` receives dL/da; writes all gradients.
    static func backwardKernel(
        x: UnsafePointer<Float>, h: UnsafePointer<Float>, W: UnsafePointer<Float>, U: UnsafePointer<Float>,
        permutations perm: UnsafePointer<Int>,
        preactivations pre: UnsafePointer<Float>, cells: UnsafePointer<Float>,
        dh: UnsafeMutablePointer<Float>, dA: UnsafeMutablePointer<Float>,
        gradients gr: inout AssociativeLSTMGradients,
        batch: Int, time: Int, hidden n: Int, input: Int, copies: Int
    ) {
        let H = n / 2
        let rows = 9 * H
        let invK = 1 / Float(copies)
        // Scratch: gates [3H]; ri, ro, u, v, m, dm, dri, dro, dv [2H] each; dgf [H].
        var scratch = [Float](repeating: 0, count: 3 * H + 9 * n + H)
        // dL/dc_{s,t} carried from step t+1, per sequence and copy: [B, K, N].
        var carry = [Float](repeating: 0, count: batch * copies * n)
        scratch.withUnsafeMutableBufferPointer { sb in
            carry.withUnsafeMutableBufferPointer { cb in
                let gates = sb.baseAddress!
                let ri = gates + 3 * H, ro = ri + n, u = ro + n, v = u + n, m = v + n
                let dm = m + n, dri = dm + n, dro = dri + n, dv = dro + n, dgf = dv + n
                let gi = gates, gf = gates + H, go = gates + 2 * H
                for t in stride(from: time - 1, through: 0, by: -1) {
                    for s in 0..<batch {
                        let r = s * time + t
                        let a = pre + r * rows
                        let gh = dh + r * n
                        let da = dA + r * rows
                        activate(a, H: H, gates: gates, ri: ri, ro: ro, u: u, v: v)
                        // Recompute m = (1/K) sum_s (P_s r_o) * c_s.
                        m.initialize(repeating: 0, count: n)
                        for k in 0..<copies {
                            let p = perm + k * H
                            let c = cells + (r * copies + k) * n
                            for j in 0..<H {
                                let q = p[j]
                                let or = ro[q], oi = ro[H + q]
                                m[j] += or * c[j] - oi * c[H + j]
                                m[H + j] += or * c[H + j] + oi * c[j]
                            }
                        }
                        // h = g_o bound(m): dg_o, then dm through bound (and the 1/K mean).
                        for j in 0..<H {
                            let mr = m[j] * invK, mi = m[H + j] * invK
                            let (br, bi) = bound(mr, mi)
                            let dgo = gh[j] * br + gh[H + j] * bi
                            da[2 * H + j] = dgo * go[j] * (1 - go[j])
                            let (gmr, gmi) = boundBackward(mr, mi, go[j] * gh[j], go[j] * gh[H + j])
                            dm[j] = gmr * invK
                            dm[H + j] = gmi * invK
                        }
                        dri.initialize(repeating: 0, count: n)
                        dro.initialize(repeating: 0, count: n)
                        dv.initialize(repeating: 0, count: n)
                        dgf.initialize(repeating: 0, count: H)
                        for k in 0..<copies {
                            let p = perm + k * H
                            let c = cells + (r * copies + k) * n
                            let cPrev: UnsafePointer<Float>? = t > 0 ? cells + ((r - 1) * copies + k) * n : nil
                            let dc = cb.baseAddress! + (s * copies + k) * n
                            for j in 0..<H {
                                let q = p[j]
                                let cr = c[j], ci = c[H + j]
                                let or = ro[q], oi = ro[H + q]
                                let kr = ri[q], ki = ri[H + q]
                                // m += (P_s r_o) * c_s
                                dro[q] += dm[j] * cr + dm[H + j] * ci
                                dro[H + q] += dm[H + j] * cr - dm[j] * ci
                                let gcr = dc[j] + dm[j] * or + dm[H + j] * oi
                                let gci = dc[H + j] + dm[H + j] * or - dm[j] * oi
                                // c_s = g_f c_s' + (P_s r_i) * v
                                if let cp = cPrev { dgf[j] += gcr * cp[j] + gci * cp[H + j] }
                                dri[q] += gcr * v[j] + gci * v[H + j]
                                dri[H + q] += gci * v[j] - gcr * v[H + j]
                                dv[j] += gcr * kr + gci * ki
                                dv[H + j] += gci * kr - gcr * ki
                                dc[j] = gf[j] * gcr
                                dc[H + j] = gf[j] * gci
                            }
                        }
                        for j in 0..<H {
                            // v = g_i u
                            let dgi = dv[j] * u[j] + dv[H + j] * u[H + j]
                            da[j] = dgi * gi[j] * (1 - gi[j])
                            da[H + j] = dgf[j] * gf[j] * (1 - gf[j])
                            (da[3 * H + j], da[4 * H + j]) = boundBackward(a[3 * H + j], a[4 * H + j], dri[j], dri[H + j])
                            (da[5 * H + j], da[6 * H + j]) = boundBackward(a[5 * H + j], a[6 * H + j], dro[j], dro[H + j])
                            (da[7 * H + j], da[8 * H + j]) = boundBackward(a[7 * H + j], a[8 * H + j],
                                                                           gi[j] * dv[j], gi[j] * dv[H + j])
                        }
                    }
                    // dh[:, t-1] += da[:, t] W  (one [B, 9H] x [9H, N] product)
                    if t > 0 {
                        RecurrentBaseline.backRecurrent(dA: dA, W: W, dh: dh, t: t, batch: batch, time: time, rows: rows, hidden: n)
                    }
                }
            }
        }
        RecurrentBaseline.parameterGradients(
            dA: dA, h: h, x: x, U: U,
            dx: &gr.dx, dW: &gr.dW, dU: &gr.dU, db: &gr.db,
            batch: batch, time: time, rows: rows, hidden: n, input: input)
    }
}
