// Streaming generation, per mixer: the logits of byte-by-byte
// LanguageModelStream.feed equal CharLanguageModel.logits of the whole
// sequence; for the carrying mixers also over a prompt of three training
// segments (logits run segment by segment with the state carried), and a
// stream continued from a state computed by `logits`. Plus reset and value
// semantics. The DeltaNet mixers also carry their conv windows.
import XCTest
import FWTestSupport

final class LanguageModelStreamTests: XCTestCase {
    private func makeModel(_ mixer: LanguageModelMixer, positionalEncoding: Bool, tied: Bool = true,
                           normalization: FeatureNormalization? = nil, phi: FeatureMap? = nil,
                           seed: UInt64) throws -> (CharLanguageModel, ParameterStore) {
        var rng = SeededRNG(seed: seed)
        var store = ParameterStore()
        let config = LanguageModelConfig(mixer: mixer, layers: 2, modelSize: 16, heads: 2, feedForwardSize: 24,
                                         dropout: 0.1, tiedEmbeddings: tied, favorFeatures: 5, dpfpOrder: 2,
                                         positionalEncoding: positionalEncoding, normalization: normalization, phi: phi)
        let model = try CharLanguageModel(config: config, store: &store, rng: &rng)
        for s in store.slices where s.name.hasSuffix(".bias") || s.name.hasSuffix("qkv.weight") || s.name.hasSuffix("mix.proj.weight") {
            try store.setTensor(s.name, rng.normalTensor(s.shape, std: s.name.hasSuffix(".bias") ? 0.2 : 0.5))
        }
        return (model, store)
    }

    private func bytes(_ n: Int, seed: UInt64) -> [Int32] {
        var rng = SeededRNG(seed: seed)
        return (0..<n).map { _ in Int32(rng.next() % 256) }
    }

    /// `max|a - b| <= 1e-5 * max(1, max|b|)`, the logits' scale.
    private func assertLogitsClose(_ a: [Float], _ b: [Float], _ label: String,
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, label, file: file, line: line)
        let scale = max(1, b.map(abs).max() ?? 0)
        let err = maxAbsDifference(a, b.asDouble)
        XCTAssertLessThanOrEqual(err, 1e-5 * Double(scale), "\(label): max|stream - batch| = \(err), scale \(scale)",
                                 file: file, line: line)
    }

    /// Feeds `tokens` one by one; returns all logits `[n, 256]` flat.
    private func feedAll(_ stream: inout LanguageModelStream, _ tokens: [Int32]) throws -> [Float] {
        var out: [Float] = []
        for t in tokens { out += try stream.feed(UInt8(t)) }
        return out
    }

    private func checkStream(_ mixer: LanguageModelMixer, positionalEncoding: Bool,
                             normalization: FeatureNormalization? = nil, phi: FeatureMap? = nil, seed: UInt64) throws {
        let (model, store) = try makeModel(mixer, positionalEncoding: positionalEncoding, tied: seed % 2 == 0,
                                           normalization: normalization, phi: phi, seed: seed)
        let segment = 20                   // 60 bytes: the one pass crosses chunks of 32
        let tokens = bytes(3 * segment, seed: seed + 100)
        var stream = try LanguageModelStream(model: model, store: store, capacity: 4)    // the softmax cache grows
        let streamed = try feedAll(&stream, tokens)
        XCTAssertEqual(stream.position, tokens.count)

        // One pass over the whole prompt.
        let whole = try model.logits(tokens: tokens, batchSize: 1, state: nil, store: store)
        XCTAssertEqual(whole.logits.shape, [1, tokens.count, 256])
        assertLogitsClose(streamed, whole.logits.storage, "\(mixer) stream vs one pass")
        var worst = maxAbsDifference(streamed, whole.logits.storage.asDouble)

        if model.carriesState {
            // Three training-length segments with the state carried.
            var state: LanguageModelState? = nil
            var pieces: [Float] = []
            for s in 0..<3 {
                let r = try model.logits(tokens: Array(tokens[(s * segment)..<((s + 1) * segment)]), batchSize: 1,
                                         state: state, store: store)
                pieces += r.logits.storage
                state = r.state
            }
            assertLogitsClose(streamed, pieces, "\(mixer) stream vs 3 carried segments")
            worst = max(worst, maxAbsDifference(streamed, pieces.asDouble))
            assertSpecClose(stream.state.fastWeights.flatMap(\.storage), state!.fastWeights.flatMap(\.storage),
                            "\(mixer) stream state vs carried state", tolerance: 1e-5)
            XCTAssertEqual(stream.state.convStates.count, mixer.isDeltaNet ? 2 : 0)
            assertSpecClose(stream.state.convStates.flatMap(\.storage), state!.convStates.flatMap(\.storage),
                            "\(mixer) stream conv windows vs carried ones", tolerance: 1e-5)
            XCTAssertEqual(stream.state.position, state!.position)

            // Continue a stream from the state `logits` left after two segments.
            let prompt = try model.logits(tokens: Array(tokens[0..<(2 * segment)]), batchSize: 1, state: nil, store: store)
            var continued = try LanguageModelStream(model: model, store: store, state: prompt.state)
            XCTAssertEqual(continued.position, 2 * segment)
            let rest = try feedAll(&continued, Array(tokens[(2 * segment)...]))
            assertLogitsClose(rest, Array(streamed[(2 * segment * 256)...]), "\(mixer) stream continued from a state")
        }
        print("  \(mixer)\(positionalEncoding ? " +PE" : ""): \(tokens.count) bytes, max|stream - batch| = \(worst)")
    }

    func testSoftmax() throws { try checkStream(.softmax, positionalEncoding: true, seed: 11) }
    func testLinear() throws { try checkStream(.linear, positionalEncoding: false, seed: 12) }
    func testDelta() throws { try checkStream(.delta, positionalEncoding: true, seed: 13) }
    func testDeltaWithL2() throws { try checkStream(.delta, positionalEncoding: false, normalization: .l2, seed: 33) }
    func testDeltaWithIdentityAndL2() throws {
        try checkStream(.delta, positionalEncoding: false, normalization: .l2, phi: .identity, seed: 34)
    }
    func testFavorSumWithPhiOverride() throws { try checkStream(.favorSum, positionalEncoding: false, phi: .favor(features: 9), seed: 35) }
    func testDPFPSum() throws { try checkStream(.dpfpSum, positionalEncoding: false, seed: 14) }
    func testDPFPDelta() throws { try checkStream(.dpfpDelta, positionalEncoding: false, seed: 15) }
    func testFavorSum() throws { try checkStream(.favorSum, positionalEncoding: true, seed: 16) }
    func testFavorDelta() throws { try checkStream(.favorDelta, positionalEncoding: false, seed: 17) }
    func testDeltaNet() throws { try checkStream(.deltaNet, positionalEncoding: true, seed: 18) }
    func testGatedDeltaNet() throws { try checkStream(.gatedDeltaNet, positionalEncoding: false, seed: 19) }

    func testResetAndValueSemantics() throws {
        for mixer in [LanguageModelMixer.softmax, .delta, .favorSum, .gatedDeltaNet] {
            let (model, store) = try makeModel(mixer, positionalEncoding: true, seed: 21)
            let tokens = bytes(12, seed: 22)
            var stream = try LanguageModelStream(model: model, store: store)
            let first = try feedAll(&stream, Array(tokens[0..<6]))
            // A copy continues on its own; the original is unaffected.
            var copy = stream
            let copyRest = try feedAll(&copy, Array(tokens[6...]))
            XCTAssertEqual(stream.position, 6)
            XCTAssertEqual(copy.position, 12)
            let rest = try feedAll(&stream, Array(tokens[6...]))
            XCTAssertEqual(rest, copyRest, "\(mixer): a copy and the original agree exactly")
            // After reset the stream starts again from the empty state.
            stream.reset()
            XCTAssertEqual(stream.position, 0)
            XCTAssertEqual(try feedAll(&stream, Array(tokens[0..<6])), first, "\(mixer) after reset")
        }
    }

    func testStreamErrors() throws {
        let (model, store) = try makeModel(.softmax, positionalEncoding: false, seed: 31)
        XCTAssertThrowsError(try LanguageModelStream(model: model, store: ParameterStore())) {
            XCTAssertEqual("\($0)", "LanguageModelStream: the store holds 0 parameters, not the model's \(model.config.parameterCount)")
        }
        let (delta, deltaStore) = try makeModel(.delta, positionalEncoding: false, seed: 32)
        XCTAssertThrowsError(try LanguageModelStream(model: model, store: store,
                                                     state: try delta.emptyState(batchSize: 1))) {
            XCTAssertTrue("\($0)".contains("softmax mixer has no state"), "\($0)")
        }
        XCTAssertThrowsError(try LanguageModelStream(model: delta, store: deltaStore,
                                                     state: try delta.emptyState(batchSize: 2))) {
            XCTAssertEqual("\($0)", "CharLanguageModel: the state is for batch size 2, the tokens for 1")
        }
    }
}
