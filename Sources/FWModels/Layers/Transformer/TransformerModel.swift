import FWCore

/// A small decoder-only Transformer over token sequences, generic over the
/// sequence mixer of its blocks:
///
/// ```
/// x_0[b, t] = E[tokens[b, t]] (+ PE[t])        E [V, D]              "embedding.weight"
/// x_l       = Block_l(x_{l-1})                 l = 1..N              "block<l-1>.*"
/// hidden    = LN_f(x_N)                        [B, T, D]             "final_ln.weight", "final_ln.bias"
/// out       = hidden W^T + c                   W [O, D], c [O]       "head.weight", "head.bias"
/// ```
///
/// with O = `outputSize` (V by default). Two losses:
///
/// ```
/// crossEntropy:  loss = mean over all B*T positions of -log softmax(out[b, t])[targets[b, t]]
/// squaredError:  y[b] = out[b, T-1]  (last position only)
///                loss = (1/B) sum_b 0.5 * sum_j (y[b, j] - targets[b, j])^2
/// ```
///
/// Each loss runs the forward, then the backward in the reverse order
/// (loss, head, final LN, blocks N..1, positional encoding = identity,
/// embedding scatter-add), *accumulating* every parameter gradient into
/// `store.gradients`. Parameters are registered in the order embedding,
/// blocks 0..N-1 (each LN1, mixer, LN2, FF), final LN, head.
public struct TransformerModel<Mixer: SequenceMixingLayer>: Sendable {
    /// Number of token ids V.
    public let vocabularySize: Int
    /// Width D of the residual stream.
    public let modelSize: Int
    /// Width O of the head's output (V unless given).
    public let outputSize: Int
    /// Whether the sinusoidal positional encoding is added to the embeddings.
    public let usesPositionalEncoding: Bool
    /// The token embedding `[V, D]`.
    public let embedding: Embedding
    /// The blocks, input side first.
    public let blocks: [TransformerBlock<Mixer>]
    /// The layer norm after the last block.
    public let finalNorm: LayerNorm
    /// The output head `D -> O`.
    public let head: Linear

    /// Registers the embedding (`N(0, 1)` entries), `layers` blocks (block
    /// `l` named `block<l>`, its mixer built by `makeMixer(l, &store, &rng)`,
    /// feed-forward width `feedForwardSize`), the final LN and the head
    /// (`U(-1/sqrt(D), 1/sqrt(D))` weight, zero bias).
    ///
    /// - Throws: what `makeMixer` throws, or `FWError.invalidArgument` when a
    ///   mixer's `modelSize` is not `modelSize`.
    public init(vocabularySize: Int, modelSize: Int, feedForwardSize: Int, layers: Int,
                outputSize: Int? = nil, positionalEncoding: Bool,
                store: inout ParameterStore, rng: inout SeededRNG,
                makeMixer: (_ layerIndex: Int, _ store: inout ParameterStore, _ rng: inout SeededRNG) throws -> Mixer) throws {
        precondition(layers >= 0, "TransformerModel: negative number of layers \(layers)")
        self.vocabularySize = vocabularySize
        self.modelSize = modelSize
        self.outputSize = outputSize ?? vocabularySize
        self.usesPositionalEncoding = positionalEncoding
        embedding = Embedding(vocabularySize, modelSize, name: "embedding", store: &store, rng: &rng)
        var blocks: [TransformerBlock<Mixer>] = []
        for l in 0..<layers {
            blocks.append(try TransformerBlock(modelSize: modelSize, feedForwardSize: feedForwardSize, name: "block\(l)",
                                               store: &store, rng: &rng) { store, rng in try makeMixer(l, &store, &rng) })
        }
        self.blocks = blocks
        finalNorm = LayerNorm(modelSize, name: "final_ln", store: &store)
        head = Linear(modelSize, self.outputSize, name: "head", store: &store, rng: &rng)
    }

    /// What the backward needs from the forward.
    public struct Cache: Sendable {
        /// The token ids `[B, T]`, row-major.
        public let tokens: [Int32]
        /// B.
        public let batchSize: Int
        /// T.
        public let length: Int
        /// Every block's cache, input side first.
        public let blocks: [TransformerBlock<Mixer>.Cache]
        /// The last block's output `x_N [B, T, D]` (the final LN's input).
        public let finalInput: Tensor
        /// The final LN's statistics.
        public let finalNorm: LayerNorm.Saved
        /// `hidden = LN_f(x_N)`, `[B, T, D]` (the head's input).
        public let hidden: Tensor
    }

    /// The forward up to the final layer norm: `hidden [B, T, D]` for
    /// `tokens [B, T]` (row-major, `batchSize` = B).
    ///
    /// - Throws: `FWError.shapeMismatch` naming `tokens` when their count is
    ///   not a positive multiple of `batchSize`; `FWError.invalidArgument`
    ///   for an id outside `0..<V`.
    public func encode(tokens: [Int32], batchSize: Int, store: ParameterStore, training: Bool,
                       rng: inout SeededRNG) throws -> (hidden: Tensor, cache: Cache) {
        guard batchSize >= 1, !tokens.isEmpty, tokens.count % batchSize == 0 else {
            throw FWError.shapeMismatch(tensor: "tokens", expected: "[\(batchSize), T] with T >= 1", got: [tokens.count])
        }
        let B = batchSize, T = tokens.count / batchSize, D = modelSize
        var x = try embedding(tokens, store).reshaped([B, T, D])
        if usesPositionalEncoding { try PositionalEncoding.add(to: &x) }
        var caches: [TransformerBlock<Mixer>.Cache] = []
        caches.reserveCapacity(blocks.count)
        for block in blocks {
            let (y, cache) = try block.forward(x, store: store, training: training, rng: &rng)
            caches.append(cache)
            x = y
        }
        let (hidden, saved) = try finalNorm(x, store)
        return (hidden, Cache(tokens: tokens, batchSize: B, length: T, blocks: caches,
                              finalInput: x, finalNorm: saved, hidden: hidden))
    }

    /// Given `dhidden = dL/dhidden [B, T, D]`, accumulates the gradients of
    /// the final LN, every block and the embedding into `store.gradients`
    /// (the head's are the caller's: see `crossEntropy`, `squaredError`).
    ///
    /// - Throws: `FWError.shapeMismatch` naming `dhidden` for a wrong shape.
    public func backward(dhidden: Tensor, cache: Cache, store: inout ParameterStore) throws {
        try dhidden.checkShape("dhidden", cache.hidden.shape)
        var dx = try finalNorm.backward(dhidden, input: cache.finalInput, saved: cache.finalNorm, store: &store)
        for (block, blockCache) in zip(blocks, cache.blocks).reversed() {
            dx = try block.backward(dx, cache: blockCache, store: &store)
        }
        // The positional encoding's backward is the identity.
        if usesPositionalEncoding { dx = PositionalEncoding.backward(dx) }
        try embedding.backward(dx.reshaped([cache.tokens.count, modelSize]), ids: cache.tokens, store: &store)
    }

    /// The head's output at every position, `[B, T, O]` (no gradients).
    public func outputs(tokens: [Int32], batchSize: Int, store: ParameterStore, training: Bool = false,
                        rng: inout SeededRNG) throws -> Tensor {
        let (hidden, _) = try encode(tokens: tokens, batchSize: batchSize, store: store, training: training, rng: &rng)
        return try head(hidden, store)
    }

    /// The head's output at the last position of every sequence, `[B, O]` (no gradients).
    public func lastOutputs(tokens: [Int32], batchSize: Int, store: ParameterStore, training: Bool = false,
                            rng: inout SeededRNG) throws -> Tensor {
        let (hidden, _) = try encode(tokens: tokens, batchSize: batchSize, store: store, training: training, rng: &rng)
        return try head(lastPositions(hidden), store)
    }

    /// Next-token style classification at every position: the mean
    /// cross-entropy over the B*T positions of `tokens [B, T]` against
    /// `targets [B, T]` (ids in `0..<O`), and the positions whose argmax is
    /// the target. Accumulates all parameter gradients of that mean loss
    /// into `store.gradients`.
    ///
    /// - Throws: `FWError.shapeMismatch` naming `tokens` or `targets` for
    ///   wrong counts; `FWError.invalidArgument` for ids out of range.
    public func crossEntropy(tokens: [Int32], targets: [Int32], batchSize: Int,
                             store: inout ParameterStore, training: Bool = true,
                             rng: inout SeededRNG) throws -> ClassificationResult {
        guard targets.count == tokens.count else {
            let T = batchSize > 0 ? tokens.count / batchSize : 0
            throw FWError.shapeMismatch(tensor: "targets", expected: "[\(batchSize), \(T)]", got: [targets.count])
        }
        let (hidden, cache) = try encode(tokens: tokens, batchSize: batchSize, store: store, training: training, rng: &rng)
        let logits = try head(hidden, store)                                        // [B, T, O]
        let out = try SoftmaxCrossEntropy.forward(logits: logits, targets: targets)
        let dlogits = try SoftmaxCrossEntropy.backward(out, targets: targets)      // (probs - onehot) / (B T)
        let dhidden = try head.backward(dlogits, input: hidden, store: &store)
        try backward(dhidden: dhidden, cache: cache, store: &store)
        return ClassificationResult(loss: out.loss, correct: out.correct, count: out.count)
    }

    /// The regression loss of the synthetic retrieval task on the last
    /// position: `y = out[:, T-1] [B, O]`,
    /// `loss = (1/B) sum_b 0.5 * ||y[b] - targets[b]||^2` (`SquaredErrorLoss`),
    /// with `targets [B, O]` (e.g. `ValueEmbedding` one-hot rows). `correct`
    /// counts the sequences whose argmax of `y` is the argmax of the target
    /// (first maximum on ties). Accumulates all parameter gradients of the
    /// loss into `store.gradients` (the other positions get zero dL/dhidden).
    ///
    /// - Throws: `FWError.shapeMismatch` naming `targets` unless it is
    ///   `[B, O]` with B >= 1, or naming `tokens` unless they are `[B, T]`.
    public func squaredError(tokens: [Int32], targets: Tensor,
                             store: inout ParameterStore, training: Bool = true,
                             rng: inout SeededRNG) throws -> ClassificationResult {
        guard targets.rank == 2, targets.shape[0] >= 1, targets.shape[1] == outputSize else {
            throw FWError.shapeMismatch(tensor: "targets", expected: "[B, \(outputSize)]", got: targets.shape)
        }
        let B = targets.shape[0]
        let (hidden, cache) = try encode(tokens: tokens, batchSize: B, store: store, training: training, rng: &rng)
        let last = lastPositions(hidden)                                            // [B, D]
        let y = try head(last, store)                                               // [B, O]
        let loss = try SquaredErrorLoss.forward(y, target: targets)
        let dy = try SquaredErrorLoss.backward(y, target: targets)                  // (y - t) / B
        let dlast = try head.backward(dy, input: last, store: &store)
        // dL/dhidden is zero except at the last position of each sequence.
        let T = cache.length, D = modelSize
        var dhidden = Tensor(shape: [B, T, D])
        for b in 0..<B {
            for j in 0..<D { dhidden.storage[(b * T + T - 1) * D + j] = dlast.storage[b * D + j] }
        }
        try backward(dhidden: dhidden, cache: cache, store: &store)
        var correct = 0
        for b in 0..<B where argmax(y.storage, row: b, width: outputSize) == argmax(targets.storage, row: b, width: outputSize) {
            correct += 1
        }
        return ClassificationResult(loss: loss, correct: correct, count: B)
    }

    /// `hidden[:, T-1, :]` as `[B, D]`.
    private func lastPositions(_ hidden: Tensor) -> Tensor {
        let (B, T, D) = (hidden.shape[0], hidden.shape[1], hidden.shape[2])
        var last = Tensor(shape: [B, D])
        for b in 0..<B {
            for j in 0..<D { last.storage[b * D + j] = hidden.storage[(b * T + T - 1) * D + j] }
        }
        return last
    }

    /// The first index of the largest entry of row `row` of a `[*, width]` array.
    private func argmax(_ a: [Float], row: Int, width: Int) -> Int {
        var best = 0
        for j in 1..<width where a[row * width + j] > a[row * width + best] { best = j }
        return best
    }
}
