import FWTestSupport
import XCTest

/// The synthetic trainer: it learns an easy set-up to the target loss,
/// stops by patience where capacity is exceeded, is deterministic for a
/// seed, and reports non-finite numbers with the step.
final class SyntheticTrainerTests: XCTestCase {
    func testLearnsBelowCapacityAndIsDeterministic() throws {
        var c = SyntheticRunConfig(setting: 1, size: 5, model: "delta:dpfp:1")
        c.keySize = 8
        c.maxSteps = 3000
        c.evalSequences = 4
        let a = try SyntheticTrainer.run(c)
        XCTAssertEqual(a.stop, .target, "S = 5 < d_dot = 16 must reach the target: best \(a.bestLoss)")
        XCTAssertLessThanOrEqual(a.bestLoss, 0.001)
        XCTAssertEqual(a.bestAccuracyPercent, 100)
        let b = try SyntheticTrainer.run(c)
        XCTAssertEqual(a.history.map(\.evalLoss), b.history.map(\.evalLoss), "same seed, same run")
        XCTAssertEqual(a.steps, b.steps)
    }

    func testStopsByPatienceAboveCapacity() throws {
        // elu1 at d_key 2 (d_dot 2) cannot store 12 associations.
        var c = SyntheticRunConfig(setting: 1, size: 12, model: "sum:elu1")
        c.keySize = 2
        c.maxSteps = 20_000
        c.evalSequences = 4
        c.patience = 3
        let r = try SyntheticTrainer.run(c)
        XCTAssertEqual(r.stop, .patience)
        XCTAssertGreaterThan(r.bestLoss, 0.05)
        XCTAssertLessThan(r.steps, 20_000)
        XCTAssertEqual(r.history.count, r.steps / c.evalEvery)
    }

    func testFreezeEmbeddingKeepsTheEmbedding() throws {
        var c = SyntheticRunConfig(setting: 1, size: 4, model: "sum:elu1")
        c.keySize = 4
        c.maxSteps = 30
        c.evalEvery = 10
        // The initial embedding, drawn exactly as the trainer draws it.
        var rng = SeededRNG(seed: c.seed ^ SyntheticRunConfig.initSalt)
        var initial = ParameterStore()
        _ = try SyntheticRetrievalModel(size: 4, keySize: 4, reader: .sumRule(.elu1), store: &initial, rng: &rng)
        let e0 = try initial.tensor("key_embedding").storage

        let trained = try SyntheticTrainer.train(c).store
        XCTAssertNotEqual(try trained.tensor("key_embedding").storage, e0, "trained by default")
        XCTAssertNotEqual(try trained.tensor("key.bias").storage, try initial.tensor("key.bias").storage)
        c.freezeEmbedding = true
        let frozen = try SyntheticTrainer.train(c).store
        XCTAssertEqual(try frozen.tensor("key_embedding").storage, e0, "--freeze-embedding keeps E")
        XCTAssertNotEqual(try frozen.tensor("key.bias").storage, try initial.tensor("key.bias").storage, "the rest still trains")
    }

    func testNonFiniteLossNamesTheStep() throws {
        var c = SyntheticRunConfig(setting: 1, size: 4, model: "softmax")
        c.keySize = 4
        c.learningRate = 1e30
        c.maxSteps = 50
        XCTAssertThrowsError(try SyntheticTrainer.run(c)) { error in
            XCTAssertTrue("\(error)".contains("step "), "\(error)")
        }
    }
}
