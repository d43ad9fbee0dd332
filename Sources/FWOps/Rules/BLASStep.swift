import FWCore

/// One token of the recurrent form as level-2 BLAS calls (`sgemv`, `sger`)
/// on the state `P = S^T` `[dphi, dv]`: the same math and the same
/// arguments as `FusedStep`, for states too large for it to pay
/// (`FusedRecurrence.fusedMaxStateSize`). OpenBLAS's AVX2/FMA kernels
/// amortise their call overhead there, and the package's Swift SIMD code is
/// SSE2 without FMA.
enum BLASStep {
    /// `P <- a P + k u^T` and `y = P_new^T q`; for the delta rules `vbar`
    /// `[dv]` gets a P^T k (= (a P)^T k, as read after the scaling) and
    /// `u = beta (v - vbar)`. `u` is `dv` floats of scratch.
    static func forward(state P: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>,
                        vbar: UnsafeMutablePointer<Float>?, u: UnsafeMutablePointer<Float>,
                        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        beta: Float?, a: Float, dphi: Int, dv: Int) {
        if let beta {
            let vb = vbar ?? u
            if a != 1 { BLAS.scale(P, count: dphi * dv, by: a) }
            BLAS.sgemv(.transpose, m: dphi, n: dv, alpha: 1, a: P, lda: dv, x: k, beta: 0, y: vb)
            for i in 0..<dv { u[i] = beta * (v[i] - vb[i]) }
            BLAS.sger(m: dphi, n: dv, alpha: 1, x: k, y: u, a: P, lda: dv)
        } else {
            if a != 1 { BLAS.scale(P, count: dphi * dv, by: a) }
            BLAS.sger(m: dphi, n: dv, alpha: 1, x: k, y: v, a: P, lda: dv)
        }
        BLAS.sgemv(.transpose, m: dphi, n: dv, alpha: 1, a: P, lda: dv, x: q, beta: 0, y: y)
    }

    /// The forward's write again from what it kept (bit for bit: the same
    /// scaling and `sger` on the same u); `u` `[dv]` gets the written values.
    static func write(state P: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>,
                      k: UnsafePointer<Float>, v: UnsafePointer<Float>, vbar: UnsafePointer<Float>?,
                      beta: Float?, a: Float, dphi: Int, dv: Int) {
        FusedStep.writtenValues(u: u, v: v, vbar: vbar, beta: beta, dv: dv)
        if a != 1 { BLAS.scale(P, count: dphi * dv, by: a) }
        BLAS.sger(m: dphi, n: dv, alpha: 1, x: k, y: u, a: P, lda: dv)
    }

    /// The adjoint of `forward` (`FusedStep.backward` gives the formulas):
    /// G += q dy^T; dq = a prev dy + k (u . dy); du = G^T k; sum: dv = du,
    /// dk = G v; delta: dv = beta du, dbeta = du . (v - vbar), w = -beta du,
    /// dk = G u + a prev w, G += k w^T; dg = a <G, prev>, G <- a G.
    /// `scratch`: `2 dv` floats.
    static func backward(G: UnsafeMutablePointer<Float>, prev: UnsafePointer<Float>,
                         dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                         dv dvOut: UnsafeMutablePointer<Float>,
                         dbeta: UnsafeMutablePointer<Float>?, dg: UnsafeMutablePointer<Float>?,
                         dy: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                         v: UnsafePointer<Float>, u: UnsafePointer<Float>, vbar: UnsafePointer<Float>?,
                         beta: Float?, a: Float, dphi: Int, dv: Int,
                         scratch: UnsafeMutablePointer<Float>) {
        let du = scratch
        BLAS.sger(m: dphi, n: dv, alpha: 1, x: q, y: dy, a: G, lda: dv)
        // dq = P_t dy = a prev dy + k (u . dy).
        BLAS.sgemv(.none, m: dphi, n: dv, alpha: a, a: prev, lda: dv, x: dy, beta: 0, y: dq)
        var ud: Float = 0
        for i in 0..<dv { ud += u[i] * dy[i] }
        for j in 0..<dphi { dq[j] += k[j] * ud }
        BLAS.sgemv(.transpose, m: dphi, n: dv, alpha: 1, a: G, lda: dv, x: k, beta: 0, y: du)
        if let beta, let vbar {
            var db: Float = 0
            for i in 0..<dv {
                db += du[i] * (v[i] - vbar[i])
                dvOut[i] = beta * du[i]
                du[i] = -beta * du[i]          // w = dvbar
            }
            dbeta?.pointee = db
            BLAS.sgemv(.none, m: dphi, n: dv, alpha: 1, a: G, lda: dv, x: u, beta: 0, y: dk)
            BLAS.sgemv(.none, m: dphi, n: dv, alpha: a, a: prev, lda: dv, x: du, beta: 1, y: dk)
            BLAS.sger(m: dphi, n: dv, alpha: 1, x: k, y: du, a: G, lda: dv)
        } else {
            dvOut.update(from: du, count: dv)
            BLAS.sgemv(.none, m: dphi, n: dv, alpha: 1, a: G, lda: dv, x: v, beta: 0, y: dk)
        }
        if let dg {
            dg.pointee = a * BLAS.sdot(count: dphi * dv, x: G, y: prev)
            BLAS.scale(G, count: dphi * dv, by: a)
        }
    }
}
