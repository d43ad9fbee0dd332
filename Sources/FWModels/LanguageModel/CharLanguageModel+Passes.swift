#if canImport(Glibc)
import Glibc
#endif
import FWCore

extension CharLanguageModel {
    /// What the backward needs from the forward.
    struct Cache: Sendable {
        let tokens: [Int32]
        let B: Int, T: Int
        /// The embedding-output mask (nil: identity).
        let embeddingMask: [Float]?
        let blocks: [LanguageModelBlock.Cache]
        /// x_N, the final LN's input.
        let finalInput: Tensor
        let finalNorm: LayerNorm.Saved
    }

    /// The forward to `hidden = LN_f(x_N) [B, T, D]` and the state after the segment.
    func run(tokens: [Int32], B: Int, T: Int, state: LanguageModelState?, store: ParameterStore,
             training: Bool, rng: inout SeededRNG,
             saveForBackward: Bool) throws -> (hidden: Tensor, state: LanguageModelState, cache: Cache?) {
        let (initial, position) = try initialStates(state, B: B)
        let D = config.modelSize
        // x_0 = Drop(sqrt(D) E[tokens] (+ PE[position + t])).
        var x = try embedding(tokens, store).reshaped([B, T, D])
        x.withUnsafeMutableBufferPointer { xp in
            for i in 0..<xp.count { xp[i] *= embeddingScale }
        }
        if config.positionalEncoding { CharLanguageModel.addPositionalEncoding(&x, from: position) }
        let (x0, embeddingMask) = dropout.forward(x, training: training, rng: &rng)
        x = x0
        var caches: [LanguageModelBlock.Cache] = []
        var finals: [LanguageModelBlock.CarriedState] = []
        for (l, block) in blocks.enumerated() {
            let r = try block.forward(x, initialState: initial[l], store: store, training: training, rng: &rng,
                                      saveForBackward: saveForBackward)
            if let c = r.cache { caches.append(c) }
            if let s = r.state { finals.append(s) }
            x = r.y
        }
        let (hidden, saved) = try finalNorm(x, store)
        let newState = splitStates(finals, B: B, position: position + T)
        let cache = saveForBackward
            ? Cache(tokens: tokens, B: B, T: T, embeddingMask: embeddingMask, blocks: caches, finalInput: x, finalNorm: saved)
            : nil
        return (hidden, newState, cache)
    }

    /// From `dhidden [B, T, D]`: the final LN, the blocks N..1, the dropout
    /// and the scaled embedding scatter-add, accumulating into `store.gradients`.
    func backward(dhidden: Tensor, cache: Cache, store: inout ParameterStore,
                  blockGradientsReady: ((Int, inout ParameterStore) throws -> Void)? = nil) throws {
        var dx = try finalNorm.backward(dhidden, input: cache.finalInput, saved: cache.finalNorm, store: &store)
        for l in blocks.indices.reversed() {
            dx = try blocks[l].backward(dx, cache: cache.blocks[l], store: &store)
            try blockGradientsReady?(l, &store)
        }
        // The positional encoding's backward is the identity; then Drop' and the factor sqrt(D).
        var de = try dropout.backward(dx, mask: cache.embeddingMask)
        de.withUnsafeMutableBufferPointer { dp in
            for i in 0..<dp.count { dp[i] *= embeddingScale }
        }
        try embedding.backward(de.reshaped([cache.tokens.count, config.modelSize]), ids: cache.tokens, store: &store)
    }

    /// `logits [B, T, 256]` from `hidden [B, T, D]`.
    func headForward(_ hidden: Tensor, _ store: ParameterStore) throws -> Tensor {
        switch head {
        case let .tied(h): return try h(hidden, store)
        case let .untied(h): return try h(hidden, store)
        }
    }

    /// dL/dhidden from dL/dlogits, accumulating the head's gradients (tied: into the embedding's).
    func headBackward(_ dlogits: Tensor, input hidden: Tensor, store: inout ParameterStore) throws -> Tensor {
        switch head {
        case let .tied(h): return try h.backward(dlogits, input: hidden, store: &store)
        case let .untied(h): return try h.backward(dlogits, input: hidden, store: &store)
        }
    }

    // MARK: checks

    /// (B, T) of `tokens [B, T]`; every id must be a byte.
    func checkTokens(_ tokens: [Int32], batchSize: Int) throws -> (B: Int, T: Int) {
        guard batchSize >= 1 else {
            throw FWError.invalidArgument("CharLanguageModel: batchSize must be at least 1, got \(batchSize)")
        }
        guard !tokens.isEmpty, tokens.count % batchSize == 0 else {
            throw FWError.shapeMismatch(tensor: "tokens", expected: "[\(batchSize), T] with T >= 1", got: [tokens.count])
        }
        if let i = tokens.firstIndex(where: { $0 < 0 || $0 > 255 }) {
            throw FWError.invalidArgument("CharLanguageModel: token \(tokens[i]) at position \(i) is not a byte (0...255)")
        }
        return (batchSize, tokens.count / batchSize)
    }

    /// `targets` must be `[B, T]` bytes.
    func checkTargets(_ targets: [Int32], B: Int, T: Int) throws {
        guard targets.count == B * T else {
            throw FWError.shapeMismatch(tensor: "targets", expected: describeShape([B, T]), got: [targets.count])
        }
        if let i = targets.firstIndex(where: { $0 < 0 || $0 > 255 }) {
            throw FWError.invalidArgument("CharLanguageModel: target \(targets[i]) at position \(i) is not a byte (0...255)")
        }
    }

    // MARK: the state

    /// Per block the mixer-level initial state (`[B, H, dk (+ 1), Dphi]`, z as
    /// the last row; DeltaNet: its layer state; nil: zero) and the position,
    /// after checking `state` against the model and the batch.
    func initialStates(_ state: LanguageModelState?, B: Int) throws -> (states: [LanguageModelBlock.CarriedState?], position: Int) {
        let L = config.layers
        guard let state else { return ([LanguageModelBlock.CarriedState?](repeating: nil, count: L), 0) }
        guard carriesState else {
            throw FWError.invalidArgument("CharLanguageModel: the softmax mixer carries no state across segments; pass state nil")
        }
        guard state.batchSize == B else {
            throw FWError.invalidArgument("CharLanguageModel: the state is for batch size \(state.batchSize), the tokens for \(B)")
        }
        guard state.position >= 0 else {
            throw FWError.invalidArgument("CharLanguageModel: the state's position must be non-negative, got \(state.position)")
        }
        let (H, dk, dphi) = (config.heads, config.headSize, config.featureSize)
        let den = config.mixer.usesDenominator
        guard state.fastWeights.count == L, state.keySums.count == (den ? L : 0) else {
            throw FWError.invalidArgument("CharLanguageModel: the state holds \(state.fastWeights.count) fast weights and \(state.keySums.count) key sums; the model needs \(L) and \(den ? L : 0)")
        }
        if let dn = config.deltaNetConfig { return (try deltaNetStates(state, config: dn, B: B), state.position) }
        guard state.convStates.isEmpty else {
            throw FWError.invalidArgument("CharLanguageModel: the state holds \(state.convStates.count) conv states; the \(config.mixer.rawValue) mixer has none")
        }
        var out: [LanguageModelBlock.CarriedState?] = []
        for l in 0..<L {
            let S = state.fastWeights[l]
            try S.checkShape("state.fastWeights[\(l)]", [B, H, dk, dphi])
            guard den else { out.append(.fastWeights(S)); continue }
            let z = state.keySums[l]
            try z.checkShape("state.keySums[\(l)]", [B, H, dphi])
            // [S; z^T] per (b, h): rows 0..<dk are S, row dk is z.
            var c = Tensor.uninitialized(shape: [B, H, dk + 1, dphi])
            for s in 0..<(B * H) {
                for i in 0..<(dk * dphi) { c.storage[s * (dk + 1) * dphi + i] = S.storage[s * dk * dphi + i] }
                for j in 0..<dphi { c.storage[(s * (dk + 1) + dk) * dphi + j] = z.storage[s * dphi + j] }
            }
            out.append(.fastWeights(c))
        }
        return (out, state.position)
    }

    /// The DeltaNet layer states of `state` (checked): per block S
    /// `[B, H, dv, dk]` and the conv windows `[B, K-1, C]` split at the q, k,
    /// v channel boundaries (`[B, K-1, H dk]` twice, `[B, K-1, H dv]`).
    private func deltaNetStates(_ state: LanguageModelState, config dn: DeltaNetLayerConfig,
                                B: Int) throws -> [LanguageModelBlock.CarriedState?] {
        let L = config.layers
        guard state.convStates.count == L else {
            throw FWError.invalidArgument("CharLanguageModel: the state holds \(state.convStates.count) conv states; the \(config.mixer.rawValue) model needs \(L)")
        }
        let (H, dk, dv, h) = (dn.heads, dn.headSize, dn.valueSize, dn.convolutionSize - 1)
        let (cq, cv) = (H * dk, H * dv), C = 2 * cq + cv
        var out: [LanguageModelBlock.CarriedState?] = []
        for l in 0..<L {
            let S = state.fastWeights[l], w = state.convStates[l]
            try S.checkShape("state.fastWeights[\(l)]", [B, H, dv, dk])
            try w.checkShape("state.convStates[\(l)]", [B, h, C])
            var q = Tensor.uninitialized(shape: [B, h, cq]), k = q, v = Tensor.uninitialized(shape: [B, h, cv])
            for r in 0..<(B * h) {
                for c in 0..<cq {
                    q.storage[r * cq + c] = w.storage[r * C + c]
                    k.storage[r * cq + c] = w.storage[r * C + cq + c]
                }
                for c in 0..<cv { v.storage[r * cv + c] = w.storage[r * C + 2 * cq + c] }
            }
            out.append(.deltaNet(DeltaNetLayer.State(fastWeights: S, qConv: q, kConv: k, vConv: v)))
        }
        return out
    }

    /// The public state from the blocks' mixer-level final states.
    func splitStates(_ finals: [LanguageModelBlock.CarriedState], B: Int, position: Int) -> LanguageModelState {
        guard carriesState else { return LanguageModelState(fastWeights: [], keySums: [], batchSize: B, position: position) }
        if config.mixer.isDeltaNet {
            // [B, K-1, H dk] x 2 and [B, K-1, H dv] side by side as [B, K-1, C].
            var weights: [Tensor] = [], convs: [Tensor] = []
            for case let .deltaNet(s) in finals {
                let (rows, cq, cv) = (s.qConv.shape[0] * s.qConv.shape[1], s.qConv.shape[2], s.vConv.shape[2])
                let C = 2 * cq + cv
                var w = Tensor.uninitialized(shape: [s.qConv.shape[0], s.qConv.shape[1], C])
                for r in 0..<rows {
                    for c in 0..<cq {
                        w.storage[r * C + c] = s.qConv.storage[r * cq + c]
                        w.storage[r * C + cq + c] = s.kConv.storage[r * cq + c]
                    }
                    for c in 0..<cv { w.storage[r * C + 2 * cq + c] = s.vConv.storage[r * cv + c] }
                }
                weights.append(s.fastWeights)
                convs.append(w)
            }
            return LanguageModelState(fastWeights: weights, keySums: [], convStates: convs, batchSize: B, position: position)
        }
        let tensors = finals.compactMap(\.fastWeightTensor)
        guard config.mixer.usesDenominator else {
            return LanguageModelState(fastWeights: tensors, keySums: [], batchSize: B, position: position)
        }
        let (H, dk, dphi) = (config.heads, config.headSize, config.featureSize)
        var weights: [Tensor] = [], sums: [Tensor] = []
        for c in tensors {
            var S = Tensor.uninitialized(shape: [B, H, dk, dphi])
            var z = Tensor.uninitialized(shape: [B, H, dphi])
            for s in 0..<(B * H) {
                for i in 0..<(dk * dphi) { S.storage[s * dk * dphi + i] = c.storage[s * (dk + 1) * dphi + i] }
                for j in 0..<dphi { z.storage[s * dphi + j] = c.storage[(s * (dk + 1) + dk) * dphi + j] }
            }
            weights.append(S)
            sums.append(z)
        }
        return LanguageModelState(fastWeights: weights, keySums: sums, batchSize: B, position: position)
    }

    // MARK: helpers shared with the stream

    /// The frequency of column j of the sinusoidal encoding at width D:
    /// `10000^(-(j - j mod 2) / D)` (`PositionalEncoding`'s table).
    static func positionalFrequency(column j: Int, width D: Int) -> Double {
        Glibc.pow(PositionalEncoding.base, -Double(j - j % 2) / Double(D))
    }

    /// `x[b, t, :] += PE[start + t, :]` for `x [B, T, D]` (the table of
    /// `PositionalEncoding`, continued from position `start`).
    static func addPositionalEncoding(_ x: inout Tensor, from start: Int) {
        let (B, T, D) = (x.shape[0], x.shape[1], x.shape[2])
        for j in 0..<D {
            let f = positionalFrequency(column: j, width: D)
            for t in 0..<T {
                let angle = Double(start + t) * f
                let pe = Float(j % 2 == 0 ? Glibc.sin(angle) : Glibc.cos(angle))
                for b in 0..<B { x.storage[(b * T + t) * D + j] += pe }
            }
        }
    }

    /// `sum_i -log softmax(logits[i])[targets[i]]` over `targets.count` rows, in Double.
    static func crossEntropySum(logits: UnsafePointer<Float>, targets: [Int32], classes: Int) -> Double {
        var total = 0.0
        for (i, t) in targets.enumerated() {
            let z = logits + i * classes
            var m = z[0]
            for j in 1..<classes { m = max(m, z[j]) }
            var s = 0.0
            for j in 0..<classes { s += Glibc.exp(Double(z[j] - m)) }
            total += Glibc.log(s) - Double(z[Int(t)] - m)
        }
        return total
    }
}
