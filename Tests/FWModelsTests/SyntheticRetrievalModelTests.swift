import FWTestSupport
import XCTest

/// The synthetic-retrieval model (Schlag et al. 2021) with every reader: the
/// outputs and loss against the Float64 reference (which builds the fast
/// weights explicitly), and every parameter gradient against central finite
/// differences of the reference.
final class SyntheticRetrievalModelTests: XCTestCase {
    let (S, d, e) = (5, 3, 4)

    func check(_ reader: SyntheticReader, setting: Int, evaluation: Bool, seed: UInt64) throws {
        let label = "\(reader) setting \(setting)\(evaluation ? " (all queries)" : "")"
        var rng = SeededRNG(seed: seed)
        var store = ParameterStore()
        let model = try SyntheticRetrievalModel(size: S, keySize: d, embedding: e, reader: reader, store: &store, rng: &rng)
        var values = store.values
        for i in values.indices { values[i] += 0.1 * rng.normal() }
        store.setValues(values)
        let task = try SyntheticRetrievalTask(setting: setting, size: S)
        let batch = evaluation ? task.evaluationBatch(count: 2, rng: &rng) : task.trainingBatch(count: 3, rng: &rng)
        let omega = try model.drawProjection(rng: &rng)

        let f = try model.forward(batch, store: store, omega: omega)
        store.zeroGradients()
        try model.backward(f, store: &store)
        let ref = SyntheticRetrievalReference(size: S, keySize: d, embedding: e, reader: reader, slices: store.slices)
        let p = store.values.asDouble
        let om = omega?.storage.asDouble
        let ys = ref.outputs(p, batch: batch, omega: om)
        assertSpecClose(f.y.storage, ys.flatMap { $0 }, "\(label) y")
        let loss = ref.loss(p, batch: batch, omega: om)
        XCTAssertEqual(Double(f.loss), loss, accuracy: 2e-4 * max(1, loss), "\(label) loss")

        let fd = centralDifferences(at: p) { ref.loss($0, batch: batch, omega: om) }
        var worst = 0.0
        for s in store {
            let analytic = Array(store.gradients[s.range]), numeric = Array(fd[s.range])
            assertSpecClose(analytic, numeric, "\(label) d\(s.name)")
            worst = max(worst, maxAbsDifference(analytic, numeric))
            XCTAssertGreaterThan(analytic.map(abs).max() ?? 0, 0, "\(label) d\(s.name) is all zeros")
        }
        print("\(label): loss \(f.loss) vs \(loss); max |grad - fd| = \(worst)")
    }

    func testSoftmaxGradients() throws {
        try check(.softmax, setting: 1, evaluation: false, seed: 1)
        try check(.softmax, setting: 2, evaluation: true, seed: 2)
    }

    func testSumRuleGradients() throws {
        for (i, phi) in [FeatureMap.elu1, .dpfp(order: 1), .dpfp(order: 2), .favor(features: 4)].enumerated() {
            try check(.sumRule(phi), setting: 1, evaluation: false, seed: 10 + UInt64(i))
            try check(.sumRule(phi), setting: 2, evaluation: true, seed: 20 + UInt64(i))
        }
    }

    func testDeltaRuleGradients() throws {
        for (i, phi) in [FeatureMap.elu1, .dpfp(order: 1), .dpfp(order: 2), .favor(features: 4)].enumerated() {
            try check(.deltaRule(phi), setting: 2, evaluation: false, seed: 30 + UInt64(i))
            try check(.deltaRule(phi), setting: 1, evaluation: true, seed: 40 + UInt64(i))
        }
    }

    /// The delta rule at the sizes where the engine switches to the chunked
    /// algorithm (Dphi * S > 64) gives the reference's outputs too.
    func testDeltaRuleChunkedSizes() throws {
        var rng = SeededRNG(seed: 5)
        var store = ParameterStore()
        let model = try SyntheticRetrievalModel(size: 40, keySize: 8, reader: .deltaRule(.dpfp(order: 1)), store: &store, rng: &rng)
        let task = try SyntheticRetrievalTask(setting: 2, size: 40)
        let batch = task.evaluationBatch(count: 2, rng: &rng)
        let f = try model.forward(batch, store: store)
        let ref = SyntheticRetrievalReference(size: 40, keySize: 8, embedding: model.embedding, reader: model.reader, slices: store.slices)
        assertSpecClose(f.y.storage, ref.outputs(store.values.asDouble, batch: batch, omega: nil).flatMap { $0 }, "delta chunked y")
    }

    func testTaskSettings() throws {
        var rng = SeededRNG(seed: 3)
        let one = try SyntheticRetrievalTask(setting: 1, size: 12)
        XCTAssertEqual(one.length, 12)
        let b1 = one.trainingBatch(count: 4, rng: &rng)
        for n in 0..<4 {
            let keys = b1.keys[(n * 12)..<((n + 1) * 12)], values = b1.values[(n * 12)..<((n + 1) * 12)]
            XCTAssertEqual(Set(keys).count, 12, "setting 1: keys are distinct")
            XCTAssertEqual(Set(values).count, 12, "setting 1: values are distinct")
            let pos = keys.firstIndex(of: b1.queries[n])!
            XCTAssertEqual(b1.targets[n], b1.values[pos])
        }
        let two = try SyntheticRetrievalTask(setting: 2, size: 6)
        XCTAssertEqual(two.length, 12)
        let b2 = two.evaluationBatch(count: 50, rng: &rng)
        var sawRepeat = false
        for n in 0..<50 {
            let keys = Array(b2.keys[(n * 12)..<((n + 1) * 12)]), values = Array(b2.values[(n * 12)..<((n + 1) * 12)])
            let qs = b2.queryStart[n]..<b2.queryStart[n + 1]
            XCTAssertEqual(qs.count, Set(keys).count, "every distinct key is queried once")
            if Set(keys).count < 12 { sawRepeat = true }
            for j in qs {
                XCTAssertEqual(b2.targets[j], values[keys.lastIndex(of: b2.queries[j])!], "the last occurrence wins")
            }
        }
        XCTAssertTrue(sawRepeat)
        XCTAssertThrowsError(try SyntheticRetrievalTask(setting: 3, size: 5))
        XCTAssertThrowsError(try SyntheticRetrievalTask(size: 4, length: 5, replacement: false))
    }

    func testBadInputsAreRejected() throws {
        var rng = SeededRNG(seed: 4)
        var store = ParameterStore()
        let model = try SyntheticRetrievalModel(size: 5, keySize: 3, reader: .sumRule(.favor(features: 2)), store: &store, rng: &rng)
        var batch = try SyntheticRetrievalTask(setting: 1, size: 5).trainingBatch(count: 2, rng: &rng)
        XCTAssertThrowsError(try model.forward(batch, store: store)) { error in
            XCTAssertTrue("\(error)".contains("needs omega"), "\(error)")
        }
        XCTAssertThrowsError(try model.forward(batch, store: store, omega: Tensor(shape: [3, 3]))) { error in
            XCTAssertTrue("\(error)".contains("omega"), "\(error)")
        }
        batch.keys[0] = 7
        XCTAssertThrowsError(try model.forward(batch, store: store, omega: Tensor(shape: [2, 3]))) { error in
            XCTAssertTrue("\(error)".contains("keys id 7"), "\(error)")
        }
        XCTAssertThrowsError(try SyntheticReader(parsing: "sum:identity"))
        XCTAssertThrowsError(try SyntheticReader(parsing: "linear"))
        XCTAssertEqual(try SyntheticReader(parsing: "delta:dpfp:2"), .deltaRule(.dpfp(order: 2)))
    }
}
