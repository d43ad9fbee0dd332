import FWCore

extension FastWeightProgrammer {
    /// Runs the op forward over a batch.
    ///
    /// - Parameters:
    ///   - q: queries `[B, H, T, Dk]`.
    ///   - k: keys `[B, H, T, Dk]`.
    ///   - v: values `[B, H, T, Dv]`.
    ///   - beta: write strengths `[B, H, T]` (the delta rules).
    ///   - g: log-decays `[B, H, T]`, <= 0 (the gated rules).
    ///   - omega: FAVOR+'s projection `[M, Dk]` (`favor:M` only).
    ///   - initialState: S_0 `[B, H, Dv, Dphi]` (zero when nil; not with the denominator).
    ///   - saveForBackward: keep what `backward` needs (false saves memory and time).
    /// - Returns: y `[B, H, T, Dv]`, S_T `[B, H, Dv, Dphi]` and the cache.
    /// - Throws: `FWError.shapeMismatch` naming the tensor, `FWError.invalidArgument`
    ///   for inputs that do not fit the configuration (or sizes beyond
    ///   `SizeLimits` or the machine's memory), `FWError.nonFinite` naming the
    ///   tensor and index of the first NaN/Inf entry: the op never runs on them.
    public func forward(q: Tensor, k: Tensor, v: Tensor, beta: Tensor? = nil, g: Tensor? = nil, omega: Tensor? = nil,
                        initialState: Tensor? = nil, saveForBackward: Bool = true) throws -> FWPResult {
        try forward(q: q, k: k, v: v, gates: FWPGates(beta: beta, g: g), omega: omega,
                    initialState: initialState, saveForBackward: saveForBackward)
    }

    /// `forward` with the gates in one container (`rule.gates` says which).
    public func forward(q: Tensor, k: Tensor, v: Tensor, gates: FWPGates, omega: Tensor? = nil,
                        initialState: Tensor? = nil, saveForBackward: Bool = true) throws -> FWPResult {
        let dims = try checkInputs(q: q, k: k, v: v, gates: gates, omega: omega, initialState: initialState)
        let algorithm = self.algorithm ?? Self.automaticAlgorithm(rule: rule, T: dims.T, dphi: dims.dphi, dv: dims.dv,
                                                                  backward: saveForBackward)
        try MemoryBudget.check(dims.memoryEstimate(algorithm: algorithm),
                               "the fast weight programmer on q \(describeShape(q.shape)) (Dphi \(dims.dphi)), v \(describeShape(v.shape))")
        let (BH, T, dk, dv, dphi, dvi) = (dims.sequences, dims.T, dims.dk, dims.dv, dims.dphi, dims.dvInner)

        // 1. Feature map and normalisation: q' = n(phi(q)), k' = n(phi(k)), [BH, T, Dphi].
        // (Every buffer a kernel overwrites whole is left uninitialised.)
        var qf = [Float].uninitialized(count: BH * T * dphi)
        var kf = [Float].uninitialized(count: BH * T * dphi)
        applyFeatureMap(out: &qf, x: q, omega: omega, dims: dims)
        applyFeatureMap(out: &kf, x: k, omega: omega, dims: dims)

        // 2. Values inside the kernels: v, or [v, 1] so that the ones column
        //    carries the denominator z_t . q'_t through the same recurrence.
        let vInner: [Float]
        if denominator {
            var w = [Float].uninitialized(count: BH * T * dvi)
            for r in 0..<(BH * T) {
                for j in 0..<dv { w[r * dvi + j] = v.storage[r * dv + j] }
                w[r * dvi + dv] = 1
            }
            vInner = w
        } else {
            vInner = v.storage
        }
        // The gates, [gates, BH, T] in rule.gates order.
        let gateValues = rule.gates.flatMap { gates[$0]!.storage }

        // 3. States S^T per sequence, [BH, Dphi, Dv'] (internal layout).
        var states = [Float](repeating: 0, count: BH * dphi * dvi)
        if let s0 = initialState {
            for s in 0..<BH {
                transposeInto(&states, offset: s * dphi * dvi, ld: dvi,
                              from: s0.storage, sourceOffset: s * dv * dphi, rows: dv, cols: dphi)
            }
        }

        // 4. The recurrence, one kernel call per part-sequence, in parallel:
        //    P > 1 parts of the value columns when there are fewer sequences
        //    than workers (FastWeightProgrammer+ValueSplit.swift), else P = 1.
        let P = Self.valueSplit(sequences: BH, dv: dvi, denominator: denominator)
        let w = dvi / P
        let partShape = SequenceShape(T: T, dphi: dphi, dv: w)
        let vParts = ValueParts.split(vInner, groups: BH, rows: T, width: dvi, parts: P)
        var stateParts = ValueParts.split(states, groups: BH, rows: dphi, width: dvi, parts: P)
        let savedCount = saveForBackward ? rule.kernel.savedCount(algorithm, partShape) : 0
        var saved = [Float].uninitialized(count: BH * P * savedCount)
        var yParts = [Float].uninitialized(count: BH * T * dvi)
        qf.withUnsafeBufferPointer { qp in
        kf.withUnsafeBufferPointer { kp in
        vParts.withUnsafeBufferPointer { vp in
        gateValues.withUnsafeBufferPointer { bp in
        yParts.withUnsafeMutableBufferPointer { yp in
        stateParts.withUnsafeMutableBufferPointer { sp in
        saved.withUnsafeMutableBufferPointer { savedp in
            let ptrs = UncheckedSendable((qp, kp, vp, bp, yp, sp, savedp))
            let kernel = rule.kernel, ruleGates = rule.gates
            if let (teamKernel, chunk) = Self.teamKernel(rule: rule, algorithm: algorithm, parts: P) {
                // The chunked form with the team on each sequence in turn (Rules/TeamChunked.swift).
                ThreadOwnership.withTeam { team in
                    for seq in 0..<BH {
                        teamKernel.teamForward(
                            team, chunk: chunk, parts: P,
                            y: yp.baseAddress! + seq * P * T * w, state: sp.baseAddress! + seq * P * dphi * w,
                            saved: savedCount > 0 ? savedp.baseAddress! + seq * P * savedCount : nil,
                            q: qp.baseAddress! + seq * T * dphi, k: kp.baseAddress! + seq * T * dphi,
                            v: vp.baseAddress! + seq * P * T * w,
                            gates: GatePointers(sequence: seq, T: T, of: ruleGates, in: bp), shape: partShape)
                    }
                }
                return
            }
            ThreadOwnership.forEachSequence(BH * P) { s in
                let (qp, kp, vp, bp, yp, sp, savedp) = ptrs.value
                let seq = s / P   // the sequence whose q', k' and gates part s reads
                kernel.forward(
                    algorithm,
                    y: yp.baseAddress! + s * T * w, state: sp.baseAddress! + s * dphi * w,
                    saved: savedCount > 0 ? savedp.baseAddress! + s * savedCount : nil,
                    q: qp.baseAddress! + seq * T * dphi, k: kp.baseAddress! + seq * T * dphi,
                    v: vp.baseAddress! + s * T * w,
                    gates: GatePointers(sequence: seq, T: T, of: ruleGates, in: bp), shape: partShape)
            }
        }}}}}}}
        var yInner = ValueParts.merge(yParts, groups: BH, rows: T, width: dvi, parts: P)
        states = ValueParts.merge(stateParts, groups: BH, rows: dphi, width: dvi, parts: P)

        // 5. Outputs: y = numerator / (z . q' + 1e-6) with the denominator.
        let y: Tensor
        if denominator {
            var out = Tensor.uninitialized(shape: [dims.B, dims.H, T, dv])
            for r in 0..<(BH * T) {
                let den = yInner[r * dvi + dv] + 1e-6
                yInner[r * dvi + dv] = den
                for j in 0..<dv { out.storage[r * dv + j] = yInner[r * dvi + j] / den }
            }
            y = out
        } else {
            y = Tensor(shape: [dims.B, dims.H, T, dv], storage: yInner)
        }
        var finalState = Tensor.uninitialized(shape: [dims.B, dims.H, dv, dphi])
        for s in 0..<BH {
            transposeInto(&finalState.storage, offset: s * dv * dphi, ld: dphi,
                          from: states, sourceOffset: s * dphi * dvi, rows: dphi, cols: dv, sourceLD: dvi)
        }
        let cache = saveForBackward
            ? FWPCache(op: self, algorithm: algorithm, dims: dims,
                       q: q.reshaped([BH, T, dk]), k: k.reshaped([BH, T, dk]),
                       qf: qf, kf: kf, v: vParts, gates: gateValues, omega: omega,
                       saved: saved, savedCount: savedCount,
                       numerators: denominator ? yInner : [], valueParts: P)
            : nil
        return FWPResult(y: y, state: finalState, cache: cache)
    }

    /// phi and n over every row of `x` (`[B, H, T, Dk]`), in parallel over
    /// sequences, or over blocks of rows when there are fewer sequences than
    /// workers (phi and n act row by row).
    func applyFeatureMap(out: inout [Float], x: Tensor, omega: Tensor?, dims: FWPDims) {
        let (T, dk, dphi) = (dims.T, dims.dk, dims.dphi)
        let map = featureMap, norm = normalization
        let omegaValues = omega?.storage ?? []
        let hasOmega = omega != nil
        let blocks = Self.rowBlocks(sequences: dims.sequences, rows: T), per = (T + blocks - 1) / blocks
        x.storage.withUnsafeBufferPointer { xp in
        omegaValues.withUnsafeBufferPointer { op in
        out.withUnsafeMutableBufferPointer { outp in
            let ptrs = UncheckedSendable((xp, op, outp))
            ThreadOwnership.forEachSequence(dims.sequences * blocks) { i in
                let (xp, op, outp) = ptrs.value
                let r0 = (i / blocks) * T + (i % blocks) * per   // first row of the block, over all sequences
                let rows = min(per, T - (i % blocks) * per)
                guard rows > 0 else { return }
                map.forward(out: outp.baseAddress! + r0 * dphi, x: xp.baseAddress! + r0 * dk,
                            rows: rows, d: dk, omega: hasOmega ? op.baseAddress : nil, normalization: norm)
            }
        }}}
    }

    /// Row blocks per sequence for the row-wise passes: enough that
    /// `sequences * blocks >= workers`, 1 with enough sequences or short ones.
    static func rowBlocks(sequences: Int, rows: Int, workers: Int = ThreadOwnership.workers) -> Int {
        guard sequences >= 1, sequences < workers, rows >= 256 else { return 1 }
        return (workers + sequences - 1) / sequences
    }
}

/// Writes the transpose of the `rows x cols` block of `source` (row stride
/// `sourceLD`, default `cols`) at `offset` of `dest` as a `cols x rows` block
/// with row stride `ld`.
func transposeInto(_ dest: inout [Float], offset: Int, ld: Int,
                   from source: [Float], sourceOffset: Int, rows: Int, cols: Int, sourceLD: Int? = nil) {
    let sld = sourceLD ?? cols
    for i in 0..<rows {
        for j in 0..<cols { dest[offset + j * ld + i] = source[sourceOffset + i * sld + j] }
    }
}

extension GatePointers {
    /// Sequence `s`'s gates inside `[gates, BH, T]` values laid out in `order`.
    init(sequence s: Int, T: Int, of order: [FWPGate], in values: UnsafeBufferPointer<Float>) {
        self.init()
        let BH = order.isEmpty ? 0 : values.count / (order.count * T)
        for (i, gate) in order.enumerated() {
            let p = UnsafePointer(values.baseAddress! + (i * BH + s) * T)
            switch gate {
            case .beta: beta = p
            case .g: g = p
            }
        }
    }
}

extension GateGradientPointers {
    /// Sequence `s`'s gate gradients inside `[gates, BH, T]` laid out in `order`.
    init(sequence s: Int, T: Int, of order: [FWPGate], in values: UnsafeMutableBufferPointer<Float>) {
        self.init()
        let BH = order.isEmpty ? 0 : values.count / (order.count * T)
        for (i, gate) in order.enumerated() {
            let p = values.baseAddress! + (i * BH + s) * T
            switch gate {
            case .beta: beta = p
            case .g: g = p
            }
        }
    }
}
