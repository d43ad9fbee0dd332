// Forward of every layer and loss against its Float64 reference, and every
// gradient against central finite differences of that reference, with the
// scalar loss <dy, y> for a random dy (docs/contract.md section 7 tolerance).
import XCTest
import FWTestSupport

final class LayerGradientTests: XCTestCase {
    /// Checks `analytic` against central differences of `f` at `x`, printing the max error.
    private func checkGradient(_ label: String, _ analytic: [Float], at x: [Double], _ f: ([Double]) -> Double,
                               file: StaticString = #filePath, line: UInt = #line) {
        let fd = centralDifferences(at: x, f)
        print("  \(label): max|analytic - fd| = \(maxAbsDifference(analytic, fd))")
        assertSpecClose(analytic, fd, label, file: file, line: line)
    }

    func testLinearForwardAndGradients() throws {
        var rng = SeededRNG(seed: 11)
        var store = ParameterStore()
        let layer = Linear(5, 3, name: "fc", store: &store, rng: &rng)
        try store.setTensor("fc.bias", rng.normalTensor([3]))   // a non-zero bias is part of the check
        let x = rng.normalTensor([2, 4, 5])                      // 8 rows
        let dy = rng.normalTensor([2, 4, 3])
        let w = try store.tensor("fc.weight").storage.asDouble
        let b = try store.tensor("fc.bias").storage.asDouble

        let y = try layer(x, store)
        XCTAssertEqual(y.shape, [2, 4, 3])
        assertSpecClose(y.storage, LayersReference.linear(x.storage.asDouble, weight: w, bias: b, n: 8, inputs: 5, outputs: 3), "Linear y")

        // Twice: parameter gradients accumulate, so they must be 2x the FD.
        let dx = try layer.backward(dy, input: x, store: &store)
        _ = try layer.backward(dy, input: x, store: &store)
        let dyd = dy.storage.asDouble
        checkGradient("Linear dx", dx.storage, at: x.storage.asDouble) {
            dot(dyd, LayersReference.linear($0, weight: w, bias: b, n: 8, inputs: 5, outputs: 3))
        }
        checkGradient("Linear dW (x2)", try store.gradientTensor("fc.weight").storage, at: w) {
            2 * dot(dyd, LayersReference.linear(x.storage.asDouble, weight: $0, bias: b, n: 8, inputs: 5, outputs: 3))
        }
        checkGradient("Linear db (x2)", try store.gradientTensor("fc.bias").storage, at: b) {
            2 * dot(dyd, LayersReference.linear(x.storage.asDouble, weight: w, bias: $0, n: 8, inputs: 5, outputs: 3))
        }

        store.zeroGradients()
        XCTAssertTrue(store.gradients.allSatisfy { $0 == 0 })
    }

    func testLinearRawBackwardAccumulatesIntoDinpAndWorksWithoutBias() throws {
        var rng = SeededRNG(seed: 12)
        var store = ParameterStore()
        let layer = Linear(4, 2, bias: false, name: "nb", store: &store, rng: &rng)
        XCTAssertNil(layer.bias)
        XCTAssertEqual(store.names, ["nb.weight"])
        let x = rng.normalTensor([3, 4]), dy = rng.normalTensor([3, 2])
        let w = store.tensor(layer.weight).storage.asDouble
        assertSpecClose(try layer(x, store).storage, LayersReference.linear(x.storage.asDouble, weight: w, bias: nil, n: 3, inputs: 4, outputs: 2), "Linear (no bias) y")
        var dinp = [Float](repeating: 0.25, count: 12)   // prefilled: backward must add
        store.withPointers { p in
            Linear.backward(dinp: &dinp, dweight: p.gradient(layer.weight), dbias: nil,
                            dout: dy.storage, inp: x.storage, weight: p.value(layer.weight), n: 3, inputs: 4, outputs: 2)
        }
        let dyd = dy.storage.asDouble
        checkGradient("Linear raw dinp (+0.25)", dinp.map { $0 - 0.25 }, at: x.storage.asDouble) {
            dot(dyd, LayersReference.linear($0, weight: w, bias: nil, n: 3, inputs: 4, outputs: 2))
        }
    }

    func testEmbeddingForwardAndScatterAddBackward() throws {
        var rng = SeededRNG(seed: 13)
        var store = ParameterStore()
        let emb = Embedding(6, 4, name: "tok", store: &store, rng: &rng)
        let ids: [Int32] = [2, 0, 2, 5, 2, 1]                     // repeated ids must add up
        let table = store.tensor(emb.table).storage.asDouble
        let out = try emb(ids, store)
        XCTAssertEqual(out.shape, [6, 4])
        assertSpecClose(out.storage, LayersReference.embedding(table, ids: ids, dimensions: 4), "Embedding out")
        let dy = rng.normalTensor([6, 4])
        try emb.backward(dy, ids: ids, store: &store)
        let dyd = dy.storage.asDouble
        checkGradient("Embedding dtable", store.gradientTensor(emb.table).storage, at: table) {
            dot(dyd, LayersReference.embedding($0, ids: ids, dimensions: 4))
        }
        XCTAssertThrowsError(try emb([0, 6], store)) { error in
            XCTAssertEqual("\(error)", "Embedding 'tok.weight': id 6 at position 1 is outside 0..<6")
        }
    }

    func testLayerNormForwardStatisticsAndGradients() throws {
        var rng = SeededRNG(seed: 14)
        var store = ParameterStore()
        let ln = LayerNorm(6, name: "ln", store: &store)
        XCTAssertEqual(try store.tensor("ln.weight").storage, [Float](repeating: 1, count: 6))
        // Non-trivial gain and shift, inputs with an offset (the mean matters).
        try store.setTensor("ln.weight", rng.uniformTensor([6], low: 0.5, high: 1.5))
        try store.setTensor("ln.bias", rng.normalTensor([6]))
        var x = rng.normalTensor([5, 6])
        for i in 0..<x.count { x.storage[i] += 3 }
        let g = try store.tensor("ln.weight").storage.asDouble, b = try store.tensor("ln.bias").storage.asDouble
        let (y, saved) = try ln(x, store)
        assertSpecClose(y.storage, LayersReference.layerNorm(x.storage.asDouble, weight: g, bias: b, n: 5, c: 6), "LayerNorm y")
        for i in 0..<5 {
            let row = x.storage[(i * 6)..<(i * 6 + 6)].map(Double.init)
            let mean = row.reduce(0, +) / 6
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 6
            XCTAssertEqual(Double(saved.mean[i]), mean, accuracy: 1e-5)
            XCTAssertEqual(Double(saved.rstd[i]), 1 / (variance + 1e-5).squareRoot(), accuracy: 1e-4)
        }
        let dy = rng.normalTensor([5, 6])
        let dx = try ln.backward(dy, input: x, saved: saved, store: &store)
        let dyd = dy.storage.asDouble, xd = x.storage.asDouble
        checkGradient("LayerNorm dx", dx.storage, at: xd) { dot(dyd, LayersReference.layerNorm($0, weight: g, bias: b, n: 5, c: 6)) }
        checkGradient("LayerNorm dweight", try store.gradientTensor("ln.weight").storage, at: g) {
            dot(dyd, LayersReference.layerNorm(xd, weight: $0, bias: b, n: 5, c: 6))
        }
        checkGradient("LayerNorm dbias", try store.gradientTensor("ln.bias").storage, at: b) {
            dot(dyd, LayersReference.layerNorm(xd, weight: g, bias: $0, n: 5, c: 6))
        }
    }

    func testActivationsForwardAndGradients() throws {
        var rng = SeededRNG(seed: 15)
        // Keep relu's inputs away from its kink at 0 (FD would straddle it).
        var x = rng.normalTensor([3, 7])
        for i in 0..<x.count where abs(x.storage[i]) < 0.05 { x.storage[i] += 0.2 }
        let dy = rng.normalTensor([3, 7])
        for f in ActivationFunction.allCases {
            let y = f(x)
            assertSpecClose(y.storage, LayersReference.activation(f, x.storage.asDouble), "\(f) y")
            let dx = try f.backward(dy, output: y)
            let dyd = dy.storage.asDouble
            checkGradient("\(f) dx", dx.storage, at: x.storage.asDouble) { dot(dyd, LayersReference.activation(f, $0)) }
        }
        // Large inputs: sigmoid saturates without overflow, NaN-free.
        let extreme = Tensor(shape: [4], storage: [-200, -90, 90, 200])
        XCTAssertEqual(ActivationFunction.sigmoid(extreme).storage, [0, ActivationFunction.logistic(-90), 1, 1])
        XCTAssertTrue(ActivationFunction.sigmoid(extreme).isFinite)
    }

    func testSoftmaxCrossEntropyLossAccuracyAndGradient() throws {
        var rng = SeededRNG(seed: 16)
        let logits = rng.normalTensor([7, 5], std: 2)
        let targets: [Int32] = [0, 4, 2, 2, 1, 3, 0]
        let out = try SoftmaxCrossEntropy.forward(logits: logits, targets: targets)
        let reference = LayersReference.softmaxCrossEntropy(logits.storage.asDouble, targets: targets, classes: 5)
        print("  cross-entropy loss \(out.loss) vs reference \(reference)")
        assertSpecClose([out.loss], [reference], "cross-entropy loss")
        var correct = 0
        for i in 0..<7 {
            let row = logits.storage[(i * 5)..<(i * 5 + 5)]
            if row.firstIndex(of: row.max()!)! - i * 5 == Int(targets[i]) { correct += 1 }
        }
        XCTAssertEqual(out.correct, correct)
        XCTAssertEqual(out.count, 7)
        XCTAssertEqual(out.accuracy, Float(correct) / 7)
        for i in 0..<7 {
            XCTAssertEqual(out.probabilities.storage[(i * 5)..<(i * 5 + 5)].reduce(0, +), 1, accuracy: 1e-6)
        }
        let dloss: Float = 0.7
        let dlogits = try SoftmaxCrossEntropy.backward(out, targets: targets, dloss: dloss)
        checkGradient("cross-entropy dlogits", dlogits.storage, at: logits.storage.asDouble) {
            Double(dloss) * LayersReference.softmaxCrossEntropy($0, targets: targets, classes: 5)
        }
        // Huge logits: max subtraction keeps everything finite.
        let huge = try SoftmaxCrossEntropy.forward(logits: Tensor(shape: [1, 3], storage: [1000, 0, -1000]), targets: [1])
        XCTAssertEqual(huge.loss, 1000, accuracy: 1e-3)
        XCTAssertEqual(huge.correct, 0)
        XCTAssertThrowsError(try SoftmaxCrossEntropy.forward(logits: logits, targets: [0])) { error in
            XCTAssertEqual("\(error)", "SoftmaxCrossEntropy: 1 targets for 7 rows of logits [7, 5]")
        }
        XCTAssertThrowsError(try SoftmaxCrossEntropy.forward(logits: logits, targets: [0, 4, 2, 2, 5, 3, 0])) { error in
            XCTAssertEqual("\(error)", "SoftmaxCrossEntropy: target 5 at row 4 outside 0..<5")
        }
    }

    func testSquaredErrorLossAndGradient() throws {
        var rng = SeededRNG(seed: 17)
        let y = rng.normalTensor([4, 3]), target = rng.normalTensor([4, 3])
        let loss = try SquaredErrorLoss.forward(y, target: target)
        assertSpecClose([loss], [LayersReference.squaredError(y.storage.asDouble, target: target.storage.asDouble, n: 4)], "squared error")
        let dy = try SquaredErrorLoss.backward(y, target: target, dloss: 1.5)
        let t = target.storage.asDouble
        checkGradient("squared error dy", dy.storage, at: y.storage.asDouble) {
            1.5 * LayersReference.squaredError($0, target: t, n: 4)
        }
        XCTAssertThrowsError(try SquaredErrorLoss.forward(y, target: Tensor(shape: [4, 2]))) { error in
            XCTAssertEqual(error as? FWError, .shapeMismatch(tensor: "target", expected: "[4, 3]", got: [4, 2]))
        }
    }

    /// A two-layer network through the store's flat arrays, end to end:
    /// the loss's gradient for every parameter against FD of a Float64 forward.
    func testSmallNetworkEndToEndThroughTheStore() throws {
        var rng = SeededRNG(seed: 18)
        var store = ParameterStore()
        let emb = Embedding(5, 4, name: "emb", store: &store, rng: &rng)
        let ln = LayerNorm(4, name: "ln", store: &store)
        let fc1 = Linear(4, 6, name: "fc1", store: &store, rng: &rng)
        let fc2 = Linear(6, 3, name: "fc2", store: &store, rng: &rng)
        try store.setTensor("ln.bias", rng.normalTensor([4], std: 0.3))
        try store.setTensor("fc1.bias", rng.normalTensor([6], std: 0.3))
        let ids: [Int32] = [1, 3, 3, 0, 4]
        let targets: [Int32] = [2, 0, 1, 1, 2]

        // Float32 forward and backward, in the reverse order of the forward.
        let e = try emb(ids, store)
        let (n, saved) = try ln(e, store)
        let h = try fc1(n, store)
        let a = ActivationFunction.tanh(h)
        let logits = try fc2(a, store)
        let out = try SoftmaxCrossEntropy.forward(logits: logits, targets: targets)
        store.zeroGradients()
        let dlogits = try SoftmaxCrossEntropy.backward(out, targets: targets)
        let da = try fc2.backward(dlogits, input: a, store: &store)
        let dh = try ActivationFunction.tanh.backward(da, output: a)
        let dn = try fc1.backward(dh, input: n, store: &store)
        let de = try ln.backward(dn, input: e, saved: saved, store: &store)
        try emb.backward(de, ids: ids, store: &store)

        // The same network in Float64 over the flat value array.
        let slices = store.slices
        func loss(_ p: [Double]) -> Double {
            func t(_ s: ParameterSlice) -> [Double] { Array(p[s.range]) }
            let e = LayersReference.embedding(t(slices[0]), ids: ids, dimensions: 4)
            let n = LayersReference.layerNorm(e, weight: t(slices[1]), bias: t(slices[2]), n: 5, c: 4)
            let h = LayersReference.linear(n, weight: t(slices[3]), bias: t(slices[4]), n: 5, inputs: 4, outputs: 6)
            let a = LayersReference.activation(.tanh, h)
            let z = LayersReference.linear(a, weight: t(slices[5]), bias: t(slices[6]), n: 5, inputs: 6, outputs: 3)
            return LayersReference.softmaxCrossEntropy(z, targets: targets, classes: 3)
        }
        assertSpecClose([out.loss], [loss(store.values.asDouble)], "network loss")
        checkGradient("network gradients (all \(store.count))", store.gradients, at: store.values.asDouble, loss)
    }
}
