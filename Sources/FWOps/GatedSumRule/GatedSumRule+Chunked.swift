import FWCore

extension GatedSumRule {
    /// Scratch of one call: decayed scores and their adjoint `[2, C, C]`,
    /// the decay factors (`G`, `ChunkStages.decayCount`), dG `[C]`, a `[C, max(dphi, dv)]` row buffer.
    struct Workspace {
        let base: UnsafeMutablePointer<Float>
        let p: UnsafeMutablePointer<Float>, G: UnsafeMutablePointer<Float>, dG: UnsafeMutablePointer<Float>
        let rows: UnsafeMutablePointer<Float>

        init(chunk c: Int, dphi: Int, dv: Int) {
            let count = 2 * c * c + ChunkStages.decayCount(c) + c + c * max(dphi, dv)
            base = .allocate(capacity: count)
            base.initialize(repeating: 0, count: count)
            p = base
            G = base + 2 * c * c
            dG = G + ChunkStages.decayCount(c)
            rows = dG + c
        }

        func deallocate() { base.deallocate() }
    }

    /// Chunked forward: per chunk, G = cumsum(g), Y = diag(e^G) Q P + (tril(Q K^T) o Gam) V,
    /// P <- e^{G_c} P + K^T diag(e^{G_c - G}) V. `saved` receives the chunk-start states.
    public static func chunkedForward(
        y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>, saved: UnsafeMutablePointer<Float>?,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, g: UnsafePointer<Float>?,
        shape: SequenceShape, chunk: Int
    ) {
        let T = shape.T, dphi = shape.dphi, dv = shape.dv
        precondition(T >= 1 && dphi >= 1 && dv >= 1 && chunk >= 1, "GatedSumRule.chunkedForward: bad shape \(shape) chunk \(chunk)")
        let ws = Workspace(chunk: min(chunk, T), dphi: dphi, dv: dv)
        defer { ws.deallocate() }
        var index = 0, start = 0
        while start < T {
            let c = min(chunk, T - start)
            let qc = q + start * dphi, kc = k + start * dphi, vc = v + start * dv
            if let saved { (saved + index * shape.stateCount).update(from: state, count: shape.stateCount) }
            let D = g.map { ChunkStages.decay(into: ws.G, g: $0 + start, c: c) }
            ChunkStages.causalScores(ws.p, q: qc, k: kc, c: c, dphi: dphi, decay: D)
            ChunkStages.outputs(y + start * dv, q: qc, state: state, scores: ws.p, x: vc, ldx: dv,
                                c: c, dphi: dphi, dv: dv, decay: D)
            ChunkStages.write(state, k: kc, x: vc, ldx: dv, c: c, dphi: dphi, dv: dv, decay: D, scratch: ws.rows)
            start += c
            index += 1
        }
    }

    /// Chunked backward: the chunks in reverse from the saved chunk-start
    /// states, the write's adjoint then the outputs' (`ChunkStages`), then
    /// dg = reverse-cumsum(dG) within the chunk.
    public static func chunkedBackward(
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        dg: UnsafeMutablePointer<Float>?, dstate: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, g: UnsafePointer<Float>?,
        saved: UnsafePointer<Float>?, shape: SequenceShape, chunk: Int
    ) {
        let T = shape.T, dphi = shape.dphi, dvSize = shape.dv
        precondition(T >= 1 && dphi >= 1 && dvSize >= 1 && chunk >= 1, "GatedSumRule.chunkedBackward: bad shape")
        guard let saved else { preconditionFailure("GatedSumRule.chunkedBackward: saved is nil") }
        let ws = Workspace(chunk: min(chunk, T), dphi: dphi, dv: dvSize)
        defer { ws.deallocate() }
        for index in stride(from: shape.chunkCount(chunk) - 1, through: 0, by: -1) {
            let start = index * chunk
            let c = min(chunk, T - start)
            let qc = q + start * dphi, kc = k + start * dphi, vc = v + start * dvSize
            let dqc = dq + start * dphi, dkc = dk + start * dphi, dvc = dv + start * dvSize
            let p0 = saved + index * shape.stateCount
            let D = g.map { ChunkStages.decay(into: ws.G, g: $0 + start, c: c) }
            ChunkStages.causalScores(ws.p, q: qc, k: kc, c: c, dphi: dphi, decay: D)
            if g != nil { ws.dG.update(repeating: 0, count: c) }
            ChunkStages.writeBackward(dx: dvc, lddx: dvSize, dk: dkc, dG: g == nil ? nil : ws.dG, dstate: dstate,
                                      k: kc, x: vc, ldx: dvSize, state0: p0, c: c, dphi: dphi, dv: dvSize, decay: D)
            ChunkStages.outputsBackward(dq: dqc, dk: dkc, dx: dvc, lddx: dvSize, dG: g == nil ? nil : ws.dG, dstate0: dstate,
                                        dy: dy + start * dvSize, q: qc, k: kc, x: vc, ldx: dvSize, state0: p0,
                                        p: ws.p, c: c, dphi: dphi, dv: dvSize, decay: D, scratch: ws.rows)
            if let dg { ChunkStages.cumulativeBackward(dg + start, dG: ws.dG, c: c) }
        }
    }
}
