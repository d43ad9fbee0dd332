import FWCore

/// The loss and accuracy of a batch (or of a whole split).
public struct ClassificationResult: Sendable, Equatable {
    /// Mean cross-entropy over the examples.
    public var loss: Float
    /// Examples whose most probable class is the target.
    public var correct: Int
    /// Number of examples.
    public var count: Int

    public init(loss: Float, correct: Int, count: Int) {
        self.loss = loss
        self.correct = correct
        self.count = count
    }

    /// `correct / count` (0 for no examples).
    public var accuracy: Float { count > 0 ? Float(correct) / Float(count) : 0 }
    /// The error in percent, `100 * (count - correct) / count` (0 for no examples).
    public var errorPercent: Double { count > 0 ? 100 * Double(count - correct) / Double(count) : 0 }
}

/// A classifier of fixed-length token sequences, as the trainer sees it
/// (whatever its encoder): the loss and gradients of a batch, and the loss
/// and error over a split. Parameters live in the caller's `ParameterStore`.
public protocol SequenceClassifier: Sendable {
    /// Tokens per sequence, T.
    var sequenceLength: Int { get }

    /// Mean loss of the batch `tokens [B, T]` (row-major), `targets [B]`, and
    /// its gradients *accumulated* into `store.gradients`.
    func lossAndGradients(tokens: ArraySlice<Int32>, targets: ArraySlice<Int32>,
                          store: inout ParameterStore) throws -> ClassificationResult

    /// Mean loss and number correct of `tokens [B, T]`, `targets [B]` (no gradients).
    func evaluate(tokens: ArraySlice<Int32>, targets: ArraySlice<Int32>,
                  store: ParameterStore) throws -> ClassificationResult

    /// The most probable class of every sequence of `tokens [B, T]`, `[B]`.
    func predictions(tokens: ArraySlice<Int32>, store: ParameterStore) throws -> [Int32]
}

extension SequenceClassifier {
    /// Loss and error over a whole split, in batches of `batchSize` sequences
    /// (the mean loss is weighted by batch size, summed in Float64).
    public func evaluate(tokens: [Int32], targets: [Int32], batchSize: Int,
                         store: ParameterStore) throws -> ClassificationResult {
        precondition(batchSize >= 1, "evaluate: batch size must be positive")
        let T = sequenceLength
        guard tokens.count == targets.count * T else {
            throw FWError.invalidArgument("evaluate: \(tokens.count) tokens for \(targets.count) sequences of \(T)")
        }
        var lossSum = 0.0
        var correct = 0
        var start = 0
        while start < targets.count {
            let end = min(start + batchSize, targets.count)
            let r = try evaluate(tokens: tokens[(start * T)..<(end * T)], targets: targets[start..<end], store: store)
            lossSum += Double(r.loss) * Double(r.count)
            correct += r.correct
            start = end
        }
        let n = targets.count
        return ClassificationResult(loss: n > 0 ? Float(lossSum / Double(n)) : 0, correct: correct, count: n)
    }

    /// The most probable class of every sequence of a whole split `tokens
    /// [n, T]`, in batches of `batchSize` sequences: `[n]`.
    public func predictions(tokens: [Int32], batchSize: Int, store: ParameterStore) throws -> [Int32] {
        precondition(batchSize >= 1, "predictions: batch size must be positive")
        let T = sequenceLength
        guard tokens.count % T == 0 else {
            throw FWError.invalidArgument("predictions: \(tokens.count) tokens is not a whole number of sequences of \(T)")
        }
        let n = tokens.count / T
        var out: [Int32] = []
        out.reserveCapacity(n)
        var start = 0
        while start < n {
            let end = min(start + batchSize, n)
            out += try predictions(tokens: tokens[(start * T)..<(end * T)], store: store)
            start = end
        }
        return out
    }
}

/// The model of Ba et al. 2016, section 4.1: tokens -> embedding -> recurrent
/// encoder -> its *last* hidden state -> linear -> softmax over the classes.
///
/// ```
/// x[b, t]  = E[token[b, t]]                        E [vocabulary, Din]   "embedding.weight"
/// h        = encoder(x)                            h [B, T, N]           "encoder.*"
/// logits   = h[:, T-1] V^T + d                     V [classes, N]        "readout.weight", "readout.bias"
/// loss     = mean_b -log softmax(logits[b])[target[b]]
/// ```
///
/// The backward goes in the reverse order: softmax/cross-entropy, readout,
/// dL/dh (zero except at the last step), the encoder (BPTT), the embedding
/// (scatter-add). Parameters are registered in that order: embedding,
/// encoder, readout.
public struct RetrievalModel<Encoder: RecurrentEncoder>: SequenceClassifier {
    /// The token embedding `[vocabularySize, Din]`.
    public let embedding: Embedding
    /// The recurrent encoder `[B, T, Din] -> [B, T, N]`.
    public let encoder: Encoder
    /// The readout `[classes, N]` plus bias.
    public let readout: Linear
    public let sequenceLength: Int

    /// Registers the embedding (`N(0, 1)` entries), then the encoder `makeEncoder`
    /// builds (given Din), then the readout (`U(-1/sqrt(N), 1/sqrt(N))`, bias 0).
    public init(vocabularySize: Int, embeddingSize: Int, classes: Int, sequenceLength: Int,
                store: inout ParameterStore, rng: inout SeededRNG,
                makeEncoder: (_ input: Int, _ store: inout ParameterStore, _ rng: inout SeededRNG) -> Encoder) {
        precondition(sequenceLength >= 1, "RetrievalModel: sequence length must be positive")
        embedding = Embedding(vocabularySize, embeddingSize, name: "embedding", store: &store, rng: &rng)
        encoder = makeEncoder(embeddingSize, &store, &rng)
        precondition(encoder.inputSize == embeddingSize, "RetrievalModel: encoder input \(encoder.inputSize) != embedding \(embeddingSize)")
        readout = Linear(encoder.hiddenSize, classes, name: "readout", store: &store, rng: &rng)
        self.sequenceLength = sequenceLength
    }

    /// What the backward needs from the forward.
    public struct Cache {
        var ids: [Int32]
        var x: Tensor                 // [B, T, Din]
        var encoderCache: Encoder.Cache
        var last: Tensor              // [B, N]
        var output: SoftmaxCrossEntropy.Output
        var targets: [Int32]
    }

    /// Forward: loss, number correct and the cache.
    public func forward(tokens: ArraySlice<Int32>, targets: ArraySlice<Int32>,
                        store: ParameterStore) throws -> (ClassificationResult, Cache) {
        let B = targets.count, T = sequenceLength
        guard tokens.count == B * T else {
            throw FWError.invalidArgument("RetrievalModel: \(tokens.count) tokens for \(B) sequences of length \(T)")
        }
        let (ids, x, encoderCache, last, logits) = try logits(tokens: tokens, B: B, store: store)
        let t = Array(targets)
        let output = try SoftmaxCrossEntropy.forward(logits: logits, targets: t)
        let result = ClassificationResult(loss: output.loss, correct: output.correct, count: output.count)
        return (result, Cache(ids: ids, x: x, encoderCache: encoderCache, last: last, output: output, targets: t))
    }

    /// Embedding, encoder, last hidden state and readout of `B` sequences
    /// (`tokens.count == B * T`, checked by the callers): logits `[B, classes]`
    /// and what the backward keeps of the way there.
    private func logits(tokens: ArraySlice<Int32>, B: Int, store: ParameterStore) throws
        -> (ids: [Int32], x: Tensor, encoderCache: Encoder.Cache, last: Tensor, logits: Tensor) {
        let T = sequenceLength, N = encoder.hiddenSize
        let ids = Array(tokens)
        let x = try embedding(ids, store).reshaped([B, T, embedding.dimensions])
        let (h, encoderCache) = try encoder.forward(x, store: store)
        // The last hidden state of every sequence: h[b, T-1, :].
        var last = Tensor(shape: [B, N])
        for b in 0..<B {
            let src = (b * T + T - 1) * N
            for j in 0..<N { last.storage[b * N + j] = h.storage[src + j] }
        }
        return (ids, x, encoderCache, last, try readout(last, store))
    }

    /// Backward of the mean loss, accumulating every parameter's gradient into `store`.
    public func backward(_ cache: Cache, store: inout ParameterStore) throws {
        let B = cache.targets.count, T = sequenceLength, N = encoder.hiddenSize
        let dlogits = try SoftmaxCrossEntropy.backward(cache.output, targets: cache.targets)
        let dlast = try readout.backward(dlogits, input: cache.last, store: &store)
        // Only the last step reaches the loss: dh is zero elsewhere.
        var dh = Tensor(shape: [B, T, N])
        for b in 0..<B {
            let dst = (b * T + T - 1) * N
            for j in 0..<N { dh.storage[dst + j] = dlast.storage[b * N + j] }
        }
        let dx = try encoder.backward(dh, cache: cache.encoderCache, store: &store)
        try embedding.backward(dx.reshaped([B * T, embedding.dimensions]), ids: cache.ids, store: &store)
    }

    public func lossAndGradients(tokens: ArraySlice<Int32>, targets: ArraySlice<Int32>,
                                 store: inout ParameterStore) throws -> ClassificationResult {
        let (result, cache) = try forward(tokens: tokens, targets: targets, store: store)
        try backward(cache, store: &store)
        return result
    }

    public func evaluate(tokens: ArraySlice<Int32>, targets: ArraySlice<Int32>,
                         store: ParameterStore) throws -> ClassificationResult {
        try forward(tokens: tokens, targets: targets, store: store).0
    }

    /// argmax_c logits[b, c] (the first maximum, exactly as `correct` counts).
    public func predictions(tokens: ArraySlice<Int32>, store: ParameterStore) throws -> [Int32] {
        let T = sequenceLength
        guard tokens.count % T == 0 else {
            throw FWError.invalidArgument("RetrievalModel: \(tokens.count) tokens is not a whole number of sequences of length \(T)")
        }
        let B = tokens.count / T
        let p = try logits(tokens: tokens, B: B, store: store).logits, C = p.shape[1]
        return (0..<B).map { b in
            var best = 0
            for c in 1..<C where p.storage[b * C + c] > p.storage[b * C + best] { best = c }
            return Int32(best)
        }
    }
}
