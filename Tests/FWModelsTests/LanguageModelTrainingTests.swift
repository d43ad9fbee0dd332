import XCTest
import Foundation
import FWTestSupport

/// Language-model training on a small generated corpus: the window sampler,
/// bits per character over a whole text, carried state in training, and a
/// resume that is bit-identical to an uninterrupted run.
final class LanguageModelTrainingTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "lm-training-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func makeCorpus() throws -> String {
        let folder = dir + "/data"
        try GeneratedCorpus.write(to: folder)
        return folder
    }

    func tinyConfig(_ mixer: LanguageModelMixer, data: String, mode: LanguageModelRunConfig.ContextMode = .truncated) -> LanguageModelRunConfig {
        var m = LanguageModelConfig(mixer: mixer)
        m.layers = 1; m.modelSize = 16; m.heads = 2; m.feedForwardSize = 32; m.dropout = 0.1; m.favorFeatures = 4
        var c = LanguageModelRunConfig(model: m, data: data)
        c.context = 12; c.batchSize = 3; c.maxSteps = 8; c.evalEvery = 4; c.evalBytes = 200; c.warmupSteps = 2
        c.mode = mode
        return c
    }

    func testTruncatedWindowsAreDeterministicAndInRange() throws {
        let text = GeneratedCorpus.text(20, seed: 1)
        var a = try ByteWindowSampler(mode: .truncated, textLength: text.count, batchSize: 4, context: 8, seed: 3)
        var b = try ByteWindowSampler(mode: .truncated, textLength: text.count, batchSize: 4, context: 8, seed: 3)
        for _ in 0..<50 {
            let x = a.next(text), y = b.next(text)
            XCTAssertEqual(x.tokens, y.tokens)
            XCTAssertFalse(x.wrapped)
            // targets are the inputs shifted by one byte.
            for r in 0..<4 { XCTAssertEqual(Array(x.tokens[(r * 8 + 1)..<(r * 8 + 8)]), Array(x.targets[(r * 8)..<(r * 8 + 7)])) }
        }
        // A sampler restored from the state goes on identically.
        var c = try ByteWindowSampler(mode: .truncated, textLength: text.count, batchSize: 4, context: 8, restoring: a.state)
        XCTAssertEqual(c.next(text).tokens, a.next(text).tokens)
        XCTAssertThrowsError(try ByteWindowSampler(mode: .truncated, textLength: 8, batchSize: 1, context: 8, seed: 1))
    }

    func testCarriedStreamsAreContiguousAndWrap() throws {
        let text = Array(0..<100).map { UInt8($0) }
        var s = try ByteWindowSampler(mode: .carry, textLength: 100, batchSize: 2, context: 10, seed: 1)
        // Two streams of 50 bytes: row 1 starts at 50; each segment continues the last.
        var batches: [ByteWindowSampler.Batch] = []
        for _ in 0..<5 { batches.append(s.next(text)) }
        XCTAssertEqual(Array(batches[0].tokens[0..<3]), [0, 1, 2])
        XCTAssertEqual(Array(batches[0].tokens[10..<13]), [50, 51, 52])
        XCTAssertEqual(batches[1].tokens[0], 10)
        XCTAssertEqual(batches[3].tokens[19], 89)
        // 50 bytes hold 4 whole segments of 10 (+1 target): the fifth starts over.
        XCTAssertFalse(batches[3].wrapped)
        XCTAssertTrue(batches[4].wrapped)
        XCTAssertEqual(batches[4].tokens[0], 0)
        XCTAssertEqual(s.state.passes, 1)
    }

    func testStreamsReadTheCarriedSegmentsWithoutCarrying() throws {
        let text = Array(0..<100).map { UInt8($0) }
        var carry = try ByteWindowSampler(mode: .carry, textLength: 100, batchSize: 2, context: 10, seed: 1)
        var streams = try ByteWindowSampler(mode: .streams, textLength: 100, batchSize: 2, context: 10, seed: 7)
        for _ in 0..<6 {
            let (a, b) = (carry.next(text), streams.next(text))
            XCTAssertEqual(a.tokens, b.tokens)
            XCTAssertEqual(a.targets, b.targets)
            XCTAssertEqual(a.wrapped, b.wrapped)
        }
        XCTAssertFalse(LanguageModelRunConfig.ContextMode.streams.carriesState)
        XCTAssertTrue(LanguageModelRunConfig.ContextMode.streams.readsStreams)
        XCTAssertFalse(LanguageModelRunConfig.ContextMode.truncated.readsStreams)

        // A streams run sees the carry run's batches but starts every segment empty:
        // no carried state, and (after the first step) other losses than carrying.
        let data = try makeCorpus()
        var c = tinyConfig(.delta, data: data, mode: .streams)
        c.maxSteps = 4
        let s = try LanguageModelTrainer(config: c)
        try s.train()
        XCTAssertNil(s.carried)
        c.mode = .carry
        let k = try LanguageModelTrainer(config: c)
        try k.train()
        XCTAssertNotNil(k.carried)
        XCTAssertNotEqual(s.store.values, k.store.values)
        // Its checkpoint resumes bit-exactly as the other modes do.
        c.mode = .streams
        let interrupted = try LanguageModelTrainer(config: c)
        try interrupted.train(until: 2)
        let path = dir + "/streams.safetensors"
        try interrupted.writeCheckpoint(to: path)
        let resumed = try LanguageModelTrainer(resumingFrom: path)
        try resumed.train()
        XCTAssertEqual(resumed.store.values, s.store.values)
    }

    func testBitsPerCharacterScoreEveryByteButTheFirst() throws {
        var store = ParameterStore()
        var rng = SeededRNG(seed: 2)
        let config = tinyConfig(.delta, data: "unused").model
        let model = try CharLanguageModel(config: config, store: &store, rng: &rng)
        let text = GeneratedCorpus.text(8, seed: 4)[...]
        let truncated = try LanguageModelEvaluation.evaluate(model, store: store, text: text, context: 10, mode: .truncated, batch: 3)
        XCTAssertEqual(truncated.count, text.count - 1)
        let carried = try LanguageModelEvaluation.evaluate(model, store: store, text: text, context: 10, mode: .carry)
        XCTAssertEqual(carried.count, text.count - 1)
        // Carried in segments of 10 is one pass over the whole text.
        let whole = try LanguageModelEvaluation.evaluate(model, store: store, text: text, context: text.count, mode: .carry)
        XCTAssertEqual(carried.lossSum, whole.lossSum, accuracy: 1e-3 * whole.lossSum)
        XCTAssertEqual(truncated.bpc, truncated.lossSum / Double(truncated.count) / log(2), accuracy: 1e-12)
        // Untrained, every byte is near uniform: about 8 bits.
        XCTAssertEqual(truncated.bpc, 8, accuracy: 1.5)
        XCTAssertThrowsError(try LanguageModelEvaluation.evaluate(model, store: store, text: text.prefix(1), context: 10, mode: .truncated))
    }

    func testTrainingLowersTheLossAndResumesBitExactly() throws {
        let data = try makeCorpus()
        for (mixer, mode) in [(LanguageModelMixer.delta, LanguageModelRunConfig.ContextMode.truncated), (.linear, .carry), (.softmax, .truncated),
                              (.deltaNet, .carry), (.gatedDeltaNet, .carry)] {
            var c = tinyConfig(mixer, data: data, mode: mode)
            c.maxSteps = 12
            let straight = try LanguageModelTrainer(config: c)
            try straight.train()
            let first = straight.progress.history.first!.validationBPC, last = straight.progress.history.last!.validationBPC
            XCTAssertLessThan(last, first, "\(mixer) \(mode): validation bpc \(first) -> \(last)")

            let interrupted = try LanguageModelTrainer(config: c)
            try interrupted.train(until: 5)
            let path = dir + "/\(mixer)-\(mode).safetensors"
            try interrupted.writeCheckpoint(to: path)
            let resumed = try LanguageModelTrainer(resumingFrom: path)
            if mode == .carry { XCTAssertEqual(resumed.carried, interrupted.carried, "carried fast weights restored") }
            try resumed.train()
            XCTAssertEqual(resumed.store.values, straight.store.values, "\(mixer) \(mode): resumed parameters differ")
            XCTAssertEqual(resumed.progress.history.map(\.validationBPC), straight.progress.history.map(\.validationBPC))
            XCTAssertEqual(resumed.bestValues, straight.bestValues)
        }
    }

    func testRunConfigValidation() throws {
        let data = try makeCorpus()
        var c = tinyConfig(.softmax, data: data, mode: .carry)
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("softmax attention has no state to carry"), "\($0)") }
        c.mode = .truncated
        c.context = 0
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--context must be"), "\($0)") }
        c.context = 1 << 40
        XCTAssertThrowsError(try c.validate())
        c = tinyConfig(.delta, data: data)
        c.batchSize = 1_000_000_000
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("would need"), "\($0)") }
        // FAVOR+ redraws Omega every step: its carried state would be read with other features.
        c = tinyConfig(.favorDelta, data: data, mode: .carry)
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("FAVOR+ redraws Omega"), "\($0)") }
        c.evalBytes = 1
        c.mode = .truncated
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--eval-bytes must be 2..."), "\($0)") }
        // A config round-trips through its file.
        c = tinyConfig(.dpfpDelta, data: data, mode: .carry)
        let bytes = RunConfigFile.encode(c)
        XCTAssertEqual(try RunConfigFile.decode(LanguageModelRunConfig.self, from: bytes, name: "lm.json"), c)
    }
}
