#if canImport(Glibc)
import Glibc
#endif
import FWCore
import FWOps

/// A causal byte-level language model: bytes in, next-byte logits out
/// (vocabulary 256), over B streams of T bytes at a time, carrying the fast
/// weights from one segment to the next:
///
/// ```
/// x_0    = Drop(sqrt(D) E[tokens] (+ PE[position + t]))     E [256, D]                "embedding.weight"
/// x_l    = Block_l(x_{l-1}; S^l)     l = 1..N                 pre-norm, see LanguageModelBlock  "block<l-1>.*"
/// hidden = LN_f(x_N)                                                                       "final_ln.*"
/// logits = hidden E^T + b   (tied)   or   hidden W^T + b      W [256, D]                "head.weight", "head.bias"
/// loss   = mean over the B*T positions of -log softmax(logits[b, t])[targets[b, t]]      (nats)
/// ```
///
/// The embedding is N(0, 1/D) and scaled by sqrt(D) (Transformer-XL's
/// `emb_scale`), so x_0 has unit-variance entries and tied logits start
/// near unit scale. Parameters are registered in the order embedding,
/// blocks 0..N-1, final LN, head; a training forward draws from the rng in
/// the order: embedding mask, then per block Omega (favor), mixer mask,
/// feed-forward mask (masks only at p > 0).
///
/// The state (`LanguageModelState`) after a segment is detached: the next
/// segment's backward stops at it (truncated backpropagation through time).
/// `LanguageModel.md` beside this file gives the official code this follows.
public struct CharLanguageModel: Sendable {
    /// The output projection.
    public enum OutputHead: Sendable {
        /// `logits = h E^T + b` with the embedding table.
        case tied(TiedOutputHead)
        /// `logits = h W^T + b` with its own W `[256, D]`.
        case untied(Linear)
    }

    /// The configuration (validated).
    public let config: LanguageModelConfig
    /// The byte embedding `[256, D]`.
    public let embedding: Embedding
    /// sqrt(D), the factor on the embedding rows.
    public let embeddingScale: Float
    /// The blocks, input side first.
    public let blocks: [LanguageModelBlock]
    /// The layer norm after the last block.
    public let finalNorm: LayerNorm
    /// The output projection.
    public let head: OutputHead
    /// The dropout on the embedding output.
    public let dropout: Dropout

    /// Whether the model carries state across segments (false for softmax).
    public var carriesState: Bool { config.mixer.carriesState }

    /// Validates `config` and registers the model's parameters in `store`
    /// (drawing from `rng`; see the type's doc for the order).
    ///
    /// - Throws: `FWError.invalidArgument` from `config.validate()`.
    public init(config: LanguageModelConfig, store: inout ParameterStore, rng: inout SeededRNG) throws {
        try config.validate()
        let (V, D) = (LanguageModelConfig.vocabularySize, config.modelSize)
        self.config = config
        embedding = Embedding(V, D, name: "embedding", store: &store, rng: &rng,
                              initializer: .normal(std: 1 / Float(D).squareRoot()))
        embeddingScale = Float(D).squareRoot()
        var blocks: [LanguageModelBlock] = []
        for l in 0..<config.layers {
            blocks.append(try LanguageModelBlock(config: config, name: "block\(l)", store: &store, rng: &rng))
        }
        self.blocks = blocks
        finalNorm = LayerNorm(D, name: "final_ln", store: &store)
        if config.tiedEmbeddings {
            head = .tied(TiedOutputHead(tiedTo: embedding, name: "head", store: &store))
        } else {
            head = .untied(Linear(D, V, name: "head", store: &store, rng: &rng))
        }
        dropout = Dropout(rate: Float(config.dropout))
    }

    // MARK: the three entry points

    /// Mean next-byte cross-entropy (nats) over the B*T positions of
    /// `tokens [B, T]` (row-major, `batchSize` = B) against `targets [B, T]`,
    /// accumulating every parameter gradient of that mean into
    /// `store.gradients` (nothing is zeroed).
    ///
    /// - Parameters:
    ///   - state: the state carried in from the previous segment (nil: empty;
    ///     must be nil for softmax).
    ///   - training: dropout and a fresh FAVOR+ Omega per block (drawn from
    ///     `rng`); false: neither, and rng is untouched.
    /// - Returns: the mean loss, the count B*T and the state after the
    ///   segment (detached: truncated backpropagation at the boundary).
    /// - Throws: `FWError.shapeMismatch` / `.invalidArgument` naming tokens,
    ///   targets or the state; memory beyond the machine's. A failed call
    ///   leaves the gradients as they were.
    ///
    /// `blockGradientsReady(l, store)` is called as soon as block l's
    /// gradients are complete (blocks N-1 down to 0; the embedding, final
    /// LN and head after the last call), so a data-parallel trainer can
    /// start summing them across processes while the rest of the backward runs.
    public func lossAndGradients(tokens: [Int32], targets: [Int32], batchSize: Int, state: LanguageModelState?,
                                 store: inout ParameterStore, training: Bool, rng: inout SeededRNG,
                                 blockGradientsReady: ((Int, inout ParameterStore) throws -> Void)? = nil) throws
        -> (loss: Float, count: Int, state: LanguageModelState) {
        let (B, T) = try checkTokens(tokens, batchSize: batchSize)
        try checkTargets(targets, B: B, T: T)
        try MemoryBudget.check(config.memoryEstimate(batch: B, context: T), "CharLanguageModel on [\(B), \(T)] bytes")
        let pass = try run(tokens: tokens, B: B, T: T, state: state, store: store, training: training,
                           rng: &rng, saveForBackward: true)
        let logits = try headForward(pass.hidden, store)                            // [B, T, 256]
        let out = try SoftmaxCrossEntropy.forward(logits: logits, targets: targets)
        let dlogits = try SoftmaxCrossEntropy.backward(out, targets: targets)      // (probs - onehot) / (B T)
        let dhidden = try headBackward(dlogits, input: pass.hidden, store: &store)
        try backward(dhidden: dhidden, cache: pass.cache!, store: &store, blockGradientsReady: blockGradientsReady)
        return (out.loss, out.count, pass.state)
    }

    /// The same forward in evaluation mode (no dropout, the fixed Omega), no
    /// gradients: the SUM over the B*T positions of -log p(target) (nats,
    /// accumulated in Double), the count B*T and the state after the segment.
    ///
    /// - Throws: as `lossAndGradients`.
    public func evaluate(tokens: [Int32], targets: [Int32], batchSize: Int, state: LanguageModelState?,
                         store: ParameterStore) throws -> (lossSum: Double, count: Int, state: LanguageModelState) {
        let (B, T) = try checkTokens(tokens, batchSize: batchSize)
        try checkTargets(targets, B: B, T: T)
        let (logits, newState) = try evaluationLogits(tokens: tokens, B: B, T: T, state: state, store: store)
        let sum = logits.withUnsafeBufferPointer { lp in
            CharLanguageModel.crossEntropySum(logits: lp.baseAddress!, targets: targets, classes: LanguageModelConfig.vocabularySize)
        }
        return (sum, B * T, newState)
    }

    /// The logits of every position, `[B, T, 256]` (evaluation mode, no
    /// gradients), and the state after the segment.
    ///
    /// - Throws: as `lossAndGradients` (without the targets).
    public func logits(tokens: [Int32], batchSize: Int, state: LanguageModelState?,
                       store: ParameterStore) throws -> (logits: Tensor, state: LanguageModelState) {
        let (B, T) = try checkTokens(tokens, batchSize: batchSize)
        return try evaluationLogits(tokens: tokens, B: B, T: T, state: state, store: store)
    }

    /// The empty state for `batchSize` streams (same as passing nil).
    public func emptyState(batchSize: Int) throws -> LanguageModelState {
        try LanguageModelState.empty(config: config, batchSize: batchSize)
    }

    private func evaluationLogits(tokens: [Int32], B: Int, T: Int, state: LanguageModelState?,
                                  store: ParameterStore) throws -> (logits: Tensor, state: LanguageModelState) {
        try MemoryBudget.check(config.memoryEstimate(batch: B, context: T), "CharLanguageModel on [\(B), \(T)] bytes")
        var unused = SeededRNG(seed: 0)          // evaluation draws nothing
        let pass = try run(tokens: tokens, B: B, T: T, state: state, store: store, training: false,
                           rng: &unused, saveForBackward: false)
        return (try headForward(pass.hidden, store), pass.state)
    }
}
