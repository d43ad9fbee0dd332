import Foundation
import FWCore

/// The recurrent (token by token) form of the gated rules on one sequence
/// (docs/contract.md section 4b), with `P = S^T` `[dphi, dv]` and a_t = exp(g_t):
///
/// ```
/// gated sum:    P_t = a_t P_{t-1} + k_t v_t^T
/// gated delta:  vbar_t = a_t P_{t-1}^T k_t,  u_t = beta_t (v_t - vbar_t),
///               P_t = a_t P_{t-1} + k_t u_t^T
/// y_t = P_t^T q_t
/// ```
///
/// `beta` nil is the gated sum rule; `g` nil is a_t = 1 (the delta rule,
/// `DeltaRule+Recurrent.swift`; no dg). The forward saves the state at the
/// start of every segment of `SumRule.recurrentSegment(T)` steps; the
/// backward recomputes each segment's states from its checkpoint (every
/// state exactly the forward's; O(sqrt(T) d^2) memory), then walks it in
/// reverse with `G = dL/dP_t`:
///
/// ```
/// G += q_t dy_t^T,  dq_t = P_t dy_t
/// sum:    dk_t = G v_t,  dv_t = G^T k_t,  dPd = G
/// delta:  du = G^T k_t,  dk_t = G u_t,  dv_t = beta du,  dbeta_t = du . (v_t - vbar_t),
///         dvbar = -beta du,  dk_t += a_t P_{t-1} dvbar,  dPd = G + k_t dvbar^T
/// dg_t = a_t <dPd, P_{t-1}>,  dL/dP_{t-1} = a_t dPd
/// ```
enum GatedRecurrence {
    static func savedCount(_ shape: SequenceShape) -> Int { SumRule.recurrentSavedCount(shape) }

    /// Per step: scale (dphi dv), sger + sgemv (4 dphi dv), and for the delta
    /// rule one more sgemv; backward about three times that plus the recomputation.
    static func flops(_ shape: SequenceShape, delta: Bool, backward: Bool) -> Double {
        let T = Double(shape.T), dd = Double(shape.dphi * shape.dv)
        let forward = T * dd * (delta ? 7 : 5)
        return backward ? forward * 4 : forward
    }

    static func forward(y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>,
                        saved: UnsafeMutablePointer<Float>?,
                        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        beta: UnsafePointer<Float>?, g: UnsafePointer<Float>?, shape: SequenceShape) {
        let T = shape.T, dphi = shape.dphi, dv = shape.dv, n = shape.stateCount
        precondition(T >= 1 && dphi >= 1 && dv >= 1, "GatedRecurrence.forward: bad shape \(shape)")
        let K = SumRule.recurrentSegment(T)
        let u = UnsafeMutablePointer<Float>.allocate(capacity: dv)
        defer { u.deallocate() }
        for t in 0..<T {
            if let saved, t % K == 0 { (saved + (t / K) * n).update(from: state, count: n) }
            step(state: state, u: u, k: k + t * dphi, v: v + t * dv, beta: beta.map { $0[t] },
                 a: decay(g, t), dphi: dphi, dv: dv)
            BLAS.sgemv(.transpose, m: dphi, n: dv, alpha: 1, a: state, lda: dv, x: q + t * dphi,
                       beta: 0, y: y + t * dv)
        }
    }

    /// a_t = exp(g_t), computed in Float64 as one exponent; 1 without gates.
    @inline(__always)
    static func decay(_ g: UnsafePointer<Float>?, _ t: Int) -> Float {
        g.map { Float(exp(Double($0[t]))) } ?? 1
    }

    /// One write: P <- a P (skipped for a = 1), then P += k v^T (sum) or k u^T, u = beta (v - P^T k) (delta).
    @inline(__always)
    static func step(state: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>,
                     k: UnsafePointer<Float>, v: UnsafePointer<Float>, beta: Float?, a: Float, dphi: Int, dv: Int) {
        if a != 1 { BLAS.scale(state, count: dphi * dv, by: a) }
        if let b = beta {
            BLAS.sgemv(.transpose, m: dphi, n: dv, alpha: 1, a: state, lda: dv, x: k, beta: 0, y: u)
            for j in 0..<dv { u[j] = b * (v[j] - u[j]) }
            BLAS.sger(m: dphi, n: dv, alpha: 1, x: k, y: u, a: state, lda: dv)
        } else {
            BLAS.sger(m: dphi, n: dv, alpha: 1, x: k, y: v, a: state, lda: dv)
        }
    }

    static func backward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                         dv: UnsafeMutablePointer<Float>, dbeta: UnsafeMutablePointer<Float>?,
                         dg: UnsafeMutablePointer<Float>?, dstate: UnsafeMutablePointer<Float>,
                         dy: UnsafePointer<Float>,
                         q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         beta: UnsafePointer<Float>?, g: UnsafePointer<Float>?,
                         saved: UnsafePointer<Float>?, shape: SequenceShape) {
        let T = shape.T, dphi = shape.dphi, dvSize = shape.dv, n = shape.stateCount
        precondition(T >= 1 && dphi >= 1 && dvSize >= 1, "GatedRecurrence.backward: bad shape \(shape)")
        guard let saved else { preconditionFailure("GatedRecurrence.backward: needs the forward's checkpoints") }
        let K = SumRule.recurrentSegment(T)
        // One segment's states P_start ..< P_end (after each write), and u, du.
        let states = UnsafeMutablePointer<Float>.allocate(capacity: K * n + 2 * dvSize)
        defer { states.deallocate() }
        let u = states + K * n, du = u + dvSize
        let G = dstate

        for segment in stride(from: (T - 1) / K, through: 0, by: -1) {
            let start = segment * K, end = min(T, start + K)
            for t in start..<end {
                let s = states + (t - start) * n
                s.update(from: t == start ? saved + segment * n : UnsafePointer(s - n), count: n)
                step(state: s, u: u, k: k + t * dphi, v: v + t * dvSize, beta: beta.map { $0[t] },
                     a: decay(g, t), dphi: dphi, dv: dvSize)
            }
            for t in stride(from: end - 1, through: start, by: -1) {
                let qt = q + t * dphi, kt = k + t * dphi, vt = v + t * dvSize, dyt = dy + t * dvSize
                let dkt = dk + t * dphi, dvt = dv + t * dvSize
                let pt = UnsafePointer(states + (t - start) * n)
                let prev = t == start ? saved + segment * n : UnsafePointer(states + (t - start - 1) * n)
                let a = decay(g, t)
                // y_t = P_t^T q_t
                BLAS.sger(m: dphi, n: dvSize, alpha: 1, x: qt, y: dyt, a: G, lda: dvSize)
                BLAS.sgemv(.none, m: dphi, n: dvSize, alpha: 1, a: pt, lda: dvSize, x: dyt, beta: 0, y: dq + t * dphi)
                if let beta, let dbeta {
                    let b = beta[t]
                    // vbar = a P_{t-1}^T k, u = b (v - vbar)
                    BLAS.sgemv(.transpose, m: dphi, n: dvSize, alpha: a, a: prev, lda: dvSize, x: kt, beta: 0, y: u)
                    BLAS.sgemv(.transpose, m: dphi, n: dvSize, alpha: 1, a: G, lda: dvSize, x: kt, beta: 0, y: du)
                    var db: Float = 0
                    for j in 0..<dvSize {
                        let r = vt[j] - u[j]
                        db += du[j] * r
                        u[j] = b * r
                        dvt[j] = b * du[j]
                        du[j] = -b * du[j]          // dvbar
                    }
                    dbeta[t] = db
                    BLAS.sgemv(.none, m: dphi, n: dvSize, alpha: 1, a: G, lda: dvSize, x: u, beta: 0, y: dkt)
                    BLAS.sgemv(.none, m: dphi, n: dvSize, alpha: a, a: prev, lda: dvSize, x: du, beta: 1, y: dkt)
                    BLAS.sger(m: dphi, n: dvSize, alpha: 1, x: kt, y: du, a: G, lda: dvSize)
                } else {
                    BLAS.sgemv(.none, m: dphi, n: dvSize, alpha: 1, a: G, lda: dvSize, x: vt, beta: 0, y: dkt)
                    BLAS.sgemv(.transpose, m: dphi, n: dvSize, alpha: 1, a: G, lda: dvSize, x: kt, beta: 0, y: dvt)
                }
                // P_t = a P_{t-1} + ...: dg = a <dPd, P_{t-1}>, dL/dP_{t-1} = a dPd.
                if let dg {
                    dg[t] = a * BLAS.sdot(count: n, x: G, y: prev)
                    BLAS.scale(G, count: n, by: a)
                }
            }
        }
    }
}
