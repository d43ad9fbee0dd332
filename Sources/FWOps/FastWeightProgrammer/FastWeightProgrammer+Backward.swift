import FWCore

extension FastWeightProgrammer {
    /// Exact gradients of the forward that produced `cache` (docs/contract.md section 4).
    ///
    /// - Parameters:
    ///   - dy: dL/dy `[B, H, T, Dv]`.
    ///   - dstate: dL/dS_T `[B, H, Dv, Dphi]` (zero when nil).
    ///   - cache: from `forward(..., saveForBackward: true)`.
    /// - Returns: dq, dk `[B, H, T, Dk]`, dv `[B, H, T, Dv]`, a `[B, H, T]`
    ///   gradient per gate of the rule (dbeta, dg), dS_0 `[B, H, Dv, Dphi]`.
    /// - Throws: `FWError.shapeMismatch` for dy or dstate, `FWError.nonFinite`
    ///   naming the first NaN/Inf entry of either.
    public static func backward(dy: Tensor, dstate: Tensor? = nil, cache: FWPCache) throws -> FWPGradients {
        let op = cache.op
        let dims = cache.dims
        let (B, H, T, Dk, dv, dphi, dvi) = (dims.B, dims.H, dims.T, dims.dk, dims.dv, dims.dphi, dims.dvInner)
        let BH = dims.sequences
        try dy.checkShape("dy", [B, H, T, dv])
        if let ds = dstate { try ds.checkShape("dstate", [B, H, dv, dphi]) }
        try dy.checkFinite("dy")
        try dstate?.checkFinite("dstate")

        // 1. dL/d(kernel output). With the denominator, y = o / den where
        //    o = S q' and den = z . q' + 1e-6 (the ones column):
        //    do = dy / den,  dden = -sum_j dy_j o_j / den^2 = -sum_j dy_j y_j / den.
        var dyInner: [Float]
        if op.denominator {
            dyInner = [Float].uninitialized(count: BH * T * dvi)
            for r in 0..<(BH * T) {
                let den = cache.numerators[r * dvi + dv]
                var dden: Float = 0
                for j in 0..<dv {
                    let g = dy.storage[r * dv + j]
                    dyInner[r * dvi + j] = g / den
                    dden -= g * cache.numerators[r * dvi + j]
                }
                dyInner[r * dvi + dv] = dden / (den * den)
            }
        } else {
            dyInner = dy.storage
        }

        // 2. dL/dS_T^T per sequence in the internal layout (zero column for z).
        var dStates = [Float](repeating: 0, count: BH * dphi * dvi)
        if let ds = dstate {
            for s in 0..<BH {
                transposeInto(&dStates, offset: s * dphi * dvi, ld: dvi,
                              from: ds.storage, sourceOffset: s * dv * dphi, rows: dv, cols: dphi)
            }
        }

        // 3. The kernels' backward, one call per part-sequence in parallel
        //    (the forward's value split P; P = 1: one per sequence), then the
        //    parts' dq', dk' and gate gradients summed per sequence.
        let P = cache.valueParts
        let w = dvi / P
        let partShape = SequenceShape(T: T, dphi: dphi, dv: w)
        let dyParts = ValueParts.split(dyInner, groups: BH, rows: T, width: dvi, parts: P)
        var dStateParts = ValueParts.split(dStates, groups: BH, rows: dphi, width: dvi, parts: P)
        // The team form (Rules/TeamChunked.swift) sums the parts' dq', dk'
        // and gate gradients itself: one block per sequence (Q = 1), else P.
        let teamKernel = Self.teamKernel(rule: op.rule, algorithm: cache.algorithm, parts: P)
        let Q = teamKernel == nil ? P : 1
        var dqParts = [Float].uninitialized(count: BH * Q * T * dphi)
        var dkParts = [Float].uninitialized(count: BH * Q * T * dphi)
        var dvParts = [Float].uninitialized(count: BH * T * dvi)
        let ruleGates = op.rule.gates
        var dgateParts = [Float].uninitialized(count: ruleGates.count * BH * Q * T)
        let savedCount = cache.savedCount
        cache.qf.withUnsafeBufferPointer { qp in
        cache.kf.withUnsafeBufferPointer { kp in
        cache.v.withUnsafeBufferPointer { vp in
        cache.gates.withUnsafeBufferPointer { bp in
        cache.saved.withUnsafeBufferPointer { savedp in
        dyParts.withUnsafeBufferPointer { dyp in
        dqParts.withUnsafeMutableBufferPointer { dqp in
        dkParts.withUnsafeMutableBufferPointer { dkp in
        dvParts.withUnsafeMutableBufferPointer { dvp in
        dgateParts.withUnsafeMutableBufferPointer { dbp in
        dStateParts.withUnsafeMutableBufferPointer { dsp in
            let ins = UncheckedSendable((qp, kp, vp, bp, savedp, dyp))
            let outs = UncheckedSendable((dqp, dkp, dvp, dbp, dsp))
            if let (teamKernel, chunk) = teamKernel {
                ThreadOwnership.withTeam { team in
                    for seq in 0..<BH {
                        let s0 = seq * P
                        teamKernel.teamBackward(
                            team, chunk: chunk, parts: P,
                            dq: dqp.baseAddress! + seq * T * dphi, dk: dkp.baseAddress! + seq * T * dphi,
                            dv: dvp.baseAddress! + s0 * T * w,
                            dgates: GateGradientPointers(sequence: seq, T: T, of: ruleGates, in: dbp),
                            dstate: dsp.baseAddress! + s0 * dphi * w, dy: dyp.baseAddress! + s0 * T * w,
                            q: qp.baseAddress! + seq * T * dphi, k: kp.baseAddress! + seq * T * dphi,
                            v: vp.baseAddress! + s0 * T * w,
                            gates: GatePointers(sequence: seq, T: T, of: ruleGates, in: bp),
                            saved: savedp.baseAddress! + s0 * savedCount, shape: partShape)
                    }
                }
                return
            }
            ThreadOwnership.forEachSequence(BH * P) { s in
                let (qp, kp, vp, bp, savedp, dyp) = ins.value
                let (dqp, dkp, dvp, dbp, dsp) = outs.value
                let seq = s / P   // the sequence whose q', k' and gates part s read
                op.rule.kernel.backward(
                    cache.algorithm,
                    dq: dqp.baseAddress! + s * T * dphi, dk: dkp.baseAddress! + s * T * dphi,
                    dv: dvp.baseAddress! + s * T * w,
                    dgates: GateGradientPointers(sequence: s, T: T, of: ruleGates, in: dbp),
                    dstate: dsp.baseAddress! + s * dphi * w,
                    dy: dyp.baseAddress! + s * T * w,
                    q: qp.baseAddress! + seq * T * dphi, k: kp.baseAddress! + seq * T * dphi,
                    v: vp.baseAddress! + s * T * w,
                    gates: GatePointers(sequence: seq, T: T, of: ruleGates, in: bp),
                    saved: savedCount > 0 ? savedp.baseAddress! + s * savedCount : nil,
                    shape: partShape)
            }
        }}}}}}}}}}}
        let dqf = ValueParts.sum(dqParts, groups: BH, block: T * dphi, parts: Q)
        let dkf = ValueParts.sum(dkParts, groups: BH, block: T * dphi, parts: Q)
        let dvInner = ValueParts.merge(dvParts, groups: BH, rows: T, width: dvi, parts: P)
        dStates = ValueParts.merge(dStateParts, groups: BH, rows: dphi, width: dvi, parts: P)
        // [gates, BH * Q, T] -> [gates, BH, T]: per gate, the same sum over parts.
        var dgateValues: [Float] = []
        for i in 0..<ruleGates.count {
            let one = Array(dgateParts[(i * BH * Q * T)..<((i + 1) * BH * Q * T)])
            dgateValues += ValueParts.sum(one, groups: BH, block: T, parts: Q)
        }

        // 4. Through n and phi back to the raw q and k.
        let dqRaw = op.featureMapBackward(dout: dqf, x: cache.q, out: cache.qf, omega: cache.omega, dims: dims)
        let dkRaw = op.featureMapBackward(dout: dkf, x: cache.k, out: cache.kf, omega: cache.omega, dims: dims)

        var dvOut: Tensor
        if op.denominator {
            dvOut = Tensor.uninitialized(shape: [B, H, T, dv])
            for r in 0..<(BH * T) {
                for j in 0..<dv { dvOut.storage[r * dv + j] = dvInner[r * dvi + j] }
            }
        } else {
            dvOut = Tensor(shape: [B, H, T, dv], storage: dvInner)
        }
        var dS0 = Tensor.uninitialized(shape: [B, H, dv, dphi])
        for s in 0..<BH {
            transposeInto(&dS0.storage, offset: s * dv * dphi, ld: dphi,
                          from: dStates, sourceOffset: s * dphi * dvi, rows: dphi, cols: dv, sourceLD: dvi)
        }
        var gateGradients = FWPGates()
        for (i, gate) in ruleGates.enumerated() {
            gateGradients[gate] = Tensor(shape: [B, H, T], storage: Array(dgateValues[(i * BH * T)..<((i + 1) * BH * T)]))
        }
        return FWPGradients(
            dq: dqRaw.reshaped([B, H, T, Dk]), dk: dkRaw.reshaped([B, H, T, Dk]), dv: dvOut,
            dgates: gateGradients, dstate: dS0)
    }

    /// dL/dx from dL/d(n(phi(x))) over `[BH, T, Dk]` rows, in parallel over sequences.
    func featureMapBackward(dout: [Float], x: Tensor, out: [Float], omega: Tensor?, dims: FWPDims) -> Tensor {
        let (T, dk, dphi) = (dims.T, dims.dk, dims.dphi)
        var dx = Tensor.uninitialized(shape: x.shape)
        let map = featureMap, norm = normalization
        let omegaValues = omega?.storage ?? []
        let hasOmega = omega != nil
        let blocks = Self.rowBlocks(sequences: dims.sequences, rows: T), per = (T + blocks - 1) / blocks
        dout.withUnsafeBufferPointer { gp in
        x.storage.withUnsafeBufferPointer { xp in
        out.withUnsafeBufferPointer { op in
        omegaValues.withUnsafeBufferPointer { wp in
        dx.storage.withUnsafeMutableBufferPointer { dxp in
            let ptrs = UncheckedSendable((gp, xp, op, wp, dxp))
            ThreadOwnership.forEachSequence(dims.sequences * blocks) { i in
                let (gp, xp, op, wp, dxp) = ptrs.value
                let r0 = (i / blocks) * T + (i % blocks) * per   // as in applyFeatureMap
                let rows = min(per, T - (i % blocks) * per)
                guard rows > 0 else { return }
                map.backward(dx: dxp.baseAddress! + r0 * dk, dout: gp.baseAddress! + r0 * dphi,
                             x: xp.baseAddress! + r0 * dk, out: op.baseAddress! + r0 * dphi,
                             rows: rows, d: dk, omega: hasOmega ? wp.baseAddress : nil, normalization: norm)
            }
        }}}}}
        return dx
    }
}
