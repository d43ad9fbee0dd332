extension FusedStep {
    /// One token of the recurrent backward, for one head: the adjoint of
    /// `forward` at step t, given the state before the step, `prev =
    /// P_{t-1}`, the written values u (and, for the delta rules, the
    /// forward's vbar), and `G = dL/dP_t` from the later steps (not yet
    /// holding this step's read); G is updated in place to dL/dP_{t-1}.
    ///
    /// With G' = G + q dy^T (y_t = P_t^T q adds its read):
    ///
    /// ```
    /// du    = G'^T k = G^T k + dy (k . q)
    /// sum:    dv = du,                                      w = 0
    /// delta:  r = v - vbar,  dv = beta du,  dbeta = du . r,  w = dvbar = -beta du
    /// dk    = G' u + a prev w  = G u + q (dy . u) + a prev w
    /// dq    = P_t dy           = a prev dy + k (u . dy)
    /// dPd   = G' + k w^T       (the delta rules' vbar = a prev^T k adds k w^T)
    /// dg    = a <dPd, prev>    = a sum_j (G_j . prev_j + q_j (prev_j . dy) + k_j (prev_j . w))
    /// dL/dP_{t-1} = a dPd
    /// ```
    ///
    /// Two sweeps: the first reads G^T k in column blocks; the second walks
    /// the rows of G and prev once, forming each row's dk and dq from three
    /// dot products (four with the decay) and writing the row of G.
    ///
    /// - Parameters:
    ///   - G: `[dphi, dv]`, in dL/dP_t, out dL/dP_{t-1}.
    ///   - prev: `[dphi, dv]` P_{t-1}.
    ///   - dq, dk: `[dphi]`; dv: `[dv]`; dbeta, dg: one float (nil when the
    ///     rule has no such gate) — overwritten.
    ///   - u: `[dv]` the step's written values (`write`); vbar: `[dv]` (delta rules).
    ///   - scratch: `2 dv` floats.
    @inline(__always)
    static func backward(G: UnsafeMutablePointer<Float>, prev: UnsafePointer<Float>,
                         dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                         dv dvOut: UnsafeMutablePointer<Float>,
                         dbeta: UnsafeMutablePointer<Float>?, dg: UnsafeMutablePointer<Float>?,
                         dy: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                         v: UnsafePointer<Float>, u: UnsafePointer<Float>, vbar: UnsafePointer<Float>?,
                         beta: Float?, a: Float, dphi: Int, dv: Int,
                         scratch: UnsafeMutablePointer<Float>) {
        let gk = scratch, w = scratch + dv
        // Sweep 1: gk = G^T k.
        var c = 0
        while c + 16 <= dv { readColumns(SIMD16<Float>.self, G, c, k, gk, dphi, dv); c += 16 }
        while c + 4 <= dv { readColumns(SIMD4<Float>.self, G, c, k, gk, dphi, dv); c += 4 }
        while c < dv { readColumns(Float.self, G, c, k, gk, dphi, dv); c += 1 }

        // The per-column vectors (O(dv) work).
        let kq = dot(k, q, dphi)
        let delta = beta != nil, gated = dg != nil
        if let beta, let vbar {
            var db: Float = 0
            for i in 0..<dv {
                let du = gk[i] + dy[i] * kq
                db += du * (v[i] - vbar[i])
                dvOut[i] = beta * du
                w[i] = -beta * du
            }
            dbeta?.pointee = db
        } else {
            for i in 0..<dv { dvOut[i] = gk[i] + dy[i] * kq }
        }
        let ud = dot(u, dy, dv)

        // Sweep 2: the rows.
        var dgSum: Float = 0
        for j in 0..<dphi {
            let gRow = G + j * dv, pRow = prev + j * dv
            var sums = RowSums()
            var c = 0
            rowColumns(SIMD8<Float>.self, &sums, &c, gRow, pRow, q[j], k[j], dy, u, w, a, delta, gated, dv)
            rowColumns(SIMD4<Float>.self, &sums, &c, gRow, pRow, q[j], k[j], dy, u, w, a, delta, gated, dv)
            rowColumns(Float.self, &sums, &c, gRow, pRow, q[j], k[j], dy, u, w, a, delta, gated, dv)
            // dk = G u + q (dy . u) + a prev w;  dq = a prev dy + k (u . dy).
            dk[j] = delta ? sums.gu + q[j] * ud + a * sums.pw : sums.gu + q[j] * ud
            dq[j] = a * sums.py + k[j] * ud
            if gated { dgSum += sums.gp + q[j] * sums.py + (delta ? k[j] * sums.pw : 0) }
        }
        dg?.pointee = a * dgSum
    }

    /// `gk[c ..< c + L.width] = (G^T k)` on those columns.
    @inline(__always)
    static func readColumns<L: FloatLanes>(_: L.Type, _ G: UnsafePointer<Float>, _ c: Int,
                                           _ k: UnsafePointer<Float>, _ gk: UnsafeMutablePointer<Float>,
                                           _ dphi: Int, _ dv: Int) {
        var sg = L(repeating: 0)
        var row = G + c
        for j in 0..<dphi { sg = sg + L(repeating: k[j]) * L.load(row); row += dv }
        sg.store(gk + c)
    }

    /// A row's dot products: gu = G_j . u, pw = prev_j . w, py = prev_j . dy, gp = G_j . prev_j.
    struct RowSums {
        var gu: Float = 0, pw: Float = 0, py: Float = 0, gp: Float = 0
    }

    /// Row j of sweep 2 on the columns from `c` that fill whole `L` vectors:
    /// the row's sums, and G_j <- a (G_j + q_j dy + k_j w) (w only for the delta rules).
    @inline(__always)
    static func rowColumns<L: FloatLanes>(_: L.Type, _ sums: inout RowSums, _ c: inout Int,
                                          _ gRow: UnsafeMutablePointer<Float>, _ pRow: UnsafePointer<Float>,
                                          _ qj: Float, _ kj: Float, _ dy: UnsafePointer<Float>,
                                          _ u: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                          _ a: Float, _ delta: Bool, _ gated: Bool, _ dv: Int) {
        guard c + L.width <= dv else { return }
        let qv = L(repeating: qj), kv = L(repeating: kj), av = L(repeating: a)
        var gu = L(repeating: 0), pw = L(repeating: 0), py = L(repeating: 0), gp = L(repeating: 0)
        repeat {
            let p = L.load(pRow + c), dyc = L.load(dy + c), g = L.load(gRow + c)
            gu = gu + g * L.load(u + c)
            py = py + p * dyc
            var d = g + qv * dyc
            if delta {
                let wc = L.load(w + c)
                pw = pw + p * wc
                d = d + kv * wc
            }
            if gated {
                gp = gp + g * p
                d = av * d
            }
            d.store(gRow + c)
            c += L.width
        } while c + L.width <= dv
        sums.gu += gu.total
        sums.py += py.total
        if delta { sums.pw += pw.total }
        if gated { sums.gp += gp.total }
    }
}
