import FWTestSupport
@testable import FWModels
import XCTest

/// The retrieval trainer: a run checkpointed mid-way and resumed ends with
/// bit-identical parameters (and optimiser, sampler, best parameters and
/// learning curve) to an uninterrupted run; non-finite numbers stop the run
/// naming the step and the tensor; early stopping; checkpoint errors.
final class RetrievalTrainerTests: XCTestCase {
    var folder: String!

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "fw-trainer-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// A run small enough for a debug build: T = 9, 200 training sequences.
    func tinyConfig(_ model: RetrievalModelKind) -> RetrievalRunConfig {
        var c = RetrievalRunConfig(model: model, hidden: 6)
        c.embedding = 5
        c.pairs = 3
        c.trainExamples = 200
        c.validationExamples = 40
        c.testExamples = 40
        c.batchSize = 16
        c.maxSteps = 14
        c.evalEvery = 4
        c.evalBatchSize = 15
        c.learningRate = 3e-3
        return c
    }

    func assertSameRun(_ a: RetrievalTrainer, _ b: RetrievalTrainer, _ label: String) {
        XCTAssertEqual(a.store.values, b.store.values, "\(label): final parameters differ")
        XCTAssertEqual(a.bestValues, b.bestValues, "\(label): best parameters differ")
        XCTAssertEqual(a.optimizer.m, b.optimizer.m, "\(label): Adam m differs")
        XCTAssertEqual(a.optimizer.v, b.optimizer.v, "\(label): Adam v differs")
        XCTAssertEqual(a.optimizer.step, b.optimizer.step, "\(label): Adam step differs")
        XCTAssertEqual(a.sampler, b.sampler, "\(label): sampler differs")
        XCTAssertEqual(a.rng, b.rng, "\(label): generator differs")
        var ha = a.progress, hb = b.progress
        // Wall-clock time is the only thing allowed to differ.
        ha.seconds = 0; hb.seconds = 0
        ha.history = ha.history.map { var r = $0; r.seconds = 0; return r }
        hb.history = hb.history.map { var r = $0; r.seconds = 0; return r }
        XCTAssertEqual(ha, hb, "\(label): progress differs")
    }

    /// Interrupted at step 6 (between two evaluations, so the training-loss
    /// window is mid-way too), written to disk, resumed in a new trainer.
    func testResumedRunIsBitIdenticalToAnUninterruptedOne() throws {
        for model in [RetrievalModelKind.fastWeights, .lstm] {
            let config = tinyConfig(model)
            let straight = try RetrievalTrainer(config: config)
            try straight.train()
            XCTAssertEqual(straight.progress.step, 14)
            XCTAssertEqual(straight.progress.history.map(\.step), [4, 8, 12, 14])

            let first = try RetrievalTrainer(config: config)
            try first.train(until: 6)
            XCTAssertEqual(first.progress.step, 6)
            let path = folder + "/\(model.rawValue).safetensors"
            try first.writeCheckpoint(to: path)
            let resumed = try RetrievalTrainer(resumingFrom: path)
            XCTAssertEqual(resumed.progress.step, 6)
            try resumed.train()
            assertSameRun(straight, resumed, model.rawValue)
            XCTAssertNotEqual(straight.store.values, first.store.values, "training changed nothing")
            // The test error is measured with the best parameters, identically.
            XCTAssertEqual(try straight.evaluateTest(), try resumed.evaluateTest())
        }
    }

    /// A finished run resumed with a larger step limit goes on from where it stopped.
    func testResumeWithMoreSteps() throws {
        var config = tinyConfig(.irnn)
        config.maxSteps = 8
        let short = try RetrievalTrainer(config: config)
        try short.train()
        XCTAssertTrue(short.isFinished)
        let path = folder + "/short.safetensors"
        try short.writeCheckpoint(to: path)
        let longer = try RetrievalTrainer(resumingFrom: path, maxSteps: 14)
        try longer.train()
        config.maxSteps = 14
        let straight = try RetrievalTrainer(config: config)
        try straight.train()
        XCTAssertEqual(longer.store.values, straight.store.values)
        XCTAssertEqual(longer.progress.history.map(\.step), [4, 8, 12, 14])
    }

    /// `--lr-schedule` parsing: constant by default, cosine over `maxSteps`, step decay; bad text throws.
    func testLearningRateScheduleParsing() throws {
        var c = tinyConfig(.fastWeights)
        XCTAssertEqual(try c.schedule(), .constant)
        c.learningRateSchedule = "constant"
        XCTAssertEqual(try c.schedule(), .constant)
        c.learningRateSchedule = "cosine:0.05"
        XCTAssertEqual(try c.schedule(), .cosine(warmupSteps: 0, totalSteps: 14, minFactor: 0.05))
        c.learningRateSchedule = "step:10:0.5"
        XCTAssertEqual(try c.schedule(), .step(every: 10, factor: 0.5))
        for bad in ["cosine", "cosine:2", "cosine:-1", "step:0:0.5", "step:10", "step:10:0", "linear", "constant:1", ""] {
            c.learningRateSchedule = bad
            XCTAssertThrowsError(try c.validate(), "'\(bad)' accepted")
        }
        // A configuration saved before the field existed decodes as constant.
        let old = RetrievalRunConfig(model: .lstm, hidden: 4)
        XCTAssertFalse(old.json().contains("learningRateSchedule"))
        let decoded = try JSONDecoder().decode(RetrievalRunConfig.self, from: Data(old.json().utf8))
        XCTAssertNil(decoded.learningRateSchedule)
    }

    /// The schedule reaches Adam: with the rate times 1e-20 after the first
    /// update, later updates leave the parameters where the first put them
    /// (up to Adam's tiny steps); a cosine run differs from a constant one and
    /// resumes bit-identically.
    func testLearningRateScheduleDrivesTheUpdates() throws {
        var c = tinyConfig(.fastWeights)
        c.maxSteps = 1
        let one = try RetrievalTrainer(config: c)
        try one.train()
        c.maxSteps = 14
        c.learningRateSchedule = "step:1:1e-20"
        let frozen = try RetrievalTrainer(config: c)
        try frozen.train()
        var maxDiff: Float = 0
        for (a, b) in zip(one.store.values, frozen.store.values) { maxDiff = max(maxDiff, abs(a - b)) }
        XCTAssertLessThan(maxDiff, 1e-12)
        let constant = try RetrievalTrainer(config: tinyConfig(.fastWeights))
        try constant.train()
        XCTAssertGreaterThan(zip(one.store.values, constant.store.values).map { abs($0 - $1) }.max()!, 1e-4)

        c.learningRateSchedule = "cosine:0.1"
        let straight = try RetrievalTrainer(config: c)
        try straight.train()
        XCTAssertNotEqual(straight.store.values, constant.store.values)
        let first = try RetrievalTrainer(config: c)
        try first.train(until: 6)
        let path = folder + "/cosine.safetensors"
        try first.writeCheckpoint(to: path)
        let resumed = try RetrievalTrainer(resumingFrom: path)
        XCTAssertEqual(resumed.config.learningRateSchedule, "cosine:0.1")
        try resumed.train()
        assertSameRun(straight, resumed, "cosine")
    }

    func testNonFiniteLossNamesTheStep() throws {
        let t = try RetrievalTrainer(config: tinyConfig(.fastWeights))
        try t.train(until: 2)
        let w = try t.store.requireSlice("encoder.W")
        t.store.values[w.offset + 3] = .nan
        XCTAssertThrowsError(try t.train()) { error in
            // The fast-weights op refuses the NaN weight before it spreads.
            XCTAssertEqual(error as? FWError, .nonFinite("step 3: W: non-finite value nan at index [0, 3]"))
        }
    }

    /// A NaN in an embedding row no batch uses leaves the loss finite; the
    /// check after the update finds it and names the tensor.
    func testNonFiniteParameterNamesTheTensor() throws {
        var c = tinyConfig(.irnn)
        c.pairs = 1
        c.trainExamples = 4
        c.batchSize = 4
        let t = try RetrievalTrainer(config: c)
        let used = Set(t.data.train.tokens)
        let unused = (0..<Int32(AssociativeRetrieval.vocabularySize)).first { !used.contains($0) }!
        let table = try t.store.requireSlice("embedding.weight")
        t.store.values[table.offset + Int(unused) * c.embedding] = .infinity
        XCTAssertThrowsError(try t.train()) { error in
            XCTAssertEqual(error as? FWError, .nonFinite("step 1: parameter 'embedding.weight' contains NaN"))   // Inf - lr * 0 * Inf
        }
    }

    /// One key-value pair is easy: the IRNN reaches 0% validation error and
    /// the run stops after `patience` evaluations there, keeping the first
    /// parameters that reached it.
    func testEarlyStopAtZeroValidationError() throws {
        var c = tinyConfig(.irnn)
        c.pairs = 1
        c.hidden = 16
        c.embedding = 16
        c.learningRate = 1e-2
        c.maxSteps = 3000
        c.evalEvery = 20
        c.patience = 3
        let t = try RetrievalTrainer(config: c)
        try t.train()
        XCTAssertTrue(t.progress.stoppedEarly, "did not reach 0% in \(t.progress.step) steps: \(t.progress.history.last!)")
        XCTAssertLessThan(t.progress.step, 3000)
        print("early stop after \(t.progress.step) steps, history \(t.progress.history.map { Int($0.validationErrorPercent) })")
        let zeros = t.progress.history.suffix(3)
        XCTAssertTrue(zeros.allSatisfy { $0.validationErrorPercent == 0 })
        XCTAssertEqual(t.progress.bestStep, zeros.first!.step)
        XCTAssertEqual(t.progress.bestValidationErrorPercent, 0)
    }

    func testCheckpointErrorsNameTheFile() throws {
        // A checkpoint of another run's configuration (hidden 7 vs the file's tensors of 6).
        let t = try RetrievalTrainer(config: tinyConfig(.irnn))
        let path = folder + "/run.safetensors"
        try t.writeCheckpoint(to: path)
        var contents = try SafeTensors.read(path)
        var wrong = RetrievalCheckpointConfig.decodeForTest(contents.metadata["config"]!)
        wrong.run.hidden = 7
        contents.metadata["config"] = wrong.json()
        let bad = folder + "/bad.safetensors"
        try rewrite(contents, to: bad)
        XCTAssertThrowsError(try RetrievalTrainer(resumingFrom: bad)) { error in
            guard case let FWError.file(p, reason)? = error as? FWError else { return XCTFail("\(error)") }
            XCTAssertEqual(p, bad)
            XCTAssertTrue(reason.contains("encoder.W"), reason)
        }
        // Not JSON in the config.
        contents.metadata["config"] = "{not json"
        try rewrite(contents, to: bad)
        XCTAssertThrowsError(try RetrievalTrainer(resumingFrom: bad)) { error in
            guard case let FWError.file(p, reason)? = error as? FWError else { return XCTFail("\(error)") }
            XCTAssertEqual(p, bad)
            XCTAssertTrue(reason.contains("config"), reason)
        }
    }

    func rewrite(_ c: SafeTensors.Contents, to path: String) throws {
        let entries = c.names.map { SafeTensors.Entry(name: $0, tensor: c.tensors[$0]!) }
        try SafeTensors.write(entries, metadata: c.metadata, to: path)
    }
}

extension RetrievalCheckpointConfig {
    static func decodeForTest(_ text: String) -> RetrievalCheckpointConfig {
        try! JSONDecoder().decode(RetrievalCheckpointConfig.self, from: Data(text.utf8))
    }
}
