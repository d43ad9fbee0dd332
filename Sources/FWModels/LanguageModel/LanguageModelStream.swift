#if canImport(Glibc)
import Glibc
#endif
import FWCore
import FWOps

/// Byte-by-byte generation with a `CharLanguageModel` (batch 1, evaluation
/// mode): `feed(b)` takes the next byte and returns the logits `[256]` of the
/// byte after it.
///
/// * Fast-weight mixers keep O(1) state per block, no history: per head one
///   fused pass over S `[dk, Dphi]` (`StreamKernels`: the sum rule reads the
///   old row against q' while writing `v k'^T` in the same sweep; the delta
///   rule reads S k' and S q' together, then writes `u k'^T`), plus the key
///   sum z for the denominator mixers. The state is the model's
///   `LanguageModelState` (B = 1), so a prompt run through `logits` can be
///   continued here (`init(model:store:state:)`).
/// * Softmax attention keeps a key/value cache per block and attends over
///   all of it: O(t) per token. The cache is feature-major (`[D, cap]`: row
///   `h dk + i` holds feature i of head h's keys over time), so the scores
///   `q . k_j` of one head are dk long axpys over j and its output dk long
///   dot products: no horizontal sum per cached position. It grows by doubling.
///
/// The per-token path reuses buffers allocated at init (the softmax cache
/// and its score row grow geometrically, not per token) and calls no BLAS.
/// A stream is a value: a copy continues independently of the original.
/// The logits equal `CharLanguageModel.logits` of the whole sequence (FAVOR+
/// with the Omega fixed for evaluation) up to Float32 rounding.
public struct LanguageModelStream: Sendable {
    /// The model (its configuration and parameter slices).
    public let model: CharLanguageModel
    /// The parameters.
    let store: ParameterStore
    /// Bytes fed since the empty state.
    public private(set) var position: Int
    /// The fast weights after the bytes fed so far (B = 1). For softmax it
    /// stays the empty state (no tensors, position 0): its history is the
    /// key/value cache, and `position` counts the bytes.
    public private(set) var state: LanguageModelState
    /// Per block, the softmax keys and values, feature-major `[D, cap]`
    /// (entry `(h dk + i) cap + j` is feature i of head h at time j; empty for fast weights).
    var keys: [[Float]], values: [[Float]]
    /// cap, the positions the softmax cache holds.
    var cacheCapacity: Int
    /// One head's softmax scores `[cap]`.
    var scores: [Float]
    /// The scratch vectors of one token (`Layout`).
    var work: [Float]
    /// The logits of the last `feed`.
    var logitsBuffer: [Float]
    /// `10000^(-(j - j mod 2)/D)` per column (positional encoding).
    let frequencies: [Double]
    let layout: Layout

    /// Offsets of the scratch vectors inside `work` (o holds `[H dv]`; conv,
    /// normed and rstd are the DeltaNet mixers' `[C]`, `[H dv]`, `[H]`).
    struct Layout: Sendable {
        let x: Int, u: Int, p: Int, o: Int, m: Int, a: Int, phiQ: Int, phiK: Int, scratch: Int, stats: Int
        let conv: Int, normed: Int, rstd: Int, count: Int
        init(_ c: LanguageModelConfig) {
            let (D, F, dphi) = (c.modelSize, c.feedForwardSize, max(c.featureSize, 1))
            let heads = max(D, c.heads * c.valueSize), C = c.convStateShape(batch: 1)?[2] ?? 0
            x = 0; u = D; p = 2 * D; o = p + c.projectionSize; m = o + heads; a = m + D
            phiQ = a + F; phiK = phiQ + dphi; scratch = phiK + dphi
            var favorM = 0
            if case let .favor(m) = c.featureMap { favorM = m }
            stats = scratch + max(2 * c.headSize, favorM, 1)
            conv = stats + 2; normed = conv + C; rstd = normed + (C > 0 ? heads : 0); count = rstd + (C > 0 ? c.heads : 0)
        }
    }

    /// A stream at position 0 with the empty state. `capacity` is how many
    /// bytes the softmax key/value cache holds before its first growth.
    ///
    /// - Throws: `FWError.invalidArgument` when `store` does not hold `model`'s parameters.
    public init(model: CharLanguageModel, store: ParameterStore, capacity: Int = 1024) throws {
        guard store.count == model.config.parameterCount,
              store.slice(named: model.embedding.table.name) == model.embedding.table else {
            throw FWError.invalidArgument("LanguageModelStream: the store holds \(store.count) parameters, not the model's \(model.config.parameterCount)")
        }
        let c = model.config
        self.model = model
        self.store = store
        position = 0
        state = try LanguageModelState.empty(config: c, batchSize: 1)
        let cap = c.mixer.carriesState ? 0 : max(1, capacity)
        cacheCapacity = cap
        keys = [[Float]](repeating: [Float](repeating: 0, count: cap * c.modelSize), count: c.layers)
        values = keys
        scores = [Float](repeating: 0, count: cap)
        layout = Layout(c)
        work = [Float](repeating: 0, count: layout.count)
        logitsBuffer = [Float](repeating: 0, count: LanguageModelConfig.vocabularySize)
        frequencies = (0..<c.modelSize).map { CharLanguageModel.positionalFrequency(column: $0, width: c.modelSize) }
    }

    /// A stream that continues from `state` (batch 1), e.g. the state
    /// `CharLanguageModel.logits` returned after a prompt. Fast-weight mixers only.
    ///
    /// - Throws: `FWError.invalidArgument` for softmax, a state of another
    ///   batch size or shape, or a store without the model's parameters.
    public init(model: CharLanguageModel, store: ParameterStore, state: LanguageModelState) throws {
        guard model.carriesState else {
            throw FWError.invalidArgument("LanguageModelStream: the softmax mixer has no state to continue from (feed the prompt instead)")
        }
        _ = try model.initialStates(state, B: 1)           // checks batch size, layers and shapes
        try self.init(model: model, store: store)
        self.state = state
        position = state.position
    }

    /// Back to position 0 and the empty state (buffers are kept).
    public mutating func reset() {
        position = 0
        state = try! LanguageModelState.empty(config: model.config, batchSize: 1)
        // The softmax cache is read only up to `position`: nothing to clear.
    }

    /// Feeds the next byte; returns the logits `[256]` of the byte after it.
    /// (The returned array shares the stream's buffer until the next feed, so
    /// keeping it across feeds costs one copy then.)
    ///
    /// - Throws: `FWError.invalidArgument` when the softmax cache would
    ///   outgrow the machine's memory.
    public mutating func feed(_ token: UInt8) throws -> [Float] {
        if !model.carriesState { try growSoftmaxCache(to: position + 1) }
        LanguageModelStream.step(token: token, position: position, model: model, store: store, layout: layout,
                                 frequencies: frequencies, work: &work, logits: &logitsBuffer, state: &state,
                                 keys: &keys, values: &values, capacity: cacheCapacity, scores: &scores)
        position += 1
        if model.carriesState { state.position += 1 }
        return logitsBuffer
    }

    /// Makes room for `count` cached positions (doubling the capacity and
    /// moving every feature row), checking memory first.
    private mutating func growSoftmaxCache(to count: Int) throws {
        guard count > cacheCapacity else { return }
        let D = model.config.modelSize
        let newCap = max(count, 2 * cacheCapacity)
        let bytes = MemoryBudget.floats(Double(newCap) * (2 * Double(D) * Double(keys.count) + 1))
        try MemoryBudget.check(bytes, "LanguageModelStream: a softmax cache of \(newCap) positions")
        func moved(_ old: [Float]) -> [Float] {
            var new = [Float](repeating: 0, count: D * newCap)
            for c in 0..<D {
                for j in 0..<position { new[c * newCap + j] = old[c * cacheCapacity + j] }
            }
            return new
        }
        for l in keys.indices {
            keys[l] = moved(keys[l])
            values[l] = moved(values[l])
        }
        scores = [Float](repeating: 0, count: newCap)
        cacheCapacity = newCap
    }
}
