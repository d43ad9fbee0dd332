/// One token of the recurrent form, for one head, in plain SIMD Swift: no
/// BLAS call per token (issue 12 item 3). The state is `P = S^T`
/// `[dphi, dv]` row-major (stride dv; see `SequenceShape`); a_t = exp(g_t)
/// (1 for the ungated rules), u_t the written value:
///
/// ```
/// sum rules:   u = v                                       P_new = a P + k u^T
/// delta rules: vbar = a P^T k,  u = beta (v - vbar)         P_new = a P + k u^T
/// y = P_new^T q = a P^T q + u (k . q)
/// ```
///
/// The last line is why one read suffices: `P^T k` and `P^T q` come from the
/// same read of the old state, the write follows, and y needs no read of the
/// new one. The columns of P are independent (column i only meets u_i), so
/// the step walks P in blocks of 16 columns (then 4, then 1): for each block
/// one sweep down its dphi rows reads both products into registers, a
/// second sweep writes it (the sum rules need no `P^T k`, so read and write
/// are one sweep). A block of all rows is at most 8 KB at dphi = 128, so the
/// second sweep finds it in L1: each state entry comes from memory once per
/// token. With the attention denominator the ones column of v (dv = d + 1)
/// is the 1-wide tail. For a = 1 (ungated rules, or g = 0) the scaling is
/// skipped, which changes no bit (1 * p = p).
enum FusedStep {
    /// `sum_j a_j b_j` over n entries (k . q).
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>(), s: Float = 0
        var j = 0
        while j + 8 <= n { acc = acc + SIMD8.load(a + j) * SIMD8.load(b + j); j += 8 }
        while j < n { s += a[j] * b[j]; j += 1 }
        return acc.total + s
    }

    /// One write and one read of the state `P` `[dphi, dv]`: `P <- a P + k
    /// u^T` with u as above, `y` `[dv]` = `P_new^T q`. `beta` nil is a sum
    /// rule; for the delta rules `vbar` `[dv]` (nil: not kept) gets
    /// vbar = a P^T k, from which `write` recomputes this step bit for bit.
    @inline(__always)
    static func forward(state P: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>,
                        vbar: UnsafeMutablePointer<Float>?,
                        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        beta: Float?, a: Float, dphi: Int, dv: Int) {
        let kq = dot(k, q, dphi)
        var c = 0
        while c + 16 <= dv { columns(SIMD16<Float>.self, P, c, y, vbar, q, k, v, beta, a, kq, dphi, dv); c += 16 }
        while c + 4 <= dv { columns(SIMD4<Float>.self, P, c, y, vbar, q, k, v, beta, a, kq, dphi, dv); c += 4 }
        while c < dv { columns(Float.self, P, c, y, vbar, q, k, v, beta, a, kq, dphi, dv); c += 1 }
    }

    /// The step on columns `c ..< c + L.width` of P.
    @inline(__always)
    static func columns<L: FloatLanes>(_: L.Type, _ P: UnsafeMutablePointer<Float>, _ c: Int,
                                       _ y: UnsafeMutablePointer<Float>, _ vbarOut: UnsafeMutablePointer<Float>?,
                                       _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                                       _ beta: Float?, _ a: Float, _ kq: Float, _ dphi: Int, _ dv: Int) {
        let av = L(repeating: a), scaled = a != 1
        let u: L
        var pq = L(repeating: 0)   // (P^T q) on these columns, the old state
        if let beta {
            // Read sweep: pk = P^T k and pq from the old state.
            var pk = L(repeating: 0)
            var row = UnsafePointer(P + c)
            for j in 0..<dphi {
                let p = L.load(row)
                pk = pk + L(repeating: k[j]) * p
                pq = pq + L(repeating: q[j]) * p
                row += dv
            }
            // vbar = a P^T k, u = beta (v - vbar).
            let vbar = scaled ? av * pk : pk
            vbarOut.map { vbar.store($0 + c) }
            u = L(repeating: beta) * (L.load(v + c) - vbar)
            // Write sweep (the block is in L1 now): P <- a P + k u^T.
            writeColumns(P + c, k, u, av, scaled, dphi, dv)
        } else {
            // u = v is known before the read: one sweep reads (pq) and writes.
            u = L.load(v + c)
            var w = P + c
            for j in 0..<dphi {
                let p = L.load(w)
                pq = pq + L(repeating: q[j]) * p
                ((scaled ? av * p : p) + L(repeating: k[j]) * u).store(w)
                w += dv
            }
        }
        // y = a P^T q + u (k . q) = P_new^T q.
        ((scaled ? av * pq : pq) + u * L(repeating: kq)).store(y + c)
    }

    /// `P[:, c ..< c + L.width] <- a P + k u^T` (u the block's written values).
    @inline(__always)
    static func writeColumns<L: FloatLanes>(_ P: UnsafeMutablePointer<Float>, _ k: UnsafePointer<Float>, _ u: L,
                                            _ av: L, _ scaled: Bool, _ dphi: Int, _ dv: Int) {
        var w = P
        if scaled {
            for j in 0..<dphi { (av * L.load(w) + L(repeating: k[j]) * u).store(w); w += dv }
        } else {
            for j in 0..<dphi { (L.load(w) + L(repeating: k[j]) * u).store(w); w += dv }
        }
    }

    /// u = v (`beta` nil: the sum rules) or u = beta (v - vbar) (the delta
    /// rules), `[dv]`: the values a step writes, as both step kinds form them.
    @inline(__always)
    static func writtenValues(u: UnsafeMutablePointer<Float>, v: UnsafePointer<Float>, vbar: UnsafePointer<Float>?,
                              beta: Float?, dv: Int) {
        if let beta, let vbar {
            for i in 0..<dv { u[i] = beta * (v[i] - vbar[i]) }
        } else {
            u.update(from: v, count: dv)
        }
    }

    /// The write of a step the forward already took, from what it kept:
    /// `P <- a P + k u^T` with u = v (`beta` nil) or u = beta (v - vbar),
    /// computed exactly as `forward` computed them (so P is bit for bit the
    /// forward's), and no read. `u` `[dv]` gets the written values.
    @inline(__always)
    static func write(state P: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>,
                      k: UnsafePointer<Float>, v: UnsafePointer<Float>, vbar: UnsafePointer<Float>?,
                      beta: Float?, a: Float, dphi: Int, dv: Int) {
        writtenValues(u: u, v: v, vbar: vbar, beta: beta, dv: dv)
        var c = 0
        while c + 16 <= dv { writeColumns(P + c, k, SIMD16.load(u + c), SIMD16(repeating: a), a != 1, dphi, dv); c += 16 }
        while c + 4 <= dv { writeColumns(P + c, k, SIMD4.load(u + c), SIMD4(repeating: a), a != 1, dphi, dv); c += 4 }
        while c < dv { writeColumns(P + c, k, u[c], a, a != 1, dphi, dv); c += 1 }
    }
}
