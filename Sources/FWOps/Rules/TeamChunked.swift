import FWCore

/// A rule whose chunked form a team of workers runs on one sequence
/// (`ThreadOwnership.withTeam`), for fewer sequences than workers: one long
/// document, or a batch of one.
///
/// The value columns are cut into P parts (`FastWeightProgrammer+ValueSplit.swift`),
/// laid out part after part: y, v, dy, dv `[P, T, w]`, the state and its
/// gradient `[P, dphi, w]`, `saved` `[P, savedCount(part shape)]` (the same
/// per-part layout as the kernel's own chunked form, so either backward
/// reads either forward's `saved`). q, k, dq, dk are the sequence's
/// `[T, dphi]`, the gates and their gradients `[T]`; `shape` is one part's.
public protocol TeamChunkedRuleKernel: FastWeightRuleKernel {
    /// The chunked forward of one sequence, its P value parts run by `team`.
    static func teamForward(
        _ team: WorkerTeam, chunk: Int, parts: Int,
        y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>, saved: UnsafeMutablePointer<Float>?,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, gates: GatePointers,
        shape: SequenceShape)

    /// The chunked backward of one sequence: dq, dk, dgates overwritten
    /// with the sums over the parts, dv per part; dstate in dL/dS_T^T, out dL/dS_0^T.
    static func teamBackward(
        _ team: WorkerTeam, chunk: Int, parts: Int,
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        dgates: GateGradientPointers, dstate: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, gates: GatePointers,
        saved: UnsafePointer<Float>, shape: SequenceShape)
}

/// The team form of the shared chunk stages (`TeamChunked`), for the four
/// rules that use them: the rule's gates say which stages run (beta: the
/// WY form of the delta rules; g: the decay factors of the gated ones).
extension TeamChunkedRuleKernel {
    public static func teamForward(
        _ team: WorkerTeam, chunk: Int, parts: Int,
        y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>, saved: UnsafeMutablePointer<Float>?,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, gates: GatePointers,
        shape: SequenceShape
    ) {
        TeamChunked.forward(team, chunk: chunk, parts: parts, y: y, state: state, saved: saved,
                            savedCount: savedCount(.chunked(size: chunk), shape), q: q, k: k, v: v,
                            beta: Self.gates.contains(.beta) ? gates.beta! : nil,
                            g: Self.gates.contains(.g) ? gates.g! : nil, shape: shape)
    }

    public static func teamBackward(
        _ team: WorkerTeam, chunk: Int, parts: Int,
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        dgates: GateGradientPointers, dstate: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, gates: GatePointers,
        saved: UnsafePointer<Float>, shape: SequenceShape
    ) {
        let beta = Self.gates.contains(.beta), g = Self.gates.contains(.g)
        TeamChunked.backward(team, chunk: chunk, parts: parts, dq: dq, dk: dk, dv: dv,
                             dbeta: beta ? dgates.beta! : nil, dg: g ? dgates.g! : nil,
                             dstate: dstate, dy: dy, q: q, k: k, v: v,
                             beta: beta ? gates.beta! : nil, g: g ? gates.g! : nil, saved: saved,
                             savedCount: savedCount(.chunked(size: chunk), shape), shape: shape)
    }
}

/// The team form of the chunked rules (sum, delta and their gated forms),
/// segment by segment of `segmentChunks(team)` chunks, so its buffers stay
/// small whatever T is:
///
/// ```
/// forward, per segment:
///   1. every chunk in parallel:  decay factors, scores Pm = tril(Q K^T) o Gam,
///                                and for the delta rules gm, l and W = l^{-1} B e^G K
///   2. every part in parallel, its chunks in order (the state pass):
///                                [U = l^{-1} B V_p,  Unew_p = U - W P_p,]
///                                Y_p = e^G Q P_p + Pm X_p,  P_p <- e^{G_c} P_p + K^T e^{G_c - G} X_p
/// backward, segments and chunks in reverse:
///   1. as the forward
///   2. every part in parallel, its chunks in reverse: dH_p at the chunk's end kept,
///                                dX_p = e^{G_c - G} K dH_p + Pm^T dY_p,  dH_p <- e^{G_c} dH_p + (e^G Q)^T dY_p [- W^T dX_p]
///   3. every chunk in parallel:  dq, dk, dg summed over the parts (`keyAdjointParts`),
///                                and for the delta rules dv, dbeta (`wyAdjointParts`)
/// ```
///
/// Only stage 2 is sequential in time, and its work splits over the
/// value columns; the key side runs once per chunk instead of once per
/// part. X is V (sum rules) or Unew (delta rules).
enum TeamChunked {
    /// Chunks per segment: enough items to balance the team's stages 1 and 3.
    static func segmentChunks(_ team: WorkerTeam) -> Int { 16 * team.size }

    /// Where one chunk's key side sits in a segment's buffer.
    struct KeySlots {
        let c, dphi: Int
        let delta, decayed: Bool
        let decayCount, gmOffset, lOffset, wOffset, pmOffset, size: Int

        init(chunk c: Int, dphi: Int, delta: Bool, decayed: Bool) {
            self.c = c
            self.dphi = dphi
            self.delta = delta
            self.decayed = decayed
            decayCount = decayed ? ChunkStages.decayCount(c) : 0
            gmOffset = decayCount
            lOffset = gmOffset + (delta ? c * c : 0)
            wOffset = lOffset + (delta ? c * c : 0)
            pmOffset = wOffset + (delta ? c * dphi : 0)
            size = pmOffset + c * c
        }
    }

    /// The key side (stage 1) of the chunk of `c` rows at `start` into `slot`.
    static func keySide(_ slot: UnsafeMutablePointer<Float>, _ L: KeySlots, start: Int, c: Int,
                        q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                        beta: UnsafePointer<Float>?, g: UnsafePointer<Float>?) {
        let dphi = L.dphi
        let D = g.map { ChunkStages.decay(into: slot, g: $0 + start, c: c) }
        if let beta {
            ChunkStages.wyKeys(gm: slot + L.gmOffset, l: slot + L.lOffset, w: slot + L.wOffset,
                               k: k + start * dphi, beta: beta + start, c: c, dphi: dphi, decay: D)
        }
        ChunkStages.causalScores(slot + L.pmOffset, q: q + start * dphi, k: k + start * dphi,
                                 c: c, dphi: dphi, decay: D)
    }

    /// A stored chunk's decay factors (nil for the ungated rules).
    @inline(__always)
    static func decay(_ slot: UnsafeMutablePointer<Float>, _ L: KeySlots, c: Int) -> ChunkStages.Decay? {
        L.decayed ? ChunkStages.decayView(slot, c: c) : nil
    }

    /// The team forward; `beta` nil for the sum rules, `g` nil for the ungated ones.
    static func forward(
        _ team: WorkerTeam, chunk: Int, parts P: Int,
        y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>, saved: UnsafeMutablePointer<Float>?,
        savedCount: Int,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        beta: UnsafePointer<Float>?, g: UnsafePointer<Float>?, shape: SequenceShape
    ) {
        let T = shape.T, dphi = shape.dphi, w = shape.dv, stateCount = shape.stateCount
        precondition(T >= 1 && dphi >= 1 && w >= 1 && chunk >= 1 && P >= 1, "TeamChunked.forward: bad shape \(shape) chunk \(chunk)")
        let C = min(chunk, T), chunks = shape.chunkCount(chunk), seg = segmentChunks(team)
        let L = KeySlots(chunk: C, dphi: dphi, delta: beta != nil, decayed: g != nil)
        // Per worker: the write's K scratch [C, dphi] and Unew [C, w] when nothing is saved.
        let scratchSize = C * dphi + C * w
        let keys = UnsafeMutablePointer<Float>.allocate(capacity: min(seg, chunks) * L.size + team.size * scratchSize)
        keys.initialize(repeating: 0, count: min(seg, chunks) * L.size + team.size * scratchSize)
        defer { keys.deallocate() }
        let scratch = keys + min(seg, chunks) * L.size
        let ptrs = UncheckedSendable((y, state, saved, q, k, v, beta, g, keys, scratch))
        var first = 0
        while first < chunks {
            let n = min(seg, chunks - first)
            team.parallel(n) { j, _ in
                let (_, _, _, q, k, _, beta, g, keys, _) = ptrs.value
                let start = (first + j) * chunk
                keySide(keys + j * L.size, L, start: start, c: min(chunk, T - start), q: q, k: k, beta: beta, g: g)
            }
            team.parallel(P) { p, worker in
                let (y, state, saved, q, k, v, beta, _, keys, scratch) = ptrs.value
                let st = state + p * stateCount, vp = v + p * T * w, yp = y + p * T * w
                let rows = scratch + worker * scratchSize
                for j in 0..<n {
                    let index = first + j, start = index * chunk, c = min(chunk, T - start)
                    let slot = keys + j * L.size
                    let D = decay(slot, L, c: c)
                    if let saved { (saved + p * savedCount + index * stateCount).update(from: st, count: stateCount) }
                    var x = UnsafePointer(vp + start * w)
                    if let beta {
                        // Unew = l^{-1} B V_p - W P_p
                        let unew = saved.map { $0 + p * savedCount + chunks * stateCount + start * w } ?? rows + C * dphi
                        ChunkStages.wyValues(u: unew, l: slot + L.lOffset, v: vp + start * w, beta: beta + start, c: c, w: w)
                        BLAS.sgemm(.none, .none, m: c, n: w, k: dphi, alpha: -1, a: slot + L.wOffset, lda: dphi,
                                   b: st, ldb: w, beta: 1, c: unew, ldc: w)
                        x = UnsafePointer(unew)
                    }
                    ChunkStages.outputs(yp + start * w, q: q + start * dphi, state: st, scores: slot + L.pmOffset,
                                        x: x, ldx: w, c: c, dphi: dphi, dv: w, decay: D)
                    ChunkStages.write(st, k: k + start * dphi, x: x, ldx: w, c: c, dphi: dphi, dv: w,
                                      decay: D, scratch: rows)
                }
            }
            first += n
        }
    }

    /// The team backward; `beta`/`dbeta` nil for the sum rules, `g`/`dg` nil for the ungated ones.
    static func backward(
        _ team: WorkerTeam, chunk: Int, parts P: Int,
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        dbeta: UnsafeMutablePointer<Float>?, dg: UnsafeMutablePointer<Float>?,
        dstate: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        beta: UnsafePointer<Float>?, g: UnsafePointer<Float>?,
        saved: UnsafePointer<Float>, savedCount: Int, shape: SequenceShape
    ) {
        let T = shape.T, dphi = shape.dphi, w = shape.dv, stateCount = shape.stateCount
        precondition(T >= 1 && dphi >= 1 && w >= 1 && chunk >= 1 && P >= 1, "TeamChunked.backward: bad shape \(shape) chunk \(chunk)")
        let delta = beta != nil
        precondition(delta == (dbeta != nil) && (g != nil) == (dg != nil), "TeamChunked.backward: gates and their gradients differ")
        let C = min(chunk, T), chunks = shape.chunkCount(chunk), seg = segmentChunks(team)
        let slots = min(seg, chunks)
        let L = KeySlots(chunk: C, dphi: dphi, delta: delta, decayed: g != nil)
        // Per chunk and part: dH at the chunk's end [dphi, w] and dUnew [C, w] (delta rules).
        let partSize = stateCount + (delta ? C * w : 0)
        // Per worker: dS/dA [C, C], dW [C, dphi] (or e^G Q in stage 2), U [C, w], dG [C].
        let scratchSize = C * C + C * dphi + C * w + C
        let total = slots * L.size + slots * P * partSize + team.size * scratchSize
        let keys = UnsafeMutablePointer<Float>.allocate(capacity: total)
        keys.initialize(repeating: 0, count: total)
        defer { keys.deallocate() }
        let ends = keys + slots * L.size
        let scratch = ends + slots * P * partSize
        let savedUnew = saved + chunks * stateCount
        let mutable = { (p: UnsafePointer<Float>) in UnsafeMutablePointer(mutating: p) }
        let ins = UncheckedSendable((q, k, v, beta, g, dy, saved))
        let outs = UncheckedSendable((dq, dk, dv, dbeta, dg, dstate, keys, ends, scratch))
        var first = ((chunks - 1) / seg) * seg
        while first >= 0 {
            let n = min(seg, chunks - first)
            team.parallel(n) { j, _ in
                let (q, k, _, beta, g, _, _) = ins.value
                let (_, _, _, _, _, _, keys, _, _) = outs.value
                let start = (first + j) * chunk
                keySide(keys + j * L.size, L, start: start, c: min(chunk, T - start), q: q, k: k, beta: beta, g: g)
            }
            team.parallel(P) { p, worker in
                let (q, k, _, _, _, dy, _) = ins.value
                let (_, _, dv, _, _, dstate, keys, ends, scratch) = outs.value
                let dH = dstate + p * stateCount, dyp = dy + p * T * w
                for j in stride(from: n - 1, through: 0, by: -1) {
                    let start = (first + j) * chunk, c = min(chunk, T - start)
                    let slot = keys + j * L.size, end = ends + (j * P + p) * partSize
                    end.update(from: dH, count: stateCount)
                    let dx = delta ? end + stateCount : dv + p * T * w + start * w
                    ChunkStages.stateAdjointStep(dx: dx, dstate: dH, dy: dyp + start * w,
                                                 q: q + start * dphi, k: k + start * dphi, scores: slot + L.pmOffset,
                                                 wyKeys: delta ? UnsafePointer(slot + L.wOffset) : nil,
                                                 c: c, dphi: dphi, w: w, decay: decay(slot, L, c: c),
                                                 scratch: scratch + worker * scratchSize + C * C)
                }
            }
            team.parallel(n) { j, worker in
                let (q, k, v, beta, _, dy, saved) = ins.value
                let (dq, dk, dv, dbeta, dg, _, keys, ends, scratch) = outs.value
                let index = first + j, start = index * chunk, c = min(chunk, T - start)
                let slot = keys + j * L.size, end = ends + j * P * partSize
                let D = decay(slot, L, c: c)
                let mine = scratch + worker * scratchSize
                let ds = mine, dw = mine + C * C, u = dw + C * dphi, dG = u + C * w
                if dg != nil { dG.update(repeating: 0, count: c) }
                let state0 = ValuePartBlocks(base: mutable(saved + index * stateCount), stride: savedCount, count: P)
                let dH = ValuePartBlocks(base: end, stride: partSize, count: P)
                let dyParts = ValuePartBlocks(base: mutable(dy + start * w), stride: T * w, count: P)
                let vParts = ValuePartBlocks(base: mutable(v + start * w), stride: T * w, count: P)
                let x = delta ? ValuePartBlocks(base: mutable(savedUnew + start * w), stride: savedCount, count: P) : vParts
                ChunkStages.keyAdjointParts(dq: dq + start * dphi, dk: dk + start * dphi, dG: dg == nil ? nil : dG, ds: ds,
                                            dstate: dH, state0: state0, x: x, dy: dyParts,
                                            q: q + start * dphi, k: k + start * dphi, scores: slot + L.pmOffset,
                                            c: c, dphi: dphi, w: w, decay: D)
                if let beta, let dbeta {
                    ChunkStages.wyAdjointParts(dk: dk + start * dphi,
                                               dv: ValuePartBlocks(base: dv + start * w, stride: T * w, count: P),
                                               dbeta: dbeta + start, dG: dg == nil ? nil : dG,
                                               dunew: ValuePartBlocks(base: end + stateCount, stride: partSize, count: P),
                                               state0: state0, v: vParts, dw: dw, u: u, a: ds,
                                               gm: slot + L.gmOffset, l: slot + L.lOffset, W: slot + L.wOffset,
                                               k: k + start * dphi, beta: beta + start, c: c, dphi: dphi, w: w, decay: D)
                }
                if let dg { ChunkStages.cumulativeBackward(dg + start, dG: dG, c: c) }
            }
            first -= seg
        }
    }
}
