// Carrying the state: for every fast-weight mixer, two segments with the
// state carried equal one pass over their concatenation (loss sums, logits,
// final state (with the DeltaNet mixers' conv windows), position), in
// evaluation and through lossAndGradients; the
// CarriedFastWeightLayer's own backward chains dL/dS (with z) across a cut;
// and the errors for a state that does not fit.
import XCTest
import FWTestSupport

final class LanguageModelStateTests: XCTestCase {
    private func makeModel(_ mixer: LanguageModelMixer, seed: UInt64,
                           positionalEncoding: Bool = true) throws -> (CharLanguageModel, ParameterStore) {
        var rng = SeededRNG(seed: seed)
        var store = ParameterStore()
        let config = LanguageModelConfig(mixer: mixer, layers: 2, modelSize: 8, heads: 2, feedForwardSize: 12,
                                         dropout: 0.2, favorFeatures: 4, dpfpOrder: 2,
                                         positionalEncoding: positionalEncoding)
        let model = try CharLanguageModel(config: config, store: &store, rng: &rng)
        for s in store.slices where s.name.hasSuffix("qkv.weight") || s.name.hasSuffix("mix.proj.weight") {
            try store.setTensor(s.name, rng.normalTensor(s.shape, std: 0.6))
        }
        return (model, store)
    }

    private func bytes(_ n: Int, seed: UInt64) -> [Int32] {
        var rng = SeededRNG(seed: seed)
        return (0..<n).map { _ in Int32(rng.next() % 256) }
    }

    /// Columns [from, to) of a row-major [B, T] array (T = count / B).
    private func steps<E>(_ a: [E], B: Int, _ from: Int, _ to: Int, width: Int = 1) -> [E] {
        let T = a.count / B / width
        var out: [E] = []
        for b in 0..<B { out += a[((b * T + from) * width)..<((b * T + to) * width)] }
        return out
    }

    /// Two row-major [B, ta, width] and [B, tb, width] arrays one after the other along t.
    private func joined(_ a: [Float], _ b: [Float], B: Int, width: Int) -> [Float] {
        let (ra, rb) = (a.count / B, b.count / B)
        var out: [Float] = []
        for i in 0..<B {
            out += a[(i * ra)..<((i + 1) * ra)]
            out += b[(i * rb)..<((i + 1) * rb)]
        }
        return out
    }

    func testTwoCarriedSegmentsEqualOnePass() throws {
        let (B, T, cut) = (2, 11, 4)
        for (i, mixer) in LanguageModelMixer.allCases.filter(\.carriesState).enumerated() {
            let (model, store) = try makeModel(mixer, seed: 40 + UInt64(i))
            let tokens = bytes(B * T, seed: 50 + UInt64(i)), targets = bytes(B * T, seed: 60 + UInt64(i))
            let one = try model.evaluate(tokens: tokens, targets: targets, batchSize: B, state: nil, store: store)
            let first = try model.evaluate(tokens: steps(tokens, B: B, 0, cut), targets: steps(targets, B: B, 0, cut),
                                           batchSize: B, state: nil, store: store)
            let second = try model.evaluate(tokens: steps(tokens, B: B, cut, T), targets: steps(targets, B: B, cut, T),
                                            batchSize: B, state: first.state, store: store)
            XCTAssertEqual(one.count, B * T)
            XCTAssertEqual(first.count + second.count, one.count)
            XCTAssertEqual(first.lossSum + second.lossSum, one.lossSum, accuracy: 1e-5 * one.lossSum, "\(mixer) loss sum")
            XCTAssertEqual(second.state.position, T)
            XCTAssertEqual(one.state.position, T)
            XCTAssertEqual(one.state.keySums.count, mixer.usesDenominator ? 2 : 0)
            assertSpecClose(second.state.fastWeights.flatMap(\.storage), one.state.fastWeights.flatMap(\.storage),
                            "\(mixer) S after two segments", tolerance: 1e-5)
            assertSpecClose(second.state.keySums.flatMap(\.storage), one.state.keySums.flatMap(\.storage),
                            "\(mixer) z after two segments", tolerance: 1e-5)
            XCTAssertEqual(one.state.convStates.count, mixer.isDeltaNet ? 2 : 0)
            assertSpecClose(second.state.convStates.flatMap(\.storage), one.state.convStates.flatMap(\.storage),
                            "\(mixer) conv windows after two segments", tolerance: 1e-6)

            // The logits, and the training entry point in evaluation mode (mean * count = sum).
            let whole = try model.logits(tokens: tokens, batchSize: B, state: nil, store: store).logits
            let l1 = try model.logits(tokens: steps(tokens, B: B, 0, cut), batchSize: B, state: nil, store: store)
            let l2 = try model.logits(tokens: steps(tokens, B: B, cut, T), batchSize: B, state: l1.state, store: store)
            let joinedLogits = joined(l1.logits.storage, l2.logits.storage, B: B, width: 256)
            assertSpecClose(joinedLogits, whole.storage, "\(mixer) logits in two segments", tolerance: 1e-5)
            var gradStore = store
            var rng = SeededRNG(seed: 1)
            let t1 = try model.lossAndGradients(tokens: steps(tokens, B: B, 0, cut), targets: steps(targets, B: B, 0, cut),
                                                batchSize: B, state: nil, store: &gradStore, training: false, rng: &rng)
            let t2 = try model.lossAndGradients(tokens: steps(tokens, B: B, cut, T), targets: steps(targets, B: B, cut, T),
                                                batchSize: B, state: t1.state, store: &gradStore, training: false, rng: &rng)
            XCTAssertEqual(rng, SeededRNG(seed: 1), "\(mixer): evaluation mode draws nothing")
            XCTAssertEqual(Double(t1.loss) * Double(t1.count) + Double(t2.loss) * Double(t2.count), one.lossSum,
                           accuracy: 1e-5 * one.lossSum, "\(mixer) lossAndGradients in segments")
            XCTAssertEqual(t2.state, second.state, "\(mixer): the same state from both entry points")
            print("  \(mixer): one pass \(one.lossSum) nats, two segments \(first.lossSum + second.lossSum), max|logits diff| = \(maxAbsDifference(joinedLogits, whole.storage.asDouble))")
        }
    }

    /// The layer-level backward through a cut: dL/d[S; z] of the second
    /// segment, passed to the first, gives the one-pass dx and parameter gradients.
    func testCarriedLayerBackwardChainsTheStateIncludingZ() throws {
        let (B, T, D, H, cut) = (2, 7, 6, 2, 3)
        for (rule, map, norm, den) in [(FastWeightRule.sum, FeatureMap.elu1, FeatureNormalization.none, true),
                                       (.sum, .dpfp(order: 1), .none, true),
                                       (.delta, .elu1, .sum, false)] {
            var rng = SeededRNG(seed: 70)
            var whole = ParameterStore()
            let layer = try CarriedFastWeightLayer(modelSize: D, heads: H, rule: rule, featureMap: map, normalization: norm,
                                                   denominator: den, outputScale: 0.7, name: "fw", store: &whole, rng: &rng)
            var parts = whole
            let x = rng.normalTensor([B, T, D]), gy = rng.normalTensor([B, T, D])
            let gS = rng.normalTensor(layer.stateShape(batch: B), std: 0.1)
            func cutSteps(_ t: Tensor, _ a: Int, _ b: Int) -> Tensor {
                Tensor(shape: [B, b - a, D], storage: steps(t.storage, B: B, a, b, width: D))
            }
            let one = try layer.forward(x, store: whole, omega: nil, initialState: nil)
            let first = try layer.forward(cutSteps(x, 0, cut), store: parts, omega: nil, initialState: nil)
            let second = try layer.forward(cutSteps(x, cut, T), store: parts, omega: nil, initialState: first.state)
            let joinedY = joined(first.y.storage, second.y.storage, B: B, width: D)
            assertSpecClose(joinedY, one.y.storage, "\(rule) \(map) y in segments")
            assertSpecClose(second.state.storage, one.state.storage, "\(rule) \(map) [S; z] in segments")
            let dOne = try layer.backward(gy, dstate: gS, cache: one.cache!, store: &whole)
            let dSecond = try layer.backward(cutSteps(gy, cut, T), dstate: gS, cache: second.cache!, store: &parts)
            let dFirst = try layer.backward(cutSteps(gy, 0, cut), dstate: dSecond.dinitialState, cache: first.cache!, store: &parts)
            let joinedDx = joined(dFirst.dx.storage, dSecond.dx.storage, B: B, width: D)
            assertSpecClose(joinedDx, dOne.dx.storage, "\(rule) \(map) dx in segments")
            assertSpecClose(dFirst.dinitialState.storage, dOne.dinitialState.storage, "\(rule) \(map) d[S_0; z_0]")
            for name in ["fw.qkv.weight", "fw.out.weight"] {
                assertSpecClose(try parts.gradientTensor(name).storage, try whole.gradientTensor(name).storage,
                                "\(rule) \(map) d\(name) in segments")
            }
        }
    }

    /// The layer's z row against the op's own denominator (z_0 = 0, output
    /// scale 1): the same function up to the two epsilons (1e-5 vs 1e-6).
    func testCarriedDenominatorMatchesTheOpsDenominator() throws {
        let (B, T, D, H) = (2, 9, 6, 2)
        var rng = SeededRNG(seed: 80)
        var store = ParameterStore()
        let layer = try CarriedFastWeightLayer(modelSize: D, heads: H, rule: .sum, featureMap: .elu1, normalization: .none,
                                               denominator: true, outputScale: 1, name: "fw", store: &store, rng: &rng)
        var other = ParameterStore()
        let reference = try FastWeightLayer(FastWeightLayerConfig(modelSize: D, heads: H, headSize: D / H, rule: .sum,
                                                                  featureMap: .elu1, denominator: true),
                                            name: "fw", store: &other, rng: &rng)
        other.setValues(store.values)
        let x = rng.normalTensor([B, T, D])
        let a = try layer.forward(x, store: store, omega: nil, initialState: nil).y
        let b = try reference.forward(x, store: other, omega: nil).y
        assertSpecClose(a.storage, b.storage, "carried denominator vs the op's", tolerance: 1e-5)
    }

    func testStateErrorsAreOneLineAndLeaveGradientsAlone() throws {
        var (model, store) = try makeModel(.linear, seed: 90)
        let (softmax, softmaxStore) = try makeModel(.softmax, seed: 91)
        let tokens = bytes(6, seed: 92)
        var rng = SeededRNG(seed: 93)
        let good = try model.logits(tokens: tokens, batchSize: 2, state: nil, store: store).state
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(message { _ = try softmax.logits(tokens: tokens, batchSize: 2, state: good, store: softmaxStore) },
                       "CharLanguageModel: the softmax mixer carries no state across segments; pass state nil")
        XCTAssertEqual(message { _ = try model.logits(tokens: tokens, batchSize: 3, state: good, store: store) },
                       "CharLanguageModel: the state is for batch size 2, the tokens for 3")
        var missing = good
        missing.keySums.removeLast()
        XCTAssertEqual(message { _ = try model.logits(tokens: tokens, batchSize: 2, state: missing, store: store) },
                       "CharLanguageModel: the state holds 2 fast weights and 1 key sums; the model needs 2 and 2")
        var wrong = good
        wrong.fastWeights[1] = Tensor(shape: [2, 2, 4, 3])
        XCTAssertEqual(message { _ = try model.logits(tokens: tokens, batchSize: 2, state: wrong, store: store) },
                       "state.fastWeights[1]: expected shape [2, 2, 4, 4], got [2, 2, 4, 3]")
        XCTAssertEqual(message { _ = try model.logits(tokens: [1, 2, 3], batchSize: 2, state: nil, store: store) },
                       "tokens: expected shape [2, T] with T >= 1, got [3]")
        XCTAssertEqual(message { _ = try model.logits(tokens: [1, 256], batchSize: 1, state: nil, store: store) },
                       "CharLanguageModel: token 256 at position 1 is not a byte (0...255)")
        XCTAssertEqual(message { _ = try model.logits(tokens: [1, 2], batchSize: 0, state: nil, store: store) },
                       "CharLanguageModel: batchSize must be at least 1, got 0")
        XCTAssertEqual(message { _ = try model.evaluate(tokens: tokens, targets: [1], batchSize: 2, state: nil, store: store) },
                       "targets: expected shape [2, 3], got [1]")
        XCTAssertEqual(message {
            _ = try model.lossAndGradients(tokens: tokens, targets: [0, 1, 2, 3, 4, -1], batchSize: 2, state: nil,
                                           store: &store, training: true, rng: &rng)
        }, "CharLanguageModel: target -1 at position 5 is not a byte (0...255)")
        XCTAssertEqual(message { _ = try LanguageModelState.empty(config: model.config, batchSize: 0) },
                       "LanguageModelState: batchSize must be at least 1, got 0")
        XCTAssertTrue(store.gradients.allSatisfy { $0 == 0 })
        // The empty state is the same as nil.
        let fromEmpty = try model.logits(tokens: tokens, batchSize: 2, state: try model.emptyState(batchSize: 2), store: store)
        XCTAssertEqual(fromEmpty.logits, try model.logits(tokens: tokens, batchSize: 2, state: nil, store: store).logits)
        XCTAssertEqual(fromEmpty.state, good)
        XCTAssertEqual(good.byteCount, 2 * (2 * 2 * 4 * 4 + 2 * 2 * 4) * 4)
        XCTAssertEqual(message {
            var extra = good
            extra.convStates = [Tensor(shape: [2, 3, 24])]
            _ = try model.logits(tokens: tokens, batchSize: 2, state: extra, store: store)
        }, "CharLanguageModel: the state holds 1 conv states; the linear mixer has none")

        // The DeltaNet mixers: the conv windows must be there and of their shape (D 8, H 2: C = 2*8 + 2*8 = 32 gated).
        let (gated, gatedStore) = try makeModel(.gatedDeltaNet, seed: 94)
        let carried = try gated.logits(tokens: tokens, batchSize: 2, state: nil, store: gatedStore).state
        XCTAssertEqual(carried.fastWeights.map(\.shape), [[2, 2, 8, 4], [2, 2, 8, 4]])
        XCTAssertEqual(carried.convStates.map(\.shape), [[2, 3, 32], [2, 3, 32]])
        XCTAssertEqual(carried.byteCount, 2 * (2 * 2 * 8 * 4 + 2 * 3 * 32) * 4)
        var noConv = carried
        noConv.convStates.removeLast()
        XCTAssertEqual(message { _ = try gated.logits(tokens: tokens, batchSize: 2, state: noConv, store: gatedStore) },
                       "CharLanguageModel: the state holds 1 conv states; the gated-deltanet model needs 2")
        var badConv = carried
        badConv.convStates[0] = Tensor(shape: [2, 3, 24])
        XCTAssertEqual(message { _ = try gated.logits(tokens: tokens, batchSize: 2, state: badConv, store: gatedStore) },
                       "state.convStates[0]: expected shape [2, 3, 32], got [2, 3, 24]")
        var badS = carried
        badS.fastWeights[1] = Tensor(shape: [2, 2, 4, 4])
        XCTAssertEqual(message { _ = try gated.logits(tokens: tokens, batchSize: 2, state: badS, store: gatedStore) },
                       "state.fastWeights[1]: expected shape [2, 2, 8, 4], got [2, 2, 4, 4]")
        XCTAssertEqual(message { _ = try gated.logits(tokens: tokens, batchSize: 2, state: good, store: gatedStore) },
                       "CharLanguageModel: the state holds 2 fast weights and 2 key sums; the model needs 2 and 0")
        XCTAssertTrue(gatedStore.gradients.allSatisfy { $0 == 0 })
    }

    /// A data-parallel rank's rows, and the whole state joined back from the ranks' rows.
    func testRowsAndJoiningRoundTrip() throws {
        var c = LanguageModelConfig(mixer: .linear)
        c.layers = 2; c.modelSize = 8; c.heads = 2; c.feedForwardSize = 16
        var s = try LanguageModelState.empty(config: c, batchSize: 6)
        var rng = SeededRNG(seed: 4)
        s.fastWeights = s.fastWeights.map { rng.normalTensor($0.shape) }
        s.keySums = s.keySums.map { rng.normalTensor($0.shape) }
        s.position = 12
        let shares = [s.rows(0..<2), s.rows(2..<4), s.rows(4..<6)]
        XCTAssertEqual(shares[1].batchSize, 2)
        XCTAssertEqual(shares[1].fastWeights[0][0, 1, 2, 3], s.fastWeights[0][2, 1, 2, 3])
        XCTAssertEqual(shares[2].keySums[1][1, 0, 3], s.keySums[1][5, 0, 3])
        let joined = LanguageModelState.joining(shares.flatMap(\.flattened), shares: 3, like: shares[0])
        XCTAssertEqual(joined, s)

        // With the DeltaNet mixers' conv windows.
        c.mixer = .gatedDeltaNet
        var g = try LanguageModelState.empty(config: c, batchSize: 4)
        g.fastWeights = g.fastWeights.map { rng.normalTensor($0.shape) }
        g.convStates = g.convStates.map { rng.normalTensor($0.shape) }
        let halves = [g.rows(0..<2), g.rows(2..<4)]
        XCTAssertEqual(halves[1].convStates[1][0, 2, 5], g.convStates[1][2, 2, 5])
        XCTAssertEqual(LanguageModelState.joining(halves.flatMap(\.flattened), shares: 2, like: halves[0]), g)
    }

    /// A carried DeltaNet state through the checkpoint's tensors and back, and a missing or misshapen part refused.
    func testStateFileRoundTripsTheConvWindows() throws {
        let (model, store) = try makeModel(.deltaNet, seed: 95)
        let state = try model.logits(tokens: bytes(10, seed: 96), batchSize: 2, state: nil, store: store).state
        var extra: [String: Tensor] = [:]
        for (name, t) in LanguageModelStateFile.tensors(state) { extra[name] = t }
        XCTAssertEqual(extra.keys.sorted(), ["state.conv_states.0", "state.conv_states.1", "state.fast_weights.0",
                                             "state.fast_weights.1", "state.position"])
        XCTAssertEqual(try LanguageModelStateFile.read(extra, model: model, batchSize: 2, path: "c"), state)
        var missing = extra
        missing["state.conv_states.1"] = nil
        XCTAssertThrowsError(try LanguageModelStateFile.read(missing, model: model, batchSize: 2, path: "c")) {
            XCTAssertTrue("\($0)".contains("state.conv_states.1 is missing or not of shape [2, 3, 24]"), "\($0)")
        }
    }
}
