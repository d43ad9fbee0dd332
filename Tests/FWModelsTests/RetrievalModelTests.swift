import FWTestSupport
import XCTest

/// The associative-retrieval model with each encoder: the loss against the
/// Float64 reference of the whole model, and *every* parameter gradient
/// (embedding, encoder, readout) against central finite differences of it.
final class RetrievalModelTests: XCTestCase {
    // Tiny sizes: K = 2 pairs (T = 7), B = 3, Din = 3, N = 4.
    let (pairs, B, E, N) = (2, 3, 3, 4)

    /// Builds the model, moves every parameter off its initial value (so that
    /// b, g, c and zero biases are exercised), runs loss + gradients, and
    /// checks both against the reference.
    func check<Enc: RecurrentEncoder>(_ label: String, seed: UInt64, reference: (RetrievalModel<Enc>) -> RetrievalModelReference.Encoder,
                                      make: (Int, inout ParameterStore, inout SeededRNG) -> Enc) throws {
        let task = try AssociativeRetrieval(pairs: pairs)
        var rng = SeededRNG(seed: seed)
        var store = ParameterStore()
        let model = RetrievalModel(vocabularySize: AssociativeRetrieval.vocabularySize, embeddingSize: E,
                                   classes: AssociativeRetrieval.classCount, sequenceLength: task.length,
                                   store: &store, rng: &rng, makeEncoder: make)
        var values = store.values
        for i in values.indices { values[i] += 0.1 * rng.normal() }
        store.setValues(values)
        let data = task.generate(count: B, rng: &rng)

        store.zeroGradients()
        let r = try model.lossAndGradients(tokens: data.tokens[...], targets: data.targets[...], store: &store)
        let ref = RetrievalModelReference(encoder: reference(model), slices: store.slices, embedding: E, hidden: N,
                                          classes: AssociativeRetrieval.classCount, time: task.length)
        let p = store.values.asDouble
        let loss = ref.loss(p, tokens: data.tokens, targets: data.targets)
        XCTAssertEqual(Double(r.loss), loss, accuracy: 2e-4 * max(1, abs(loss)), "\(label) loss")

        let fd = centralDifferences(at: p) { ref.loss($0, tokens: data.tokens, targets: data.targets) }
        var worst = 0.0
        for s in store {
            let analytic = Array(store.gradients[s.range])
            let numeric = Array(fd[s.range])
            assertSpecClose(analytic, numeric, "\(label) d\(s.name)")
            worst = max(worst, maxAbsDifference(analytic, numeric))
        }
        // Every parameter must get some gradient (a forgotten accumulation shows up as zeros).
        for s in store where s.name != "embedding.weight" {
            XCTAssertGreaterThan(store.gradients[s.range].map(abs).max() ?? 0, 0, "\(label) d\(s.name) is all zeros")
        }
        print("\(label): loss \(r.loss) vs \(loss); max |grad - fd| over \(store.count) parameters = \(worst)")
    }

    func testFastWeightsModelGradients() throws {
        let config = FastWeightsRNNConfig()   // the paper's: lambda 0.95, eta 0.5, S = 1, ReLU
        for algorithm in FastWeightsRNNAlgorithm.allCases {
            try check("fast weights (\(algorithm))", seed: 11, reference: { _ in .fastWeights(lambda: 0.95, eta: 0.5, innerSteps: 1, relu: true) }) { input, store, rng in
                FastWeightsEncoder(input: input, hidden: self.N, config: config, algorithm: algorithm,
                                   store: &store, rng: &rng)
            }
        }
    }

    func testIRNNModelGradients() throws {
        try check("IRNN", seed: 12, reference: { _ in .irnn }) { input, store, rng in
            IRNNEncoder(input: input, hidden: self.N, store: &store, rng: &rng)
        }
    }

    func testLSTMModelGradients() throws {
        try check("LSTM", seed: 13, reference: { _ in .lstm }) { input, store, rng in
            LSTMEncoder(input: input, hidden: self.N, store: &store, rng: &rng)
        }
    }

    func testAssociativeLSTMModelGradients() throws {
        try check("A-LSTM", seed: 14, reference: { .associativeLSTM(permutations: $0.encoder.permutations) }) { input, store, rng in
            AssociativeLSTMEncoder(input: input, hidden: self.N, copies: 2, store: &store, rng: &rng)
        }
    }

    /// Parameters are registered embedding, encoder, readout, with the shapes the paper's model has.
    func testParameterLayoutFromTheRunConfig() throws {
        var config = RetrievalRunConfig(model: .fastWeights, hidden: 20)
        config.embedding = 100
        var store = ParameterStore()
        var rng = SeededRNG(seed: 1)
        let model = try config.makeModel(store: &store, rng: &rng)
        XCTAssertEqual(model.sequenceLength, 11)   // K = 4 pairs: 2K + 3
        XCTAssertEqual(store.names, ["embedding.weight", "encoder.W", "encoder.C", "encoder.b", "encoder.g", "encoder.c",
                                     "readout.weight", "readout.bias"])
        XCTAssertEqual(try store.tensor("encoder.W").shape, [20, 20])
        XCTAssertEqual(try store.tensor("encoder.C").shape, [20, 100])
        XCTAssertEqual(try store.tensor("readout.weight").shape, [10, 20])
        // identity:0.05 (the default): W = 0.05 I.
        XCTAssertEqual(try store.tensor("encoder.W")[3, 3], 0.05)
        XCTAssertEqual(try store.tensor("encoder.W")[3, 4], 0)
    }

    /// Evaluating a split in batches gives the same loss and count as one big batch.
    func testSplitEvaluationInBatches() throws {
        var config = RetrievalRunConfig(model: .irnn, hidden: 6)
        config.embedding = 5
        config.pairs = 3
        var store = ParameterStore()
        var rng = SeededRNG(seed: 2)
        let model = try config.makeModel(store: &store, rng: &rng)
        let data = try config.task().generate(count: 37, rng: &rng)
        let whole = try model.evaluate(tokens: data.tokens, targets: data.targets, batchSize: 37, store: store)
        let parts = try model.evaluate(tokens: data.tokens, targets: data.targets, batchSize: 10, store: store)
        XCTAssertEqual(whole.count, 37)
        XCTAssertEqual(whole.correct, parts.correct)
        XCTAssertEqual(Double(whole.loss), Double(parts.loss), accuracy: 1e-5)
    }

    /// predictions agree with evaluate's count (in any batching), and the
    /// per-pair split adds up to the whole split's errors.
    func testPredictionsAndErrorsByQueriedPair() throws {
        var config = RetrievalRunConfig(model: .fastWeights, hidden: 6)
        config.embedding = 5
        config.pairs = 3
        var store = ParameterStore()
        var rng = SeededRNG(seed: 4)
        let model = try config.makeModel(store: &store, rng: &rng)
        let task = try config.task()
        let data = task.generate(count: 41, rng: &rng)
        let whole = try model.evaluate(tokens: data.tokens, targets: data.targets, batchSize: 41, store: store)
        let predicted = try model.predictions(tokens: data.tokens, batchSize: 41, store: store)
        XCTAssertEqual(try model.predictions(tokens: data.tokens, batchSize: 7, store: store), predicted)
        XCTAssertEqual(predicted.count, 41)
        XCTAssertEqual(zip(predicted, data.targets).filter { $0 == $1 }.count, whole.correct)
        let split = try task.errorsByPair(tokens: data.tokens, targets: data.targets, predictions: predicted)
        XCTAssertEqual(split.count.count, 3)
        XCTAssertEqual(split.count.reduce(0, +), 41)
        XCTAssertEqual(split.errors.reduce(0, +), 41 - whole.correct)
        XCTAssertThrowsError(try task.errorsByPair(tokens: data.tokens, targets: data.targets, predictions: [1, 2]))
    }

    /// c9k8j3f1??c asks for pair 1 (0-based 0); a query that is no key gives nil.
    func testQueriedPair() throws {
        let task = try AssociativeRetrieval(pairs: 4)
        func tokens(_ text: String) -> ArraySlice<Int32> {
            ArraySlice(text.unicodeScalars.map { c -> Int32 in
                switch c {
                case "a"..."z": return Int32(c.value - 97)
                case "0"..."9": return Int32(c.value - 48 + 26)
                default: return Int32(AssociativeRetrieval.questionMark)
                }
            })
        }
        XCTAssertEqual(AssociativeRetrieval.render(tokens("c9k8j3f1??c")), "c9k8j3f1??c")
        XCTAssertEqual(task.queriedPair(tokens("c9k8j3f1??c")), 0)
        XCTAssertEqual(task.queriedPair(tokens("c9k8j3f1??f")), 3)
        XCTAssertEqual(task.queriedPair(tokens("c9k8j3f1??j")), 2)
        XCTAssertNil(task.queriedPair(tokens("c9k8j3f1??z")))
    }
}
