// DeltaNetLayer (DeltaNet and Gated DeltaNet as FLA defines them): forward
// and final state against the Float64 reference (DeltaNetReference.layer:
// the plain recurrence S_t = a_t S_{t-1} (I - beta_t k_t k_t^T) + beta_t v_t k_t^T,
// o_t = S_t q_t), dx, every parameter gradient and dL/d(initial state) (all
// four parts) against central finite differences of that reference, with
// the loss <dy, y> + <dstate, final state>; chunked vs recurrent; a sequence
// in two segments with the carried fast weights and conv states vs one pass
// (forward and backward); the layer as a TransformerModel mixer; shape and
// configuration errors.
import XCTest
import FWTestSupport

final class DeltaNetLayerTests: XCTestCase {
    private let (B, T, D, H, dk, dv, K) = (2, 6, 4, 2, 3, 2, 3)

    private func config(gated: Bool, outputGate: Bool, negativeEigenvalues: Bool,
                        algorithm: FWPAlgorithm? = nil) -> DeltaNetLayerConfig {
        DeltaNetLayerConfig(modelSize: D, heads: H, headSize: dk, valueSize: dv, gated: gated, outputGate: outputGate,
                            negativeEigenvalues: negativeEigenvalues, convolutionSize: K, algorithm: algorithm)
    }

    /// Builds the layer and moves every parameter off its initial value (so
    /// that, e.g., the norm's weight and the decay's A_log are not special).
    private func makeLayer(_ c: DeltaNetLayerConfig, seed: UInt64) throws -> (DeltaNetLayer, ParameterStore, SeededRNG) {
        var rng = SeededRNG(seed: seed)
        var store = ParameterStore()
        let layer = try DeltaNetLayer(c, name: "dn", store: &store, rng: &rng)
        for s in store {
            let t = store.tensor(s)
            let moved: [Float]
            switch s.name {
            case "dn.o_norm.weight": moved = t.storage.map { $0 + 0.3 * rng.normal() }
            case "dn.A_log": moved = t.storage.map { _ in 0.5 * rng.normal() }
            case "dn.dt_bias": moved = t.storage.map { _ in rng.normal() }
            default: moved = t.storage.map { _ in 0.5 * rng.normal() }
            }
            try store.setTensor(s.name, Tensor(shape: s.shape, storage: moved))
        }
        return (layer, store, rng)
    }

    private func randomState(_ layer: DeltaNetLayer, _ rng: inout SeededRNG, std: Float = 1) -> DeltaNetLayer.State {
        let z = layer.zeroState(batch: B)
        return DeltaNetLayer.State(fastWeights: rng.normalTensor(z.fastWeights.shape, std: 0.5 * std),
                                   qConv: rng.normalTensor(z.qConv.shape, std: std),
                                   kConv: rng.normalTensor(z.kConv.shape, std: std),
                                   vConv: rng.normalTensor(z.vConv.shape, std: std))
    }

    private func flat(_ s: DeltaNetLayer.State) -> [Float] {
        s.fastWeights.storage + s.qConv.storage + s.kConv.storage + s.vConv.storage
    }

    private func flat(_ s: DeltaNetReference.State) -> [Double] { s.S + s.q + s.k + s.v }

    /// Forward vs the reference, then every gradient vs finite differences.
    private func checkLayer(_ c: DeltaNetLayerConfig, seed: UInt64, withState: Bool,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        var (layer, store, rng) = try makeLayer(c, seed: seed)
        var expectedNames = ["dn.proj.weight", "dn.q_conv.weight", "dn.k_conv.weight", "dn.v_conv.weight"]
        if c.gated { expectedNames += ["dn.A_log", "dn.dt_bias"] }
        expectedNames += ["dn.o_norm.weight", "dn.out.weight"]
        XCTAssertEqual(store.names, expectedNames, file: file, line: line)
        XCTAssertEqual(layer.proj.weight.shape, [c.projectionSize, D], file: file, line: line)
        XCTAssertEqual(c.projectionSize, H * (2 * dk + dv) + H + (c.gated ? H : 0) + (c.outputGate ? H * dv : 0))
        let x = rng.normalTensor([B, T, D]), dy = rng.normalTensor([B, T, D])
        let s0: DeltaNetLayer.State? = withState ? randomState(layer, &rng) : nil
        let dS: DeltaNetLayer.State? = withState ? randomState(layer, &rng) : nil
        let label = "gated=\(c.gated) gate=\(c.outputGate) neg=\(c.negativeEigenvalues) state=\(withState) \(c.algorithm.map { "\($0)" } ?? "auto")"

        let slices = store.slices
        let nParams = slices.count
        // inputs: x, the parameters (store order), then S_0 and the three conv states.
        func reference(_ a: [[Double]]) -> [Double] {
            let param = { (name: String) in a[1 + slices.firstIndex { $0.name == name }!] }
            let state = withState ? DeltaNetReference.State(S: a[nParams + 1], q: a[nParams + 2], k: a[nParams + 3], v: a[nParams + 4]) : nil
            let r = DeltaNetReference.layer(c, name: "dn", x: a[0], param: param, state: state, B: B, T: T)
            return r.y + (withState ? flat(r.state) : [])
        }
        var inputs = [x.storage.asDouble] + slices.map { store.tensor($0).storage.asDouble }
        if let s0 { inputs += [s0.fastWeights, s0.qConv, s0.kConv, s0.vConv].map { $0.storage.asDouble } }

        let (y, sT, cache) = try layer.forward(x, store: store, initialState: s0)
        let ref = reference(inputs)
        let yRef = Array(ref[0..<(B * T * D)])
        print("  \(label): max|y - ref| = \(maxAbsDifference(y.storage, yRef)) (max|ref| = \(yRef.map(abs).max()!))")
        assertSpecClose(y.storage, yRef, "\(label) y", file: file, line: line)
        if withState {
            assertSpecClose(flat(sT), Array(ref[(B * T * D)...]), "\(label) final state", file: file, line: line)
        } else {
            // Without an initial state the reference's final state is still defined: compare it too.
            let r = DeltaNetReference.layer(c, name: "dn", x: inputs[0], param: { n in inputs[1 + slices.firstIndex { $0.name == n }!] },
                                            state: nil, B: B, T: T)
            assertSpecClose(flat(sT), flat(r.state), "\(label) final state", file: file, line: line)
        }

        let (dx, d0) = try layer.backward(dy, dstate: dS, cache: cache, store: &store)
        var names = ["dx"] + slices.map { "d" + $0.name }
        var analytic = [dx.storage] + slices.map { store.gradientTensor($0).storage }
        if withState {
            names += ["dS0", "dqConv0", "dkConv0", "dvConv0"]
            analytic += [d0.fastWeights, d0.qConv, d0.kConv, d0.vConv].map(\.storage)
        }
        let dh = dy.storage.asDouble + (dS.map { flat($0).asDouble } ?? [])
        let errors = assertGradientsMatchFiniteDifferences(names: names, inputs: inputs, analytic: analytic, dh: dh,
                                                           label: label, reference: reference, file: file, line: line)
        print("  \(label): max|grad - fd| " + names.map { "\($0) \(String(format: "%.1e", errors[$0]!))" }.joined(separator: ", "))
    }

    func testDeltaNetAgainstReferenceAndFiniteDifferences() throws {
        let c = config(gated: false, outputGate: false, negativeEigenvalues: false)
        try checkLayer(c, seed: 301, withState: true)
        try checkLayer(c, seed: 302, withState: false)
    }

    func testDeltaNetNegativeEigenvaluesWithOutputGate() throws {
        try checkLayer(config(gated: false, outputGate: true, negativeEigenvalues: true), seed: 303, withState: true)
    }

    func testGatedDeltaNetAgainstReferenceAndFiniteDifferences() throws {
        let c = config(gated: true, outputGate: true, negativeEigenvalues: false)
        try checkLayer(c, seed: 304, withState: true)
        try checkLayer(c, seed: 305, withState: false)
        var chunked = c
        chunked.algorithm = .chunked(size: 4)
        try checkLayer(chunked, seed: 306, withState: true)
    }

    func testGatedDeltaNetNegativeEigenvaluesPlainNorm() throws {
        try checkLayer(config(gated: true, outputGate: false, negativeEigenvalues: true), seed: 307, withState: true)
    }

    /// Everything a forward + backward produces, flat, by name.
    private func run(_ layer: DeltaNetLayer, _ store: ParameterStore, x: Tensor, dy: Tensor,
                     s0: DeltaNetLayer.State?, dS: DeltaNetLayer.State?) throws -> [String: [Float]] {
        var store = store
        store.zeroGradients()
        let (y, sT, cache) = try layer.forward(x, store: store, initialState: s0)
        let (dx, d0) = try layer.backward(dy, dstate: dS, cache: cache, store: &store)
        var out = ["y": y.storage, "final state": flat(sT), "dx": dx.storage, "dinitial state": flat(d0)]
        for s in store { out["d" + s.name] = store.gradientTensor(s).storage }
        return out
    }

    /// The chunked op (chunks of 8, a partial last chunk) and the recurrent
    /// one inside the layer: same y, final state and gradients (SPEC section 7).
    func testChunkedEqualsRecurrentInsideTheLayer() throws {
        for (i, gated) in [false, true].enumerated() {
            let T = 37
            let recurrent = config(gated: gated, outputGate: true, negativeEigenvalues: true, algorithm: .recurrent)
            var chunked = recurrent
            chunked.algorithm = .chunked(size: 8)
            let (layerR, store, rng0) = try makeLayer(recurrent, seed: 310 + UInt64(i))
            var rngC = SeededRNG(seed: 0)
            var storeC = ParameterStore()
            let layerC = try DeltaNetLayer(chunked, name: "dn", store: &storeC, rng: &rngC)
            storeC.setValues(store.values)
            var rng = rng0
            let x = rng.normalTensor([B, T, D]), dy = rng.normalTensor([B, T, D])
            let s0 = randomState(layerR, &rng), dS = randomState(layerR, &rng)
            let a = try run(layerR, store, x: x, dy: dy, s0: s0, dS: dS)
            let b = try run(layerC, storeC, x: x, dy: dy, s0: s0, dS: dS)
            var worst = 0.0
            for key in a.keys.sorted() {
                assertSpecClose(b[key]!, a[key]!, "gated=\(gated) chunked vs recurrent \(key)")
                worst = max(worst, maxAbsDifference(b[key]!, a[key]!.asDouble))
            }
            print("  gated=\(gated): chunked(8) vs recurrent at T=\(T): max difference over y, states, all gradients = \(worst)")
        }
    }

    /// Columns [from, to) of the time axis of `[B, T, W]`.
    private func timeSlice(_ x: Tensor, _ from: Int, _ to: Int) -> Tensor {
        let (B, T, W) = (x.shape[0], x.shape[1], x.shape[2])
        var out: [Float] = []
        for b in 0..<B { out += x.storage[((b * T + from) * W)..<((b * T + to) * W)] }
        return Tensor(shape: [B, to - from, W], storage: out)
    }

    private func timeConcat(_ a: Tensor, _ b: Tensor) -> Tensor {
        let (B, W) = (a.shape[0], a.shape[2])
        var out: [Float] = []
        for i in 0..<B {
            out += a.storage[(i * a.shape[1] * W)..<((i + 1) * a.shape[1] * W)]
            out += b.storage[(i * b.shape[1] * W)..<((i + 1) * b.shape[1] * W)]
        }
        return Tensor(shape: [B, a.shape[1] + b.shape[1], W], storage: out)
    }

    /// T tokens at once equals T1 then T - T1 tokens with the carried fast
    /// weights and conv states; the backward run segment by segment (each
    /// segment's dL/d(initial state) as the previous one's dstate) equals the
    /// one-pass backward. Cuts shorter than K-1 included.
    func testTwoSegmentsWithCarriedStateEqualOnePass() throws {
        for (i, (gated, cut)) in [(false, 4), (true, 4), (true, 1)].enumerated() {
            let T = 9
            let c = config(gated: gated, outputGate: gated, negativeEigenvalues: false)
            var (layer, store, rng) = try makeLayer(c, seed: 320 + UInt64(i))
            let x = rng.normalTensor([B, T, D]), dy = rng.normalTensor([B, T, D])
            let s0 = randomState(layer, &rng), dS = randomState(layer, &rng)
            store.zeroGradients()
            let whole = try layer.forward(x, store: store, initialState: s0)
            let dWhole = try layer.backward(dy, dstate: dS, cache: whole.cache, store: &store)
            let gradsWhole = store.gradients

            store.zeroGradients()
            let first = try layer.forward(timeSlice(x, 0, cut), store: store, initialState: s0)
            let second = try layer.forward(timeSlice(x, cut, T), store: store, initialState: first.state)
            let d2 = try layer.backward(timeSlice(dy, cut, T), dstate: dS, cache: second.cache, store: &store)
            let d1 = try layer.backward(timeSlice(dy, 0, cut), dstate: d2.dinitialState, cache: first.cache, store: &store)
            let label = "gated=\(gated) cut=\(cut)"
            let ySplit = timeConcat(first.y, second.y)
            assertSpecClose(ySplit.storage, whole.y.storage, "\(label) y")
            assertSpecClose(flat(second.state), flat(whole.state), "\(label) final state")
            assertSpecClose(timeConcat(d1.dx, d2.dx).storage, dWhole.dx.storage, "\(label) dx")
            assertSpecClose(flat(d1.dinitialState), flat(dWhole.dinitialState), "\(label) dinitial state")
            assertSpecClose(store.gradients, gradsWhole, "\(label) parameter gradients")
            print("  \(label): two segments vs one pass: y \(maxAbsDifference(ySplit.storage, whole.y.storage.asDouble)), state \(maxAbsDifference(flat(second.state), flat(whole.state).asDouble)), dx \(maxAbsDifference(timeConcat(d1.dx, d2.dx).storage, dWhole.dx.storage.asDouble)), grads \(maxAbsDifference(store.gradients, gradsWhole.asDouble))")
        }
    }

    /// The layer as the mixer of a two-block TransformerModel: the loss and
    /// every gradient against finite differences of the reference model with
    /// DeltaNetReference.layer as its mixer.
    func testTransformerModelWithGatedDeltaNetMixer() throws {
        let (V, F, B, T) = (5, 6, 2, 4)
        let c = config(gated: true, outputGate: true, negativeEigenvalues: true)
        var rng = SeededRNG(seed: 330)
        var store = ParameterStore()
        let model = try TransformerModel(vocabularySize: V, modelSize: D, feedForwardSize: F, layers: 2,
                                         positionalEncoding: false, store: &store, rng: &rng) { l, store, rng in
            try DeltaNetLayer(c, name: "block\(l).mix", store: &store, rng: &rng)
        }
        var values = store.values
        for i in values.indices { values[i] += 0.2 * rng.normal() }
        store.setValues(values)
        let tokens = (0..<(B * T)).map { _ in Int32(rng.next() % UInt64(V)) }
        let targets = (0..<(B * T)).map { _ in Int32(rng.next() % UInt64(V)) }
        store.zeroGradients()
        let result = try model.crossEntropy(tokens: tokens, targets: targets, batchSize: B, store: &store, rng: &rng)
        let slices = store.slices
        func loss(_ p: [Double]) -> Double {
            func param(_ name: String) -> [Double] { Array(p[slices.first { $0.name == name }!.range]) }
            let logits = TransformerReference.modelOutputs(
                tokens: tokens, p: param, batch: B, modelSize: D, feedForwardSize: F, outputSize: V,
                layers: 2, positionalEncoding: false) { l, u in
                    DeltaNetReference.layer(c, name: "block\(l).mix", x: u, param: param, state: nil, B: B, T: T).y
                }
            var total = 0.0
            for r in 0..<(B * T) {
                let row = Array(logits[(r * V)..<((r + 1) * V)])
                let m = row.max()!
                total += m + log(row.map { exp($0 - m) }.reduce(0, +)) - row[Int(targets[r])]
            }
            return total / Double(B * T)
        }
        let p = store.values.asDouble
        XCTAssertEqual(Double(result.loss), loss(p), accuracy: 2e-4)
        let fd = centralDifferences(at: p, loss)
        var worst = 0.0
        for s in store {
            let analytic = Array(store.gradients[s.range]), numeric = Array(fd[s.range])
            assertSpecClose(analytic, numeric, "transformer d\(s.name)")
            worst = max(worst, maxAbsDifference(analytic, numeric))
        }
        print("  TransformerModel<DeltaNetLayer>: \(store.count) parameters, max |grad - fd| = \(worst)")
    }

    private func assertInvalid(_ c: DeltaNetLayerConfig, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try c.validate(), file: file, line: line) { error in
            guard case let FWError.invalidArgument(message) = error else {
                return XCTFail("expected invalidArgument, got \(error)", file: file, line: line)
            }
            XCTAssertTrue(message.contains(fragment), "'\(message)' does not mention \(fragment)", file: file, line: line)
            XCTAssertFalse(message.contains("\n"), file: file, line: line)
        }
    }

    func testShapeAndConfigurationErrors() throws {
        let c = config(gated: true, outputGate: true, negativeEigenvalues: false)
        var (layer, store, rng) = try makeLayer(c, seed: 340)
        let x = rng.normalTensor([B, T, D])
        assertShapeMismatch("x") { _ = try layer.forward(rng.normalTensor([B, T, D + 1]), store: store, initialState: nil) }
        assertShapeMismatch("x") { _ = try layer.forward(rng.normalTensor([B * T, D]), store: store, initialState: nil) }
        var bad = layer.zeroState(batch: B)
        bad.fastWeights = Tensor(shape: [B, H, dk, dv])
        assertShapeMismatch("initial state.fastWeights") { _ = try layer.forward(x, store: store, initialState: bad) }
        bad = layer.zeroState(batch: B)
        bad.qConv = Tensor(shape: [B, K, H * dk])
        assertShapeMismatch("initial state.qConv") { _ = try layer.forward(x, store: store, initialState: bad) }
        bad = layer.zeroState(batch: B + 1)
        assertShapeMismatch("initial state.fastWeights") { _ = try layer.forward(x, store: store, initialState: bad) }
        let (_, _, cache) = try layer.forward(x, store: store, initialState: nil)
        assertShapeMismatch("dy") { _ = try layer.backward(Tensor(shape: [B, T + 1, D]), cache: cache, store: &store) }
        bad = layer.zeroState(batch: B)
        bad.vConv = Tensor(shape: [B, K - 1, H * dk])
        assertShapeMismatch("dstate.vConv") { _ = try layer.backward(Tensor(shape: [B, T, D]), dstate: bad, cache: cache, store: &store) }
        // The convolution on its own.
        var convStore = ParameterStore()
        let conv = ShortConvolution(channels: 3, kernelSize: 4, name: "c", store: &convStore, rng: &rng)
        assertShapeMismatch("x") { _ = try conv.forward(Tensor(shape: [1, 2, 4]), initialState: nil, store: convStore) }
        assertShapeMismatch("initial conv state") {
            _ = try conv.forward(Tensor(shape: [1, 2, 3]), initialState: Tensor(shape: [1, 4, 3]), store: convStore)
        }

        var cfg = c
        cfg.heads = 0; assertInvalid(cfg, "heads")
        cfg = c; cfg.headSize = 0; assertInvalid(cfg, "headSize")
        cfg = c; cfg.valueSize = -1; assertInvalid(cfg, "valueSize")
        cfg = c; cfg.modelSize = 0; assertInvalid(cfg, "modelSize")
        cfg = c; cfg.convolutionSize = 0; assertInvalid(cfg, "convolutionSize")
        cfg = c; cfg.normEpsilon = 0; assertInvalid(cfg, "normEpsilon")
        cfg = c; cfg.normEpsilon = .nan; assertInvalid(cfg, "normEpsilon")
        cfg = c; cfg.algorithm = .chunked(size: 0); assertInvalid(cfg, "chunk size")
        var s = ParameterStore()
        XCTAssertThrowsError(try DeltaNetLayer(cfg, name: "bad", store: &s, rng: &rng))
        XCTAssertEqual(s.count, 0)
    }

    /// FLA's defaults and the op the configuration builds; an empty batch or
    /// sequence passes the state through.
    func testDefaultsAndEmptyInputs() throws {
        let dn = DeltaNetLayerConfig.deltaNet(modelSize: 8, heads: 2, headSize: 4)
        XCTAssertEqual([dn.valueSize, dn.convolutionSize], [4, 4])
        XCTAssertFalse(dn.gated || dn.outputGate || dn.negativeEigenvalues)
        XCTAssertEqual(dn.normEpsilon, 1e-5)
        XCTAssertNil(dn.algorithm)
        let op = try dn.validate()
        XCTAssertEqual(op.rule, .delta)
        XCTAssertEqual(op.featureMap, .identity)
        XCTAssertEqual(op.normalization, .l2)
        XCTAssertFalse(op.denominator)
        let gdn = DeltaNetLayerConfig.gatedDeltaNet(modelSize: 8, heads: 2, headSize: 4)
        XCTAssertEqual(gdn.valueSize, 8)
        XCTAssertTrue(gdn.gated && gdn.outputGate)
        XCTAssertEqual(try gdn.validate().rule, .gatedDelta)
        XCTAssertEqual(gdn.queryScale, 0.5)

        let c = config(gated: true, outputGate: true, negativeEigenvalues: false)
        var (layer, store, rng) = try makeLayer(c, seed: 350)
        let s0 = randomState(layer, &rng)
        let r = try layer.forward(Tensor(shape: [B, 0, D]), store: store, initialState: s0)
        XCTAssertEqual(r.y.shape, [B, 0, D])
        XCTAssertEqual(r.state, s0)
        let d = try layer.backward(Tensor(shape: [B, 0, D]), dstate: s0, cache: r.cache, store: &store)
        XCTAssertEqual(d.dx.shape, [B, 0, D])
        XCTAssertEqual(d.dinitialState, s0)
        // The SequenceMixingLayer forward starts from zeros.
        let x = rng.normalTensor([B, T, D])
        let (y, _) = try layer.forward(x, store: store, training: true, rng: &rng)
        XCTAssertEqual(y, try layer.forward(x, store: store, initialState: layer.zeroState(batch: B)).y)
    }
}
