import FWCore

extension GatedDeltaRule {
    /// Scratch of one call, one allocation: gm, l `[C, C]`; the scores and
    /// their adjoint `[2, C, C]`; [W | U] and [dW | dU] `[C, dphi + dv]`;
    /// Unew `[C, dv]` (when the forward saves nothing); the decay factors
    /// (`G`, `ChunkStages.decayCount`); dG `[C]`; a row
    /// buffer `[C, max(dphi, dv)]`.
    struct Workspace {
        let base: UnsafeMutablePointer<Float>
        let gm, l, p, wu, dwu, unew, G, dG, rows: UnsafeMutablePointer<Float>

        init(chunk c: Int, dphi: Int, dv: Int) {
            let ld = dphi + dv, cc = c * c
            let count = 4 * cc + 2 * c * ld + c * dv + ChunkStages.decayCount(c) + c + c * max(dphi, dv)
            base = .allocate(capacity: count)
            // Zeros once: l's upper triangle and diagonal are never written.
            base.initialize(repeating: 0, count: count)
            gm = base
            l = gm + cc
            p = l + cc
            wu = p + 2 * cc
            dwu = wu + c * ld
            unew = dwu + c * ld
            G = unew + c * dv
            dG = G + ChunkStages.decayCount(c)
            rows = dG + c
        }

        func deallocate() { base.deallocate() }
    }

    /// Chunked forward (decay-weighted WY form); `saved` receives the
    /// chunk-start states `[chunks, dphi, dv]`, then Unew `[T, dv]`.
    public static func chunkedForward(
        y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>, saved: UnsafeMutablePointer<Float>?,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, g: UnsafePointer<Float>?, shape: SequenceShape, chunk: Int
    ) {
        let T = shape.T, dphi = shape.dphi, dv = shape.dv, ld = dphi + dv
        precondition(T >= 1 && dphi >= 1 && dv >= 1 && chunk >= 1, "GatedDeltaRule.chunkedForward: bad shape \(shape) chunk \(chunk)")
        let ws = Workspace(chunk: min(chunk, T), dphi: dphi, dv: dv)
        defer { ws.deallocate() }
        let savedUnew = saved.map { $0 + shape.chunkCount(chunk) * shape.stateCount }
        var index = 0, start = 0
        while start < T {
            let c = min(chunk, T - start)
            let qc = q + start * dphi, kc = k + start * dphi, vc = v + start * dv
            if let saved { (saved + index * shape.stateCount).update(from: state, count: shape.stateCount) }
            let unew = savedUnew.map { $0 + start * dv } ?? ws.unew
            let D = g.map { ChunkStages.decay(into: ws.G, g: $0 + start, c: c) }
            ChunkStages.wySolve(gm: ws.gm, l: ws.l, wu: ws.wu, k: kc, v: vc, beta: beta + start,
                                c: c, dphi: dphi, dv: dv, decay: D)
            // Unew = U - W P
            for i in 0..<c { (unew + i * dv).update(from: ws.wu + i * ld + dphi, count: dv) }
            BLAS.sgemm(.none, .none, m: c, n: dv, k: dphi, alpha: -1, a: ws.wu, lda: ld,
                       b: state, ldb: dv, beta: 1, c: unew, ldc: dv)
            ChunkStages.causalScores(ws.p, q: qc, k: kc, c: c, dphi: dphi, decay: D)
            ChunkStages.outputs(y + start * dv, q: qc, state: state, scores: ws.p, x: unew, ldx: dv,
                                c: c, dphi: dphi, dv: dv, decay: D)
            ChunkStages.write(state, k: kc, x: unew, ldx: dv, c: c, dphi: dphi, dv: dv, decay: D, scratch: ws.rows)
            start += c
            index += 1
        }
    }

    /// Chunked backward: the chunks in reverse, recomputing each chunk's WY
    /// form and scores; the write's adjoint, the outputs', `Unew = U - W P`'s,
    /// then the WY adjoint (`ChunkStages.wyAdjoint`), then dg = reverse-cumsum(dG).
    public static func chunkedBackward(
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        dbeta: UnsafeMutablePointer<Float>, dg: UnsafeMutablePointer<Float>?,
        dstate: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, g: UnsafePointer<Float>?,
        saved: UnsafePointer<Float>?, shape: SequenceShape, chunk: Int
    ) {
        let T = shape.T, dphi = shape.dphi, dvSize = shape.dv, ld = dphi + dvSize
        precondition(T >= 1 && dphi >= 1 && dvSize >= 1 && chunk >= 1, "GatedDeltaRule.chunkedBackward: bad shape")
        guard let saved else { preconditionFailure("GatedDeltaRule.chunkedBackward: saved is nil") }
        let ws = Workspace(chunk: min(chunk, T), dphi: dphi, dv: dvSize)
        defer { ws.deallocate() }
        let chunks = shape.chunkCount(chunk)
        for index in stride(from: chunks - 1, through: 0, by: -1) {
            let start = index * chunk
            let c = min(chunk, T - start)
            let qc = q + start * dphi, kc = k + start * dphi, vc = v + start * dvSize, bc = beta + start
            let dqc = dq + start * dphi, dkc = dk + start * dphi, dvc = dv + start * dvSize
            let p0 = saved + index * shape.stateCount
            let unew = saved + chunks * shape.stateCount + start * dvSize
            let dunew = ws.dwu + dphi
            let D = g.map { ChunkStages.decay(into: ws.G, g: $0 + start, c: c) }
            ChunkStages.wySolve(gm: ws.gm, l: ws.l, wu: ws.wu, k: kc, v: vc, beta: bc,
                                c: c, dphi: dphi, dv: dvSize, decay: D)
            ChunkStages.causalScores(ws.p, q: qc, k: kc, c: c, dphi: dphi, decay: D)
            if g != nil { ws.dG.update(repeating: 0, count: c) }
            ChunkStages.writeBackward(dx: dunew, lddx: ld, dk: dkc, dG: g == nil ? nil : ws.dG, dstate: dstate,
                                      k: kc, x: unew, ldx: dvSize, state0: p0, c: c, dphi: dphi, dv: dvSize, decay: D)
            ChunkStages.outputsBackward(dq: dqc, dk: dkc, dx: dunew, lddx: ld, dG: g == nil ? nil : ws.dG, dstate0: dstate,
                                        dy: dy + start * dvSize, q: qc, k: kc, x: unew, ldx: dvSize, state0: p0,
                                        p: ws.p, c: c, dphi: dphi, dv: dvSize, decay: D, scratch: ws.rows)
            // Unew = U - W P0: dP0 -= W^T dUnew, dW = -dUnew P0^T.
            BLAS.sgemm(.transpose, .none, m: dphi, n: dvSize, k: c, alpha: -1, a: ws.wu, lda: ld,
                       b: dunew, ldb: ld, beta: 1, c: dstate, ldc: dvSize)
            BLAS.sgemm(.none, .transpose, m: c, n: dphi, k: dvSize, alpha: -1, a: dunew, lda: ld,
                       b: p0, ldb: dvSize, beta: 0, c: ws.dwu, ldc: ld)
            ChunkStages.wyAdjoint(dk: dkc, dv: dvc, dbeta: dbeta + start, dG: g == nil ? nil : ws.dG, dwu: ws.dwu, a: ws.p,
                                  gm: ws.gm, l: ws.l, wu: ws.wu, k: kc, v: vc, beta: bc,
                                  c: c, dphi: dphi, dvSize: dvSize, decay: D)
            if let dg { ChunkStages.cumulativeBackward(dg + start, dG: ws.dG, c: c) }
        }
    }
}
