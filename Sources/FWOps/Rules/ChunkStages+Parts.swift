import FWCore

/// The value parts of one chunk, for the team form (`TeamChunked.swift`):
/// part p's block starts at `base + p * stride` and has rows of `width`
/// floats (a part's v, y, Unew, dY, ... `[c, width]`, or its state `[dphi, width]`).
struct ValuePartBlocks {
    let base: UnsafeMutablePointer<Float>
    let stride: Int
    let count: Int

    /// Part `p`'s block.
    @inline(__always)
    func callAsFunction(_ p: Int) -> UnsafeMutablePointer<Float> { base + p * stride }
}

/// The chunk stages split for a team on one sequence (`TeamChunked.swift`):
/// the key side of a chunk (its decay factors, scores, and the WY form's
/// K-half) is computed once and shared by the value parts; the value side
/// runs per part of the value columns; the key gradients sum over the parts.
/// Shapes as in `ChunkStages`, with `w` the width of one part.
extension ChunkStages {
    /// A chunk's decay factors stored at `buffer` by `decay(into:g:c:)`.
    static func decayView(_ buffer: UnsafePointer<Float>, c: Int) -> Decay {
        Decay(G: buffer, e: buffer + c, tail: buffer + 2 * c, gam: buffer + 3 * c, total: buffer[2 * c - 1])
    }

    /// The key half of the WY form: gm = K K^T o Gam (strict lower used),
    /// l = I + strict-lower(diag(beta) gm) (only its strict lower triangle
    /// is written), W = l^{-1} diag(beta e^G) K `[c, dphi]`.
    static func wyKeys(gm: UnsafeMutablePointer<Float>, l: UnsafeMutablePointer<Float>, w: UnsafeMutablePointer<Float>,
                       k: UnsafePointer<Float>, beta: UnsafePointer<Float>, c: Int, dphi: Int, decay D: Decay?) {
        BLAS.sgemm(.none, .transpose, m: c, n: c, k: dphi, alpha: 1, a: k, lda: dphi,
                   b: k, ldb: dphi, beta: 0, c: gm, ldc: c)
        if let D { applyDecay(gm, D, c: c, strict: true) }
        for i in 0..<c {
            let b = beta[i], gi = gm + i * c, li = l + i * c
            for j in 0..<i { li[j] = b * gi[j] }
            let f = D.map { b * $0.e[i] } ?? b
            let wi = w + i * dphi, ki = k + i * dphi
            for j in 0..<dphi { wi[j] = f * ki[j] }
        }
        BLAS.strsm(.left, .lower, .none, .unit, m: c, n: dphi, alpha: 1, a: l, lda: c, b: w, ldb: dphi)
    }

    /// The value half of the WY form for one part: U = l^{-1} diag(beta) V `[c, w]` into `u`.
    static func wyValues(u: UnsafeMutablePointer<Float>, l: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         beta: UnsafePointer<Float>, c: Int, w: Int) {
        for i in 0..<c {
            let b = beta[i], ui = u + i * w, vi = v + i * w
            for j in 0..<w { ui[j] = b * vi[j] }
        }
        BLAS.strsm(.left, .lower, .none, .unit, m: c, n: w, alpha: 1, a: l, lda: c, b: u, ldb: w)
    }

    /// One chunk of the backward state pass for one part, in reverse time:
    /// with dH = dL/dP at the chunk's end (in `dstate`, `[dphi, w]`),
    /// ```
    /// dX  = diag(e^{G_c - G}) K dH + Pm^T dY           (dV of the sum rules, dUnew of the delta rules)
    /// dH <- e^{G_c} dH + (diag(e^G) Q)^T dY [- W^T dX]  (the bracket when `wyKeys` is given)
    /// ```
    /// `dx` `[c, w]` is overwritten; `scratch` holds `c * dphi` floats.
    static func stateAdjointStep(dx: UnsafeMutablePointer<Float>, dstate: UnsafeMutablePointer<Float>,
                                 dy: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                 scores p: UnsafePointer<Float>, wyKeys W: UnsafePointer<Float>?,
                                 c: Int, dphi: Int, w: Int, decay D: Decay?, scratch: UnsafeMutablePointer<Float>) {
        BLAS.sgemm(.none, .none, m: c, n: w, k: dphi, alpha: 1, a: k, lda: dphi,
                   b: dstate, ldb: w, beta: 0, c: dx, ldc: w)
        var qg = q
        if let D {
            for i in 0..<c { BLAS.scale(dx + i * w, count: w, by: D.tail[i]) }
            BLAS.scale(dstate, count: dphi * w, by: D.total)
            for i in 0..<c {
                let f = D.e[i], qi = q + i * dphi, si = scratch + i * dphi
                for j in 0..<dphi { si[j] = f * qi[j] }
            }
            qg = UnsafePointer(scratch)
        }
        BLAS.sgemm(.transpose, .none, m: c, n: w, k: c, alpha: 1, a: p, lda: c,
                   b: dy, ldb: w, beta: 1, c: dx, ldc: w)
        BLAS.sgemm(.transpose, .none, m: dphi, n: w, k: c, alpha: 1, a: qg, lda: dphi,
                   b: dy, ldb: w, beta: 1, c: dstate, ldc: w)
        if let W {
            BLAS.sgemm(.transpose, .none, m: dphi, n: w, k: c, alpha: -1, a: W, lda: dphi,
                       b: dx, ldb: w, beta: 1, c: dstate, ldc: w)
        }
    }

    /// The key gradients of a chunk's read and write, summed over the parts,
    /// given each part's dH at the chunk's end (`dstate`), P before it
    /// (`state0`), the written values X (V, or Unew) and dY:
    /// ```
    /// dK  = diag(e^{G_c - G}) sum_p X_p dH_p^T + dS^T Q
    /// dQ  = diag(e^G) sum_p dY_p P0_p^T + dS K
    /// dS  = tril(sum_p dY_p X_p^T) o Gam
    /// dG += the decay terms of `writeBackward` and `outputsBackward`
    /// ```
    /// dq, dk `[c, dphi]` are overwritten, dG added to; `ds` `[c, c]` is scratch.
    static func keyAdjointParts(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                dG: UnsafeMutablePointer<Float>?, ds: UnsafeMutablePointer<Float>,
                                dstate: ValuePartBlocks, state0: ValuePartBlocks, x: ValuePartBlocks, dy: ValuePartBlocks,
                                q: UnsafePointer<Float>, k: UnsafePointer<Float>, scores pm: UnsafePointer<Float>,
                                c: Int, dphi: Int, w: Int, decay D: Decay?) {
        let P = dstate.count
        // The write: dK = diag(e^{Gc-G}) X dH^T; dG_i -= w_i, dG_c += sum w_i + e^{Gc} <dH, P0>.
        for p in 0..<P {
            BLAS.sgemm(.none, .transpose, m: c, n: dphi, k: w, alpha: 1, a: x(p), lda: w,
                       b: dstate(p), ldb: w, beta: p == 0 ? 0 : 1, c: dk, ldc: dphi)
        }
        if let D, let dG {
            let total = writeDecayAdjoint(dk: dk, dG: dG, k: k, c: c, dphi: dphi, decay: D)
            var inner: Float = 0
            for p in 0..<P { inner += BLAS.sdot(count: dphi * w, x: dstate(p), y: state0(p)) }
            dG[c - 1] += total + D.total * inner
        }
        // The read: dQ = diag(e^G) dY P0^T; dG_i += q_i . dQ_i.
        for p in 0..<P {
            BLAS.sgemm(.none, .transpose, m: c, n: dphi, k: w, alpha: 1, a: dy(p), lda: w,
                       b: state0(p), ldb: w, beta: p == 0 ? 0 : 1, c: dq, ldc: dphi)
        }
        if let D, let dG {
            for i in 0..<c {
                BLAS.scale(dq + i * dphi, count: dphi, by: D.e[i])
                dG[i] += BLAS.sdot(count: dphi, x: dq + i * dphi, y: q + i * dphi)
            }
        }
        // The scores: dPm = tril(dY X^T); dG += rowsum - colsum of dPm o Pm below the diagonal.
        for p in 0..<P {
            BLAS.sgemm(.none, .transpose, m: c, n: c, k: w, alpha: 1, a: dy(p), lda: w,
                       b: x(p), ldb: w, beta: p == 0 ? 0 : 1, c: ds, ldc: c)
        }
        if let D, let dG {
            for i in 0..<c {
                let di = ds + i * c, pi = pm + i * c, gr = D.gam + i * c
                for j in 0..<i {
                    let z = di[j] * pi[j]
                    dG[i] += z
                    dG[j] -= z
                }
                for j in 0...i { di[j] *= gr[j] }
            }
        }
        zeroStrictUpper(ds, c: c)
        BLAS.sgemm(.none, .none, m: c, n: dphi, k: c, alpha: 1, a: ds, lda: c,
                   b: k, ldb: dphi, beta: 1, c: dq, ldc: dphi)
        BLAS.sgemm(.transpose, .none, m: c, n: dphi, k: c, alpha: 1, a: ds, lda: c,
                   b: q, ldb: dphi, beta: 1, c: dk, ldc: dphi)
    }

    /// The adjoint of `Unew = U - W P0` and of the WY form over the parts,
    /// given each part's dUnew (in `dunew`, overwritten with l^{-T} dUnew):
    /// ```
    /// dW = -sum_p dUnew_p P0_p^T,  [dXk | dXv_p] = l^{-T} [dW | dUnew_p]
    /// dV_p = B dXv_p,  dK += e^G B dXk,  dbeta = e^G rowsum(dXk o K) + sum_p rowsum(dXv_p o V_p)
    /// dA = -(dXk W^T + sum_p dXv_p U_p^T)   then `gramAdjoint`
    /// ```
    /// dv (parts) and dbeta are overwritten, dk and dG added to. Scratch:
    /// `dw` `[c, dphi]`, `u` `[c, w]`, `a` `[c, c]`.
    static func wyAdjointParts(dk: UnsafeMutablePointer<Float>, dv: ValuePartBlocks,
                               dbeta: UnsafeMutablePointer<Float>, dG: UnsafeMutablePointer<Float>?,
                               dunew: ValuePartBlocks, state0: ValuePartBlocks, v: ValuePartBlocks,
                               dw: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>, a: UnsafeMutablePointer<Float>,
                               gm: UnsafePointer<Float>, l: UnsafePointer<Float>, W: UnsafePointer<Float>,
                               k: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                               c: Int, dphi: Int, w: Int, decay D: Decay?) {
        let P = dunew.count
        for p in 0..<P {
            BLAS.sgemm(.none, .transpose, m: c, n: dphi, k: w, alpha: -1, a: dunew(p), lda: w,
                       b: state0(p), ldb: w, beta: p == 0 ? 0 : 1, c: dw, ldc: dphi)
        }
        BLAS.strsm(.left, .lower, .transpose, .unit, m: c, n: dphi, alpha: 1, a: l, lda: c, b: dw, ldb: dphi)
        for p in 0..<P {
            BLAS.strsm(.left, .lower, .transpose, .unit, m: c, n: w, alpha: 1, a: l, lda: c, b: dunew(p), ldb: w)
        }
        for i in 0..<c {
            let b = beta[i], e = D?.e[i] ?? 1
            let xi = dw + i * dphi, ki = k + i * dphi, dki = dk + i * dphi
            var dbk: Float = 0
            for j in 0..<dphi {
                dbk += xi[j] * ki[j]
                dki[j] += e * b * xi[j]
            }
            dbeta[i] = e * dbk
            dG?[i] += b * e * dbk
        }
        for p in 0..<P {
            let xv = dunew(p), vp = v(p), dvp = dv(p)
            for i in 0..<c {
                let b = beta[i], xi = xv + i * w, vi = vp + i * w, dvi = dvp + i * w
                var dbv: Float = 0
                for j in 0..<w {
                    dbv += xi[j] * vi[j]
                    dvi[j] = b * xi[j]
                }
                dbeta[i] += dbv
            }
        }
        BLAS.sgemm(.none, .transpose, m: c, n: c, k: dphi, alpha: -1, a: dw, lda: dphi,
                   b: W, ldb: dphi, beta: 0, c: a, ldc: c)
        for p in 0..<P {
            wyValues(u: u, l: l, v: v(p), beta: beta, c: c, w: w)
            BLAS.sgemm(.none, .transpose, m: c, n: c, k: w, alpha: -1, a: dunew(p), lda: w,
                       b: u, ldb: w, beta: 1, c: a, ldc: c)
        }
        gramAdjoint(a: a, dk: dk, dbeta: dbeta, dG: dG, gm: gm, k: k, beta: beta, c: c, dphi: dphi, decay: D)
    }
}
