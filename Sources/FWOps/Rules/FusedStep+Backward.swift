extension FusedStep {
    /// One token of the recurrent backward, for one head: the adjoint of
    /// `forward` at step t, given the state before the step, `prev =
    /// P_{t-1}`, and `G = dL/dP_t` from the later steps (not yet holding this
    /// step's read); G is updated in place to dL/dP_{t-1}.
    ///
    /// With G' = G + q dy^T (y_t = P_t^T q adds its read):
    ///
    /// ```
    /// du    = G'^T k = G^T k + dy (k . q)
    /// sum:    dv = du,                       dk = G' v
    /// delta:  vbar = a prev^T k,  r = v - vbar,  u = beta r
    ///         dv = beta du,  dbeta = du . r,  w = dvbar = -beta du
    ///         dk = G' u + a prev w,          G' <- G' + k w^T
    /// dq    = P_t dy = a prev dy + k (u . dy)          (u = v for the sum rules)
    /// dg    = a <G', prev>,   dL/dP_{t-1} = a G'
    /// ```
    ///
    /// Two sweeps: the first reads G^T k (and prev^T k) in column blocks;
    /// the second walks the rows of G and prev once, forming every row's dk
    /// and dq by dot products and writing the row of G.
    ///
    /// - Parameters:
    ///   - G: `[dphi, dv]`, in dL/dP_t, out dL/dP_{t-1}.
    ///   - prev: `[dphi, dv]` P_{t-1}.
    ///   - dq, dk: `[dphi]`; dv: `[dv]`; dbeta, dg: one float (nil when the
    ///     rule has no such gate) — overwritten.
    ///   - scratch: `3 dv` floats.
    @inline(__always)
    static func backward(G: UnsafeMutablePointer<Float>, prev: UnsafePointer<Float>,
                         dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                         dv dvOut: UnsafeMutablePointer<Float>,
                         dbeta: UnsafeMutablePointer<Float>?, dg: UnsafeMutablePointer<Float>?,
                         dy: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                         v: UnsafePointer<Float>, beta: Float?, a: Float, dphi: Int, dv: Int,
                         scratch: UnsafeMutablePointer<Float>) {
        let gk = scratch, pk = scratch + dv, w = scratch + 2 * dv
        // Sweep 1: gk = G^T k, and pk = prev^T k for the delta rules.
        var c = 0
        while c + 16 <= dv { readColumns(SIMD16<Float>.self, G, prev, c, k, gk, beta == nil ? nil : pk, dphi, dv); c += 16 }
        while c + 4 <= dv { readColumns(SIMD4<Float>.self, G, prev, c, k, gk, beta == nil ? nil : pk, dphi, dv); c += 4 }
        while c < dv { readColumns(Float.self, G, prev, c, k, gk, beta == nil ? nil : pk, dphi, dv); c += 1 }

        // The per-column vectors (O(dv) work).
        let kq = dot(k, q, dphi)
        let u: UnsafePointer<Float>
        if let beta {
            var db: Float = 0
            let uu = pk          // u overwrites pk entry by entry
            for i in 0..<dv {
                let du = gk[i] + dy[i] * kq
                let r = v[i] - a * pk[i]
                db += du * r
                uu[i] = beta * r
                dvOut[i] = beta * du
                w[i] = -beta * du
            }
            dbeta?.pointee = db
            u = UnsafePointer(uu)
        } else {
            for i in 0..<dv { dvOut[i] = gk[i] + dy[i] * kq }
            u = v
        }
        let ud = dot(u, dy, dv)

        // Sweep 2: the rows.
        var dgSum: Float = 0
        let delta = beta != nil, gated = dg != nil
        for j in 0..<dphi {
            let gRow = G + j * dv, pRow = prev + j * dv
            var sums = RowSums()
            var c = 0
            rowColumns(SIMD16<Float>.self, &sums, &c, gRow, pRow, q[j], k[j], dy, u, w, a, delta, gated, dv)
            rowColumns(SIMD4<Float>.self, &sums, &c, gRow, pRow, q[j], k[j], dy, u, w, a, delta, gated, dv)
            rowColumns(Float.self, &sums, &c, gRow, pRow, q[j], k[j], dy, u, w, a, delta, gated, dv)
            // dk = G' u + a prev w (w = 0 for the sum rules); dq = a prev dy + k (u . dy).
            dk[j] = delta ? sums.gu + a * sums.pw : sums.gu
            dq[j] = a * sums.py + k[j] * ud
            dgSum += sums.dp
        }
        dg?.pointee = a * dgSum
    }

    /// Column sums of G and prev against k on columns `c ..< c + L.width`.
    @inline(__always)
    static func readColumns<L: FloatLanes>(_: L.Type, _ G: UnsafePointer<Float>, _ prev: UnsafePointer<Float>, _ c: Int,
                                           _ k: UnsafePointer<Float>, _ gk: UnsafeMutablePointer<Float>,
                                           _ pk: UnsafeMutablePointer<Float>?, _ dphi: Int, _ dv: Int) {
        var sg = L(repeating: 0), sp = L(repeating: 0)
        if pk != nil {
            for j in 0..<dphi {
                let kj = L(repeating: k[j])
                sg = sg + kj * L.load(G + j * dv + c)
                sp = sp + kj * L.load(prev + j * dv + c)
            }
        } else {
            for j in 0..<dphi { sg = sg + L(repeating: k[j]) * L.load(G + j * dv + c) }
        }
        sg.store(gk + c)
        if let pk { sp.store(pk + c) }
    }

    /// A row's dot products: gu = G'.u, pw = prev.w, py = prev.dy, dp = <dPd, prev>.
    struct RowSums {
        var gu: Float = 0, pw: Float = 0, py: Float = 0, dp: Float = 0
    }

    /// Row j of sweep 2 on the columns from `c` that fill whole `L` vectors:
    /// g' = G_j + q_j dy, d = g' + k_j w (delta), G_j <- a d, and the row's sums.
    @inline(__always)
    static func rowColumns<L: FloatLanes>(_: L.Type, _ sums: inout RowSums, _ c: inout Int,
                                          _ gRow: UnsafeMutablePointer<Float>, _ pRow: UnsafePointer<Float>,
                                          _ qj: Float, _ kj: Float, _ dy: UnsafePointer<Float>,
                                          _ u: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                          _ a: Float, _ delta: Bool, _ gated: Bool, _ dv: Int) {
        guard c + L.width <= dv else { return }
        let qv = L(repeating: qj), kv = L(repeating: kj), av = L(repeating: a)
        var gu = L(repeating: 0), pw = L(repeating: 0), py = L(repeating: 0), dp = L(repeating: 0)
        repeat {
            let p = L.load(pRow + c), dyc = L.load(dy + c)
            let g = L.load(gRow + c) + qv * dyc
            gu = gu + g * L.load(u + c)
            py = py + p * dyc
            var d = g
            if delta {
                let wc = L.load(w + c)
                pw = pw + p * wc
                d = g + kv * wc
            }
            if gated { dp = dp + d * p }
            (av * d).store(gRow + c)
            c += L.width
        } while c + L.width <= dv
        sums.gu += gu.total
        sums.pw += pw.total
        sums.py += py.total
        sums.dp += dp.total
    }
}
