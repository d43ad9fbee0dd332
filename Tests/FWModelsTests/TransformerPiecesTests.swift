// The Transformer pieces of FWModels (Layers/Transformer): every forward
// against its Float64 reference (TransformerReference), every parameter
// gradient and dx against central finite differences of that reference
// (loss <dy, y>, or the model's own loss), and the shape errors. A tiny
// causal mixer stands in for attention so blocks and models are testable
// before the attention layers exist.
import XCTest
import FWTestSupport

/// The test mixer: `y[b, t] = W mean_{s <= t} x[b, s]`, `W [D, D]` named `<name>.W`.
private struct CausalMeanMixer: SequenceMixingLayer {
    let modelSize: Int
    let weight: ParameterSlice

    struct Cache: Sendable {
        /// `m[b, t] = mean_{s <= t} x[b, s]`, `[B, T, D]`.
        let means: Tensor
    }

    init(modelSize: Int, name: String, store: inout ParameterStore, rng: inout SeededRNG) {
        self.modelSize = modelSize
        weight = store.register("\(name).W", shape: [modelSize, modelSize], initializer: .normal(std: 0.5), rng: &rng)
    }

    func forward(_ x: Tensor, store: ParameterStore, training: Bool, rng: inout SeededRNG) throws -> (y: Tensor, cache: Cache) {
        guard x.rank == 3, x.shape[2] == modelSize else {
            throw FWError.shapeMismatch(tensor: "CausalMeanMixer x", expected: "[B, T, \(modelSize)]", got: x.shape)
        }
        let (B, T, D) = (x.shape[0], x.shape[1], x.shape[2])
        var m = Tensor(shape: x.shape), y = Tensor(shape: x.shape)
        let w = store.tensor(weight).storage
        for b in 0..<B {
            var sum = [Float](repeating: 0, count: D)
            for t in 0..<T {
                for d in 0..<D { sum[d] += x.storage[(b * T + t) * D + d] }
                for d in 0..<D { m.storage[(b * T + t) * D + d] = sum[d] / Float(t + 1) }
                for o in 0..<D {
                    var acc: Float = 0
                    for d in 0..<D { acc += w[o * D + d] * m.storage[(b * T + t) * D + d] }
                    y.storage[(b * T + t) * D + o] = acc
                }
            }
        }
        return (y, Cache(means: m))
    }

    func backward(_ dy: Tensor, cache: Cache, store: inout ParameterStore) throws -> Tensor {
        try dy.checkShape("CausalMeanMixer dy", cache.means.shape)
        let (B, T, D) = (dy.shape[0], dy.shape[1], dy.shape[2])
        let w = store.tensor(weight).storage
        var dw = [Float](repeating: 0, count: D * D)
        var dx = Tensor(shape: dy.shape)
        for b in 0..<B {
            var carry = [Float](repeating: 0, count: D)   // sum_{t >= s} dm_t / (t + 1)
            for t in stride(from: T - 1, through: 0, by: -1) {
                let row = (b * T + t) * D
                for o in 0..<D {
                    for d in 0..<D { dw[o * D + d] += dy.storage[row + o] * cache.means.storage[row + d] }
                }
                for d in 0..<D {
                    var dm: Float = 0
                    for o in 0..<D { dm += w[o * D + d] * dy.storage[row + o] }
                    carry[d] += dm / Float(t + 1)
                }
                for d in 0..<D { dx.storage[row + d] = carry[d] }
            }
        }
        store.withPointers { p in
            let g = p.gradient(weight)
            for i in 0..<(D * D) { g[i] += dw[i] }
        }
        return dx
    }
}

final class TransformerPiecesTests: XCTestCase {
    /// Checks `analytic` against central differences of `f` at `x`, printing the max error.
    private func checkGradient(_ label: String, _ analytic: [Float], at x: [Double], _ f: ([Double]) -> Double,
                               file: StaticString = #filePath, line: UInt = #line) {
        let fd = centralDifferences(at: x, f)
        print("  \(label): max|analytic - fd| = \(maxAbsDifference(analytic, fd))")
        assertSpecClose(analytic, fd, label, file: file, line: line)
    }

    /// FD over every value of `store` at once (`f` of the flat values), then
    /// the check parameter by parameter; prints the largest error.
    private func checkStoreGradients(_ label: String, _ store: ParameterStore, scale: Double = 1,
                                     _ f: ([Double]) -> Double,
                                     file: StaticString = #filePath, line: UInt = #line) {
        let fd = centralDifferences(at: store.values.asDouble, f)
        var worst = (0.0, "")
        for s in store.slices {
            let analytic = Array(store.gradients[s.range]).map { Float(Double($0) / scale) }
            let err = maxAbsDifference(analytic, Array(fd[s.range]))
            if err >= worst.0 { worst = (err, s.name) }
            assertSpecClose(analytic, Array(fd[s.range]), "\(label) d\(s.name)", file: file, line: line)
        }
        print("  \(label): \(store.slices.count) parameters (\(store.count) numbers), max|analytic - fd| = \(worst.0) (\(worst.1))")
    }

    /// Parameter lookup by name in a flat value array laid out like `store`.
    private func lookup(_ store: ParameterStore, _ values: [Double]) -> (String) -> [Double] {
        { name in Array(values[store.slice(named: name)!.range]) }
    }

    /// Non-trivial layer-norm gains and non-zero biases everywhere.
    private func perturb(_ store: inout ParameterStore, _ rng: inout SeededRNG) throws {
        for s in store.slices {
            if s.name.hasSuffix(".bias") {
                try store.setTensor(s.name, rng.normalTensor(s.shape, std: 0.3))
            } else if s.name.contains("ln"), s.name.hasSuffix(".weight") {
                try store.setTensor(s.name, rng.uniformTensor(s.shape, low: 0.5, high: 1.5))
            }
        }
    }

    private func assertShapeError(_ expression: @autoclosure () throws -> Any, _ expected: FWError,
                                  file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try expression(), file: file, line: line) { error in
            XCTAssertEqual(error as? FWError, expected, file: file, line: line)
        }
    }

    func testFeedForwardForwardGradientsAndShapeErrors() throws {
        var rng = SeededRNG(seed: 41)
        var store = ParameterStore()
        let ff = FeedForward(4, 6, name: "ff", store: &store, rng: &rng)
        XCTAssertEqual(store.names, ["ff.up.weight", "ff.up.bias", "ff.down.weight", "ff.down.bias"])
        try perturb(&store, &rng)
        let x = rng.normalTensor([2, 3, 4]), dy = rng.normalTensor([2, 3, 4])
        let xd = x.storage.asDouble, dyd = dy.storage.asDouble
        let (y, cache) = try ff.forward(x, store: store)
        XCTAssertEqual(y.shape, [2, 3, 4])
        let p = lookup(store, store.values.asDouble)
        assertSpecClose(y.storage, TransformerReference.feedForward(xd, name: "ff", p: p, n: 6, modelSize: 4, hiddenSize: 6), "FeedForward y")

        // Twice: parameter gradients accumulate, so they must be 2x the FD.
        let dx = try ff.backward(dy, cache: cache, store: &store)
        _ = try ff.backward(dy, cache: cache, store: &store)
        checkGradient("FeedForward dx", dx.storage, at: xd) {
            dot(dyd, TransformerReference.feedForward($0, name: "ff", p: p, n: 6, modelSize: 4, hiddenSize: 6))
        }
        checkStoreGradients("FeedForward (x2)", store, scale: 2) { v in
            dot(dyd, TransformerReference.feedForward(xd, name: "ff", p: self.lookup(store, v), n: 6, modelSize: 4, hiddenSize: 6))
        }

        assertShapeError(try ff.forward(Tensor(shape: [2, 3, 5]), store: store),
                         .shapeMismatch(tensor: "FeedForward x", expected: "[..., 4]", got: [2, 3, 5]))
        assertShapeError(try ff.backward(Tensor(shape: [2, 4, 4]), cache: cache, store: &store),
                         .shapeMismatch(tensor: "FeedForward dy", expected: "[2, 3, 4]", got: [2, 4, 4]))
    }

    func testPositionalEncodingTableIdentityBackwardAndShapeError() throws {
        // Odd D: the last column is a sine.
        let pe = PositionalEncoding.table(length: 7, dimensions: 5)
        XCTAssertEqual(pe.shape, [7, 5])
        assertSpecClose(pe.storage, TransformerReference.positionalEncoding(length: 7, dimensions: 5), "PE [7, 5]")
        XCTAssertEqual(Array(pe.storage[0..<5]), [0, 1, 0, 1, 0])
        let pe4 = PositionalEncoding.table(length: 50, dimensions: 4)
        assertSpecClose(pe4.storage, TransformerReference.positionalEncoding(length: 50, dimensions: 4), "PE [50, 4]")
        XCTAssertEqual(Double(pe4[3, 2]), sin(3.0 / 100), accuracy: 1e-7)      // 10000^(2/4) = 100

        var rng = SeededRNG(seed: 42)
        let x = rng.normalTensor([2, 7, 5])
        let y = try PositionalEncoding.forward(x)
        for b in 0..<2 {
            for t in 0..<7 {
                for j in 0..<5 { XCTAssertEqual(y[b, t, j], x[b, t, j] + pe[t, j]) }
            }
        }
        let dy = rng.normalTensor([2, 7, 5])
        XCTAssertEqual(PositionalEncoding.backward(dy), dy)
        assertShapeError(try PositionalEncoding.forward(Tensor(shape: [7, 5])),
                         .shapeMismatch(tensor: "PositionalEncoding x", expected: "[B, T, D]", got: [7, 5]))
    }

    func testValueEmbeddingOneHotRowsAndRangeError() throws {
        let embed = ValueEmbedding(size: 4)
        let out = try embed([2, 0, 3, 2])
        XCTAssertEqual(out.shape, [4, 4])
        XCTAssertEqual(out.storage, [0, 0, 1, 0,
                                     1, 0, 0, 0,
                                     0, 0, 0, 1,
                                     0, 0, 1, 0])
        XCTAssertEqual(try ValueEmbedding.oneHot([], size: 3).shape, [0, 3])
        XCTAssertThrowsError(try embed([1, 4])) { error in
            XCTAssertEqual("\(error)", "ValueEmbedding: id 4 at position 1 is outside 0..<4")
        }
        XCTAssertThrowsError(try ValueEmbedding.oneHot([-1], size: 4)) { error in
            XCTAssertEqual("\(error)", "ValueEmbedding: id -1 at position 0 is outside 0..<4")
        }
    }

    func testTransformerBlockForwardGradientsAndShapeErrors() throws {
        let (B, T, D, F) = (2, 3, 4, 6)
        var rng = SeededRNG(seed: 43)
        var store = ParameterStore()
        let block = try TransformerBlock(modelSize: D, feedForwardSize: F, name: "blk", store: &store, rng: &rng) { store, rng in
            CausalMeanMixer(modelSize: D, name: "blk.mix", store: &store, rng: &rng)
        }
        XCTAssertEqual(store.names, ["blk.ln1.weight", "blk.ln1.bias", "blk.mix.W", "blk.ln2.weight", "blk.ln2.bias",
                                     "blk.ff.up.weight", "blk.ff.up.bias", "blk.ff.down.weight", "blk.ff.down.bias"])
        try perturb(&store, &rng)
        var x = rng.normalTensor([B, T, D])
        for i in 0..<x.count { x.storage[i] += 0.5 }           // an offset: LN's mean matters
        let dy = rng.normalTensor([B, T, D])
        let xd = x.storage.asDouble, dyd = dy.storage.asDouble
        func reference(_ x: [Double], _ v: [Double]) -> [Double] {
            let p = lookup(store, v)
            return TransformerReference.block(x, name: "blk", p: p, batch: B, length: T, modelSize: D, feedForwardSize: F) {
                TransformerReference.causalMeanMixer($0, weight: p("blk.mix.W"), batch: B, length: T, modelSize: D)
            }
        }
        let values = store.values.asDouble
        let (y, cache) = try block.forward(x, store: store, training: true, rng: &rng)
        assertSpecClose(y.storage, reference(xd, values), "TransformerBlock y")

        let dx = try block.backward(dy, cache: cache, store: &store)
        checkGradient("TransformerBlock dx", dx.storage, at: xd) { dot(dyd, reference($0, values)) }
        checkStoreGradients("TransformerBlock", store) { dot(dyd, reference(xd, $0)) }

        assertShapeError(try block.forward(Tensor(shape: [B, T, 5]), store: store, training: false, rng: &rng),
                         .shapeMismatch(tensor: "TransformerBlock x", expected: "[B, T, 4]", got: [B, T, 5]))
        assertShapeError(try block.forward(Tensor(shape: [B * T, D]), store: store, training: false, rng: &rng),
                         .shapeMismatch(tensor: "TransformerBlock x", expected: "[B, T, 4]", got: [B * T, D]))
        assertShapeError(try block.backward(Tensor(shape: [B, T + 1, D]), cache: cache, store: &store),
                         .shapeMismatch(tensor: "TransformerBlock dy", expected: "[2, 3, 4]", got: [B, T + 1, D]))
        var other = ParameterStore()
        XCTAssertThrowsError(try TransformerBlock(modelSize: D, feedForwardSize: F, name: "bad", store: &other, rng: &rng) { store, rng in
            CausalMeanMixer(modelSize: D + 1, name: "bad.mix", store: &store, rng: &rng)
        }) { error in
            XCTAssertEqual("\(error)", "TransformerBlock 'bad': mixer model size 5 != 4")
        }
    }

    /// The model of both loss tests: V = 5, D = 4, F = 6, 2 blocks, positional encoding on.
    private func makeModel(_ store: inout ParameterStore, _ rng: inout SeededRNG) throws -> TransformerModel<CausalMeanMixer> {
        let model = try TransformerModel(vocabularySize: 5, modelSize: 4, feedForwardSize: 6, layers: 2,
                                         positionalEncoding: true, store: &store, rng: &rng) { l, store, rng in
            CausalMeanMixer(modelSize: 4, name: "block\(l).mix", store: &store, rng: &rng)
        }
        try perturb(&store, &rng)
        return model
    }

    /// The reference model's head outputs `[B, T, 5]` for flat parameter values `v`.
    private func referenceOutputs(_ store: ParameterStore, _ v: [Double], tokens: [Int32], batch B: Int) -> [Double] {
        let p = lookup(store, v)
        let T = tokens.count / B
        return TransformerReference.modelOutputs(tokens: tokens, p: p, batch: B, modelSize: 4, feedForwardSize: 6, outputSize: 5,
                                                 layers: 2, positionalEncoding: true) { l, u in
            TransformerReference.causalMeanMixer(u, weight: p("block\(l).mix.W"), batch: B, length: T, modelSize: 4)
        }
    }

    func testTransformerModelCrossEntropyLossAccuracyAndGradients() throws {
        var rng = SeededRNG(seed: 44)
        var store = ParameterStore()
        let model = try makeModel(&store, &rng)
        XCTAssertEqual(store.names.first, "embedding.weight")
        XCTAssertEqual(Array(store.names.suffix(4)), ["final_ln.weight", "final_ln.bias", "head.weight", "head.bias"])
        let tokens: [Int32] = [0, 3, 3, 4, 1, 2, 2, 4]          // B = 2, T = 4 (repeated ids add up)
        let outputs = try model.outputs(tokens: tokens, batchSize: 2, store: store, rng: &rng)
        XCTAssertEqual(outputs.shape, [2, 4, 5])
        let refOut = referenceOutputs(store, store.values.asDouble, tokens: tokens, batch: 2)
        assertSpecClose(outputs.storage, refOut, "model outputs")
        // Targets: the reference's argmax at even positions, the next class at
        // odd ones, so exactly 4 of 8 are correct (the count is tested).
        var targets: [Int32] = []
        for i in 0..<8 {
            let row = Array(refOut[(i * 5)..<(i * 5 + 5)])
            let best = row.firstIndex(of: row.max()!)!
            targets.append(Int32(i % 2 == 0 ? best : (best + 1) % 5))
        }
        let correct = 4

        store.zeroGradients()
        let result = try model.crossEntropy(tokens: tokens, targets: targets, batchSize: 2, store: &store, rng: &rng)
        let refLoss = LayersReference.softmaxCrossEntropy(refOut, targets: targets, classes: 5)
        print("  model cross-entropy \(result.loss) vs reference \(refLoss), correct \(result.correct)/\(result.count)")
        assertSpecClose([result.loss], [refLoss], "model cross-entropy")
        XCTAssertEqual(result.count, 8)
        XCTAssertEqual(result.correct, correct)
        checkStoreGradients("model cross-entropy", store) { v in
            LayersReference.softmaxCrossEntropy(self.referenceOutputs(store, v, tokens: tokens, batch: 2), targets: targets, classes: 5)
        }
    }

    func testTransformerModelSquaredErrorOnTheLastPositionAndGradients() throws {
        var rng = SeededRNG(seed: 45)
        var store = ParameterStore()
        let model = try makeModel(&store, &rng)
        let tokens: [Int32] = [1, 4, 0, 2, 2, 3, 0, 1, 4]       // B = 3, T = 3
        let targets = try ValueEmbedding.oneHot([2, 0, 4], size: 5)

        let last = try model.lastOutputs(tokens: tokens, batchSize: 3, store: store, rng: &rng)
        let refLast = TransformerReference.lastPositions(referenceOutputs(store, store.values.asDouble, tokens: tokens, batch: 3),
                                                         batch: 3, length: 3, width: 5)
        assertSpecClose(last.storage, refLast, "model last outputs")
        var correct = 0
        for (b, t) in [2, 0, 4].enumerated() {
            let row = Array(refLast[(b * 5)..<(b * 5 + 5)])
            if row.firstIndex(of: row.max()!)! == t { correct += 1 }
        }

        store.zeroGradients()
        let result = try model.squaredError(tokens: tokens, targets: targets, store: &store, rng: &rng)
        let t = targets.storage.asDouble
        let refLoss = LayersReference.squaredError(refLast, target: t, n: 3)
        print("  model squared error \(result.loss) vs reference \(refLoss), correct \(result.correct)/\(result.count)")
        assertSpecClose([result.loss], [refLoss], "model squared error")
        XCTAssertEqual(result.count, 3)
        XCTAssertEqual(result.correct, correct)
        checkStoreGradients("model squared error", store) { v in
            let out = self.referenceOutputs(store, v, tokens: tokens, batch: 3)
            return LayersReference.squaredError(TransformerReference.lastPositions(out, batch: 3, length: 3, width: 5), target: t, n: 3)
        }
    }

    func testTransformerModelShapeErrorsNameTheTensor() throws {
        var rng = SeededRNG(seed: 46)
        var store = ParameterStore()
        let model = try makeModel(&store, &rng)
        assertShapeError(try model.outputs(tokens: [0, 1, 2], batchSize: 2, store: store, rng: &rng),
                         .shapeMismatch(tensor: "tokens", expected: "[2, T] with T >= 1", got: [3]))
        assertShapeError(try model.crossEntropy(tokens: [0, 1, 2, 3], targets: [0, 1, 2], batchSize: 2, store: &store, rng: &rng),
                         .shapeMismatch(tensor: "targets", expected: "[2, 2]", got: [3]))
        assertShapeError(try model.squaredError(tokens: [0, 1, 2, 3], targets: Tensor(shape: [2, 4]), store: &store, rng: &rng),
                         .shapeMismatch(tensor: "targets", expected: "[B, 5]", got: [2, 4]))
        assertShapeError(try model.squaredError(tokens: [0, 1, 2], targets: Tensor(shape: [2, 5]), store: &store, rng: &rng),
                         .shapeMismatch(tensor: "tokens", expected: "[2, T] with T >= 1", got: [3]))
        XCTAssertThrowsError(try model.outputs(tokens: [0, 5], batchSize: 1, store: store, rng: &rng)) { error in
            XCTAssertEqual("\(error)", "Embedding 'embedding.weight': id 5 at position 1 is outside 0..<5")
        }
        XCTAssertThrowsError(try model.crossEntropy(tokens: [0, 1], targets: [0, 7], batchSize: 1, store: &store, rng: &rng)) { error in
            XCTAssertEqual("\(error)", "SoftmaxCrossEntropy: target 7 at row 1 outside 0..<5")
        }
        // A failed call leaves the gradients untouched.
        XCTAssertTrue(store.gradients.allSatisfy { $0 == 0 })
    }
}
