// Float64 oracle of the sum rule (docs/contract.md section 4), written from the
// formulas with naive loops and the contract's state layout S [Dv, Dphi]:
//   S_t = S_{t-1} + v_t k_t^T,   y_t = S_t q_t.
// Its backward stores every state (the simplest correct algorithm, unlike the
// kernels); the tests check it against central finite differences of `loss`.

/// Naive Float64 sum rule for one sequence. Arrays are row-major: q, k
/// `[T, dphi]`, v and y `[T, dv]`, states `[dv, dphi]` (contract layout).
public enum SumRuleReference {
    /// Returns y `[T, dv]` and S_T `[dv, dphi]`; `s0` `[dv, dphi]` or nil for zero.
    public static func forward(q: [Double], k: [Double], v: [Double], s0: [Double]?,
                               T: Int, dphi: Int, dv: Int) -> (y: [Double], state: [Double]) {
        precondition(q.count == T * dphi && k.count == T * dphi && v.count == T * dv)
        var S = s0 ?? [Double](repeating: 0, count: dv * dphi)
        precondition(S.count == dv * dphi)
        var y = [Double](repeating: 0, count: T * dv)
        for t in 0..<T {
            for i in 0..<dv {
                for j in 0..<dphi { S[i * dphi + j] += v[t * dv + i] * k[t * dphi + j] }
            }
            for i in 0..<dv {
                var s = 0.0
                for j in 0..<dphi { s += S[i * dphi + j] * q[t * dphi + j] }
                y[t * dv + i] = s
            }
        }
        return (y, S)
    }

    /// The scalar the gradient tests differentiate: `<dy, y> + <dsT, S_T>`
    /// (`dsT` `[dv, dphi]`, nil for none).
    public static func loss(q: [Double], k: [Double], v: [Double], s0: [Double]?,
                            dy: [Double], dsT: [Double]?, T: Int, dphi: Int, dv: Int) -> Double {
        let (y, S) = forward(q: q, k: k, v: v, s0: s0, T: T, dphi: dphi, dv: dv)
        return dot(dy, y) + (dsT.map { dot($0, S) } ?? 0)
    }

    /// Gradients of `loss`: dq, dk `[T, dphi]`, dv `[T, dv]`, ds0 `[dv, dphi]`.
    /// Stores all T + 1 states, then walks back:
    /// dS_t = dS_{t+1} + dy_t q_t^T; dq_t = S_t^T dy_t; dk_t = dS_t^T v_t; dv_t = dS_t k_t.
    public static func backward(q: [Double], k: [Double], v: [Double], s0: [Double]?,
                                dy: [Double], dsT: [Double]?, T: Int, dphi: Int, dv: Int)
        -> (dq: [Double], dk: [Double], dv: [Double], ds0: [Double]) {
        let n = dv * dphi
        var states = [[Double]]()
        var S = s0 ?? [Double](repeating: 0, count: n)
        states.append(S)
        for t in 0..<T {
            for i in 0..<dv {
                for j in 0..<dphi { S[i * dphi + j] += v[t * dv + i] * k[t * dphi + j] }
            }
            states.append(S)
        }
        var dS = dsT ?? [Double](repeating: 0, count: n)
        var dq = [Double](repeating: 0, count: T * dphi)
        var dk = [Double](repeating: 0, count: T * dphi)
        var dvOut = [Double](repeating: 0, count: T * dv)
        for t in stride(from: T - 1, through: 0, by: -1) {
            let St = states[t + 1]
            for i in 0..<dv {
                for j in 0..<dphi { dS[i * dphi + j] += dy[t * dv + i] * q[t * dphi + j] }
            }
            for j in 0..<dphi {
                var a = 0.0, b = 0.0
                for i in 0..<dv {
                    a += St[i * dphi + j] * dy[t * dv + i]
                    b += dS[i * dphi + j] * v[t * dv + i]
                }
                dq[t * dphi + j] = a
                dk[t * dphi + j] = b
            }
            for i in 0..<dv {
                var s = 0.0
                for j in 0..<dphi { s += dS[i * dphi + j] * k[t * dphi + j] }
                dvOut[t * dv + i] = s
            }
        }
        return (dq, dk, dvOut, dS)
    }

    /// The transpose of a row-major `rows x cols` matrix (converts between the
    /// the contract's S `[dv, dphi]` and the kernels' S^T `[dphi, dv]`).
    public static func transposed<E>(_ a: [E], rows: Int, cols: Int) -> [E] {
        precondition(a.count == rows * cols)
        var out = a
        for i in 0..<rows {
            for j in 0..<cols { out[j * rows + i] = a[i * cols + j] }
        }
        return out
    }
}
