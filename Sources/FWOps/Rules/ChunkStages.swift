import Foundation
import FWCore

/// The chunk stages the chunked rules compose (docs/contract.md sections 4, 4b),
/// on one chunk of `c` rows of one sequence, with the state kept as
/// `P = S^T` `[dphi, dv]`:
///
/// ```
/// scores:   Pm = tril(Q K^T) o Gam                 (Gam_ij = exp(G_i - G_j), i >= j)
/// outputs:  Y  = diag(e^G) Q P + Pm X               (X = V, or Unew for the delta rules)
/// write:    P <- e^{G_c} P + K^T diag(e^{G_c - G}) X
/// WY:       A = strict-lower(diag(beta) (K K^T o Gam)),
///           [W | U] = (I + A)^{-1} diag(beta) [diag(e^G) K | V],  Unew = U - W P
/// ```
///
/// and their adjoints. `G` are the in-chunk cumulative log-decays; nil
/// means no decay (G = 0: the ungated rules), which skips every decay
/// factor. Every `exp(G_i - G_j)` is one exponent (G_c is -100 and below
/// under strong decay, where `exp(G_i) * exp(-G_j)` overflows). dG
/// accumulates dL/dG, which `cumulativeBackward` turns into dL/dg.
enum ChunkStages {
    /// One chunk's decay factors, computed once per chunk (`decay(into:g:c:)`):
    /// G_i, e^{G_i}, e^{G_c - G_i} `[c]` and Gam `[c, c]` (exp(G_i - G_j) for
    /// i >= j, one `expf` of the difference each; 0 above the diagonal).
    struct Decay {
        let G, e, tail, gam: UnsafePointer<Float>
        /// e^{G_c}.
        let total: Float
    }

    /// Floats `decay(into:g:c:)` needs for chunks of up to `c` steps.
    static func decayCount(_ c: Int) -> Int { 3 * c + c * c }

    /// The decay factors of a chunk with log-decays `g[c]`, in `buffer`.
    static func decay(into buffer: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, c: Int) -> Decay {
        let G = buffer, e = buffer + c, tail = buffer + 2 * c, gam = buffer + 3 * c
        cumulative(G, g: g, c: c)
        let gc = G[c - 1]
        for i in 0..<c {
            e[i] = expf(G[i])
            tail[i] = expf(gc - G[i])
            let gi = G[i], row = gam + i * c
            for j in 0...i { row[j] = expf(gi - G[j]) }
            for j in (i + 1)..<max(i + 1, c) { row[j] = 0 }
        }
        return Decay(G: G, e: e, tail: tail, gam: gam, total: e[c - 1])
    }

    /// G_i = g_1 + ... + g_i over the chunk.
    @inline(__always)
    static func cumulative(_ G: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, c: Int) {
        var s: Float = 0
        for i in 0..<c { s += g[i]; G[i] = s }
    }

    /// dg_m = sum_{i >= m} dG_i (the adjoint of `cumulative`), written to `dg`.
    @inline(__always)
    static func cumulativeBackward(_ dg: UnsafeMutablePointer<Float>, dG: UnsafePointer<Float>, c: Int) {
        var s: Float = 0
        for i in stride(from: c - 1, through: 0, by: -1) { s += dG[i]; dg[i] = s }
    }

    /// Zeroes the entries above the diagonal of a row-major `c x c` matrix.
    @inline(__always)
    static func zeroStrictUpper(_ a: UnsafeMutablePointer<Float>, c: Int) {
        for i in 0..<c where i + 1 < c { (a + i * c + i + 1).update(repeating: 0, count: c - i - 1) }
    }

    /// a_ij *= Gam_ij on and below the diagonal (`ld` = c).
    @inline(__always)
    static func applyDecay(_ a: UnsafeMutablePointer<Float>, _ D: Decay, c: Int, strict: Bool = false) {
        for i in 0..<c {
            let row = a + i * c, gr = D.gam + i * c
            for j in 0..<(strict ? i : i + 1) { row[j] *= gr[j] }
        }
    }

    /// Pm = tril(Q K^T) o Gam into `p` `[c, c]` (diagonal kept: y_t reads S_t).
    static func causalScores(_ p: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                             c: Int, dphi: Int, decay D: Decay?) {
        BLAS.sgemm(.none, .transpose, m: c, n: c, k: dphi, alpha: 1, a: q, lda: dphi,
                   b: k, ldb: dphi, beta: 0, c: p, ldc: c)
        zeroStrictUpper(p, c: c)
        if let D { applyDecay(p, D, c: c) }
    }

    /// Y = diag(e^G) Q P + Pm X (`x` has row stride `ldx`).
    static func outputs(_ y: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, state: UnsafePointer<Float>,
                        scores p: UnsafePointer<Float>, x: UnsafePointer<Float>, ldx: Int,
                        c: Int, dphi: Int, dv: Int, decay D: Decay?) {
        BLAS.sgemm(.none, .none, m: c, n: dv, k: dphi, alpha: 1, a: q, lda: dphi,
                   b: state, ldb: dv, beta: 0, c: y, ldc: dv)
        if let D { for i in 0..<c { BLAS.scale(y + i * dv, count: dv, by: D.e[i]) } }
        BLAS.sgemm(.none, .none, m: c, n: dv, k: c, alpha: 1, a: p, lda: c,
                   b: x, ldb: ldx, beta: 1, c: y, ldc: dv)
    }

    /// P <- e^{G_c} P + K^T diag(e^{G_c - G}) X; `scratch` holds `c * dphi` floats.
    static func write(_ state: UnsafeMutablePointer<Float>, k: UnsafePointer<Float>, x: UnsafePointer<Float>, ldx: Int,
                      c: Int, dphi: Int, dv: Int, decay D: Decay?, scratch: UnsafeMutablePointer<Float>) {
        var kd = k
        if let D {
            BLAS.scale(state, count: dphi * dv, by: D.total)
            for i in 0..<c {
                let f = D.tail[i]
                for j in 0..<dphi { scratch[i * dphi + j] = f * k[i * dphi + j] }
            }
            kd = UnsafePointer(scratch)
        }
        BLAS.sgemm(.transpose, .none, m: dphi, n: dv, k: c, alpha: 1, a: kd, lda: dphi,
                   b: x, ldb: ldx, beta: 1, c: state, ldc: dv)
    }

    /// The adjoint of `write` with `dstate` = dL/dP after it: overwrites
    /// dX (stride `ldx`) and dK, adds to dG, and turns `dstate` into the
    /// write's share of dL/dP before it (e^{G_c} dP). `state0` is P before
    /// the write; `scratch` holds `c * max(dphi, dv)` floats.
    static func writeBackward(dx: UnsafeMutablePointer<Float>, lddx: Int, dk: UnsafeMutablePointer<Float>,
                              dG: UnsafeMutablePointer<Float>?, dstate: UnsafeMutablePointer<Float>,
                              k: UnsafePointer<Float>, x: UnsafePointer<Float>, ldx: Int, state0: UnsafePointer<Float>,
                              c: Int, dphi: Int, dv: Int, decay D: Decay?) {
        // dX = diag(e^{Gc-G}) K dP                             [c, dphi] x [dphi, dv]
        BLAS.sgemm(.none, .none, m: c, n: dv, k: dphi, alpha: 1, a: k, lda: dphi,
                   b: dstate, ldb: dv, beta: 0, c: dx, ldc: lddx)
        // dK = diag(e^{Gc-G}) X dP^T                           [c, dv] x [dv, dphi]
        BLAS.sgemm(.none, .transpose, m: c, n: dphi, k: dv, alpha: 1, a: x, lda: ldx,
                   b: dstate, ldb: dv, beta: 0, c: dk, ldc: dphi)
        guard let D, let dG else { return }
        for i in 0..<c { BLAS.scale(dx + i * lddx, count: dv, by: D.tail[i]) }
        let total = writeDecayAdjoint(dk: dk, dG: dG, k: k, c: c, dphi: dphi, decay: D)
        // e^{Gc} P0: dG_c += e^{Gc} <dP, P0>; dL/dP0 gets e^{Gc} dP.
        let a = D.total
        dG[c - 1] += total + a * BLAS.sdot(count: dphi * dv, x: dstate, y: state0)
        BLAS.scale(dstate, count: dphi * dv, by: a)
    }

    /// The write's decay factors in its key gradient: with `dk` holding
    /// X dP^T (undecayed), w_i = e^{Gc - G_i} k_i . dk_i is d/dG_c of the
    /// write and -d/dG_i; subtracts w_i from dG_i, scales dk's rows by
    /// e^{Gc - G_i} and returns sum_i w_i (for dG_c).
    static func writeDecayAdjoint(dk: UnsafeMutablePointer<Float>, dG: UnsafeMutablePointer<Float>,
                                  k: UnsafePointer<Float>, c: Int, dphi: Int, decay D: Decay) -> Float {
        var total: Float = 0
        for i in 0..<c {
            let f = D.tail[i]
            let w = f * BLAS.sdot(count: dphi, x: dk + i * dphi, y: k + i * dphi)
            dG[i] -= w
            total += w
            BLAS.scale(dk + i * dphi, count: dphi, by: f)
        }
        return total
    }

    /// The adjoint of `outputs` (with `scores` recomputed in `p`, which it
    /// overwrites): overwrites dQ, adds to dX (stride `ldx`), dK, dG and
    /// `dstate0` (dL/dP before the chunk). `scratch` holds `c * dphi` floats.
    static func outputsBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                dx: UnsafeMutablePointer<Float>, lddx: Int,
                                dG: UnsafeMutablePointer<Float>?, dstate0: UnsafeMutablePointer<Float>,
                                dy: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                x: UnsafePointer<Float>, ldx: Int, state0: UnsafePointer<Float>, p: UnsafeMutablePointer<Float>,
                                c: Int, dphi: Int, dv: Int, decay D: Decay?,
                                scratch: UnsafeMutablePointer<Float>) {
        // dX += Pm^T dY                                        [c, c] x [c, dv]
        BLAS.sgemm(.transpose, .none, m: c, n: dv, k: c, alpha: 1, a: p, lda: c,
                   b: dy, ldb: dv, beta: 1, c: dx, ldc: lddx)
        // Read: dQ = diag(e^G) dY P0^T; dG_i += q_i . dQ_i; dP0 += (diag(e^G) Q)^T dY.
        BLAS.sgemm(.none, .transpose, m: c, n: dphi, k: dv, alpha: 1, a: dy, lda: dv,
                   b: state0, ldb: dv, beta: 0, c: dq, ldc: dphi)
        var qg = q
        if let D, let dG {
            for i in 0..<c {
                let f = D.e[i]
                BLAS.scale(dq + i * dphi, count: dphi, by: f)
                dG[i] += BLAS.sdot(count: dphi, x: dq + i * dphi, y: q + i * dphi)
                for j in 0..<dphi { scratch[i * dphi + j] = f * q[i * dphi + j] }
            }
            qg = UnsafePointer(scratch)
        }
        BLAS.sgemm(.transpose, .none, m: dphi, n: dv, k: c, alpha: 1, a: qg, lda: dphi,
                   b: dy, ldb: dv, beta: 1, c: dstate0, ldc: dv)
        // dPm = tril(dY X^T); with decay, dG += rowsum(dPm o Pm) - colsum(dPm o Pm)
        // (strictly below the diagonal; Gam_ii = 1) and dScores = dPm o Gam.
        if let D, let dG {
            // p holds Pm: fold dPm o Pm into dG row by row before overwriting.
            // dPm_ij = dy_i . x_j, computed here directly for j < i.
            BLAS.sgemm(.none, .transpose, m: c, n: c, k: dv, alpha: 1, a: dy, lda: dv,
                       b: x, ldb: ldx, beta: 0, c: scratchScores(p, c: c), ldc: c)
            let d = scratchScores(p, c: c)
            for i in 0..<c {
                for j in 0..<i {
                    let z = d[i * c + j] * p[i * c + j]
                    dG[i] += z
                    dG[j] -= z
                }
            }
            for i in 0..<c {
                let gr = D.gam + i * c
                for j in 0...i { p[i * c + j] = d[i * c + j] * gr[j] }
                for j in (i + 1)..<max(i + 1, c) { p[i * c + j] = 0 }
            }
        } else {
            BLAS.sgemm(.none, .transpose, m: c, n: c, k: dv, alpha: 1, a: dy, lda: dv,
                       b: x, ldb: ldx, beta: 0, c: p, ldc: c)
            zeroStrictUpper(p, c: c)
        }
        // Scores tril(Q K^T): dQ += dS K, dK += dS^T Q.
        BLAS.sgemm(.none, .none, m: c, n: dphi, k: c, alpha: 1, a: p, lda: c,
                   b: k, ldb: dphi, beta: 1, c: dq, ldc: dphi)
        BLAS.sgemm(.transpose, .none, m: c, n: dphi, k: c, alpha: 1, a: p, lda: c,
                   b: q, ldb: dphi, beta: 1, c: dk, ldc: dphi)
    }

    /// The second `c x c` block after `p` (callers allocate `2 c^2` for p when decayed).
    @inline(__always)
    static func scratchScores(_ p: UnsafeMutablePointer<Float>, c: Int) -> UnsafeMutablePointer<Float> { p + c * c }

    /// The WY form of a delta-rule chunk: gm = K K^T o Gam (strict lower
    /// used), l = I + strict-lower(diag(beta) gm), wu = [W | U] = l^{-1}
    /// diag(beta) [diag(e^G) K | V] (`ld` = dphi + dv). `l`'s upper triangle
    /// and diagonal are never read by the unit solves.
    static func wySolve(gm: UnsafeMutablePointer<Float>, l: UnsafeMutablePointer<Float>, wu: UnsafeMutablePointer<Float>,
                        k: UnsafePointer<Float>, v: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                        c: Int, dphi: Int, dv: Int, decay D: Decay?) {
        let ld = dphi + dv
        BLAS.sgemm(.none, .transpose, m: c, n: c, k: dphi, alpha: 1, a: k, lda: dphi,
                   b: k, ldb: dphi, beta: 0, c: gm, ldc: c)
        if let D { applyDecay(gm, D, c: c, strict: true) }
        for i in 0..<c {
            let b = beta[i]
            let gi = gm + i * c, li = l + i * c
            for j in 0..<i { li[j] = b * gi[j] }
            let f = D.map { b * $0.e[i] } ?? b
            let wi = wu + i * ld, ki = k + i * dphi, vi = v + i * dv
            for j in 0..<dphi { wi[j] = f * ki[j] }
            for j in 0..<dv { wi[dphi + j] = b * vi[j] }
        }
        BLAS.strsm(.left, .lower, .none, .unit, m: c, n: ld, alpha: 1, a: l, lda: c, b: wu, ldb: ld)
    }

    /// The adjoint of `wySolve`: `dwu` holds [dW | dU] and is overwritten
    /// with [dXk | dXv] = l^{-T} [dW | dU]; dV is overwritten (`ldv` stride
    /// dv), dbeta overwritten, dK and dG added to. `a` (c x c) is scratch.
    static func wyAdjoint(dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                          dbeta: UnsafeMutablePointer<Float>, dG: UnsafeMutablePointer<Float>?,
                          dwu: UnsafeMutablePointer<Float>, a: UnsafeMutablePointer<Float>,
                          gm: UnsafePointer<Float>, l: UnsafePointer<Float>, wu: UnsafePointer<Float>,
                          k: UnsafePointer<Float>, v: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                          c: Int, dphi: Int, dvSize: Int, decay D: Decay?) {
        let ld = dphi + dvSize
        BLAS.strsm(.left, .lower, .transpose, .unit, m: c, n: ld, alpha: 1, a: l, lda: c, b: dwu, ldb: ld)
        // B [e^G K | V]: dV = B dXv, dK += e^G B dXk, dbeta = dXk . e^G k + dXv . v, dG_i += beta_i dXk . e^G k.
        for i in 0..<c {
            let b = beta[i], xi = dwu + i * ld
            let e = D?.e[i] ?? 1
            let ki = k + i * dphi, vi = v + i * dvSize
            let dki = dk + i * dphi, dvi = dv + i * dvSize
            var dbk: Float = 0, dbv: Float = 0
            for j in 0..<dphi {
                dbk += xi[j] * ki[j]
                dki[j] += e * b * xi[j]
            }
            for j in 0..<dvSize {
                dbv += xi[dphi + j] * vi[j]
                dvi[j] = b * xi[dphi + j]
            }
            dbeta[i] = e * dbk + dbv
            dG?[i] += b * e * dbk
        }
        // l = I + A: dA = strict-lower(-[dXk | dXv] [W | U]^T).
        BLAS.sgemm(.none, .transpose, m: c, n: c, k: ld, alpha: -1, a: dwu, lda: ld,
                   b: wu, ldb: ld, beta: 0, c: a, ldc: c)
        gramAdjoint(a: a, dk: dk, dbeta: dbeta, dG: dG, gm: gm, k: k, beta: beta, c: c, dphi: dphi, decay: D)
    }

    /// The adjoint of `A = strict-lower(diag(beta) gm)`, `gm = K K^T o Gam`,
    /// given dA in `a` `[c, c]` (overwritten): adds to dbeta, dK and dG.
    static func gramAdjoint(a: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                            dbeta: UnsafeMutablePointer<Float>, dG: UnsafeMutablePointer<Float>?,
                            gm: UnsafePointer<Float>, k: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                            c: Int, dphi: Int, decay D: Decay?) {
        // A = strict-lower(B gm): dbeta_i += sum_j dA_ij gm_ij; dgm = B dA;
        // gm = K K^T o Gam: dG += rowsum(dgm o gm) - colsum(dgm o gm);
        // d(K K^T) = dgm o Gam, symmetrised in place: dK += (D + D^T) K.
        for i in 0..<c {
            let b = beta[i], ai = a + i * c, gi = gm + i * c
            var db: Float = 0
            for j in 0..<i {
                let d = ai[j]
                db += d * gi[j]
                var s = b * d
                if let D, let dG {
                    let z = s * gi[j]
                    dG[i] += z
                    dG[j] -= z
                    s *= D.gam[i * c + j]
                }
                ai[j] = s
            }
            ai[i] = 0
            dbeta[i] += db
        }
        for i in 0..<c { for j in 0..<i { a[j * c + i] = a[i * c + j] } }
        BLAS.sgemm(.none, .none, m: c, n: dphi, k: c, alpha: 1, a: a, lda: c,
                   b: k, ldb: dphi, beta: 1, c: dk, ldc: dphi)
    }
}
