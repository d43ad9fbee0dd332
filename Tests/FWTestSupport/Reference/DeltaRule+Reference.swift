// Float64 oracle for the delta rule (docs/contract.md section 4), written from the
// formulas with naive loops and the contract's own layout: S is [dv, dphi]
// (not the engine's internal S^T). Kept forever: every form of the delta
// rule is tested against it.

/// Float64 reference of the delta rule on one sequence.
///
/// Inputs are row-major: q, k `[T, dphi]`, v `[T, dv]`, beta `[T]`,
/// states `[dv, dphi]` (contract layout).
public enum DeltaRuleReference {
    /// Outputs of the forward: y `[T, dv]` and S_T `[dv, dphi]`.
    public struct Forward {
        public var y: [Double]
        public var state: [Double]
    }

    /// Gradients of `L = <dy, y> + <dS_T, S_T>`.
    public struct Gradients {
        public var dq: [Double]
        public var dk: [Double]
        public var dv: [Double]
        public var dbeta: [Double]
        /// dL/dS_0 `[dv, dphi]`.
        public var dstate: [Double]
    }

    /// For t = 1..T: vbar = S k_t; S += beta_t (v_t - vbar) k_t^T; y_t = S q_t.
    public static func forward(q: [Double], k: [Double], v: [Double], beta: [Double],
                               state0: [Double]?, T: Int, dphi: Int, dv: Int) -> Forward {
        var s = state0 ?? [Double](repeating: 0, count: dv * dphi)
        var y = [Double](repeating: 0, count: T * dv)
        for t in 0..<T {
            for i in 0..<dv {
                var vbar = 0.0
                for j in 0..<dphi { vbar += s[i * dphi + j] * k[t * dphi + j] }
                let e = beta[t] * (v[t * dv + i] - vbar)
                for j in 0..<dphi { s[i * dphi + j] += e * k[t * dphi + j] }
            }
            for i in 0..<dv {
                var acc = 0.0
                for j in 0..<dphi { acc += s[i * dphi + j] * q[t * dphi + j] }
                y[t * dv + i] = acc
            }
        }
        return Forward(y: y, state: s)
    }

    /// The scalar loss `<dy, y> + <dS_T, S_T>` (dS_T zero when nil).
    public static func loss(q: [Double], k: [Double], v: [Double], beta: [Double],
                            state0: [Double]?, dy: [Double], dstateT: [Double]?,
                            T: Int, dphi: Int, dv: Int) -> Double {
        let f = forward(q: q, k: k, v: v, beta: beta, state0: state0, T: T, dphi: dphi, dv: dv)
        var l = dot(dy, f.y)
        if let dstateT { l += dot(dstateT, f.state) }
        return l
    }

    /// Reverse-mode gradients of `loss`, storing every state S_0..S_T (an
    /// oracle, memory is no concern). With e_t = v_t - S_{t-1} k_t and
    /// S_t = S_{t-1} + beta_t e_t k_t^T, G = dL/dS_t:
    /// G += dy_t q_t^T, dq_t = S_t^T dy_t, dbeta_t = e_t^T G k_t,
    /// de = beta_t G k_t, dv_t = de, dk_t = beta_t G^T e_t - S_{t-1}^T de,
    /// dL/dS_{t-1} = G - de k_t^T.
    public static func gradients(q: [Double], k: [Double], v: [Double], beta: [Double],
                                 state0: [Double]?, dy: [Double], dstateT: [Double]?,
                                 T: Int, dphi: Int, dv: Int) -> Gradients {
        let n = dv * dphi
        var states = [[Double]]()
        states.reserveCapacity(T + 1)
        var s = state0 ?? [Double](repeating: 0, count: n)
        states.append(s)
        for t in 0..<T {
            for i in 0..<dv {
                var vbar = 0.0
                for j in 0..<dphi { vbar += s[i * dphi + j] * k[t * dphi + j] }
                let e = beta[t] * (v[t * dv + i] - vbar)
                for j in 0..<dphi { s[i * dphi + j] += e * k[t * dphi + j] }
            }
            states.append(s)
        }
        var g = dstateT ?? [Double](repeating: 0, count: n)
        var dq = [Double](repeating: 0, count: T * dphi)
        var dk = [Double](repeating: 0, count: T * dphi)
        var dvOut = [Double](repeating: 0, count: T * dv)
        var dbeta = [Double](repeating: 0, count: T)
        for t in stride(from: T - 1, through: 0, by: -1) {
            let st = states[t + 1], sp = states[t]
            // y_t = S_t q_t
            for i in 0..<dv {
                for j in 0..<dphi {
                    g[i * dphi + j] += dy[t * dv + i] * q[t * dphi + j]
                    dq[t * dphi + j] += st[i * dphi + j] * dy[t * dv + i]
                }
            }
            // e = v_t - S_{t-1} k_t; Gk = G k_t
            var e = [Double](repeating: 0, count: dv)
            var gk = [Double](repeating: 0, count: dv)
            for i in 0..<dv {
                var vbar = 0.0, acc = 0.0
                for j in 0..<dphi {
                    vbar += sp[i * dphi + j] * k[t * dphi + j]
                    acc += g[i * dphi + j] * k[t * dphi + j]
                }
                e[i] = v[t * dv + i] - vbar
                gk[i] = acc
            }
            var db = 0.0
            for i in 0..<dv { db += e[i] * gk[i] }
            dbeta[t] = db
            let b = beta[t]
            for i in 0..<dv {
                let de = b * gk[i]
                dvOut[t * dv + i] = de
                for j in 0..<dphi {
                    dk[t * dphi + j] += b * g[i * dphi + j] * e[i] - sp[i * dphi + j] * de
                }
            }
            for i in 0..<dv {
                let de = b * gk[i]
                for j in 0..<dphi { g[i * dphi + j] -= de * k[t * dphi + j] }
            }
        }
        return Gradients(dq: dq, dk: dk, dv: dvOut, dbeta: dbeta, dstate: g)
    }
}
