// SoftmaxAttentionLayer: forward against a Float64 reference, every
// parameter gradient and dx against central finite differences of it
// (loss = <dy, y>), causality, numerical stability, shape errors.
import XCTest
import FWTestSupport

final class SoftmaxAttentionLayerTests: XCTestCase {
    private let (B, T, D, H, dk) = (2, 7, 6, 2, 3)

    private func checkGradient(_ label: String, _ analytic: [Float], at x: [Double], _ f: ([Double]) -> Double,
                               file: StaticString = #filePath, line: UInt = #line) {
        let fd = centralDifferences(at: x, f)
        print("  \(label): max|analytic - fd| = \(maxAbsDifference(analytic, fd))")
        assertSpecClose(analytic, fd, label, file: file, line: line)
    }

    private func makeLayer(seed: UInt64, weightStd: Float = 0.6) throws -> (SoftmaxAttentionLayer, ParameterStore, SeededRNG) {
        var rng = SeededRNG(seed: seed)
        var store = ParameterStore()
        let layer = try SoftmaxAttentionLayer(modelSize: D, heads: H, headSize: dk, name: "attn", store: &store, rng: &rng)
        // Larger than the default init so that the softmax is far from uniform.
        try store.setTensor("attn.qkv.weight", rng.normalTensor([3 * H * dk, D], std: weightStd))
        return (layer, store, rng)
    }

    func testForwardAndGradientsAgainstReference() throws {
        var (layer, store, rng) = try makeLayer(seed: 201)
        XCTAssertEqual(store.names, ["attn.qkv.weight", "attn.out.weight"])
        XCTAssertEqual(layer.out.weight.shape, [D, H * dk])
        XCTAssertEqual(layer.modelSize, D)
        let x = rng.normalTensor([B, T, D]), dy = rng.normalTensor([B, T, D])
        let wq = try store.tensor("attn.qkv.weight").storage.asDouble
        let wo = try store.tensor("attn.out.weight").storage.asDouble
        let xd = x.storage.asDouble, dyd = dy.storage.asDouble
        func reference(_ x: [Double], _ wq: [Double], _ wo: [Double]) -> [Double] {
            AttentionLayersReference.softmaxAttention(x: x, wqkv: wq, wout: wo, B: B, T: T, D: D, H: H, dk: dk)
        }
        let (y, cache) = try layer.forward(x, store: store, training: true, rng: &rng)
        XCTAssertEqual(y.shape, [B, T, D])
        let yRef = reference(xd, wq, wo)
        print("  softmax attention: max|y - ref| = \(maxAbsDifference(y.storage, yRef))")
        assertSpecClose(y.storage, yRef, "y")

        // Twice: parameter gradients accumulate, so they must be 2x the FD.
        let dx = try layer.backward(dy, cache: cache, store: &store)
        _ = try layer.backward(dy, cache: cache, store: &store)
        checkGradient("dx", dx.storage, at: xd) { dot(dyd, reference($0, wq, wo)) }
        checkGradient("dWqkv (x2)", try store.gradientTensor("attn.qkv.weight").storage, at: wq) { 2 * dot(dyd, reference(xd, $0, wo)) }
        checkGradient("dWout (x2)", try store.gradientTensor("attn.out.weight").storage, at: wo) { 2 * dot(dyd, reference(xd, wq, $0)) }
    }

    func testSingleSequenceRunsSequentially() throws {
        // B*H = 1 < workers: the sequential path of ThreadOwnership.
        var rng = SeededRNG(seed: 202)
        var store = ParameterStore()
        let layer = try SoftmaxAttentionLayer(modelSize: 4, heads: 1, headSize: 4, name: "a", store: &store, rng: &rng)
        let x = rng.normalTensor([1, 5, 4]), dy = rng.normalTensor([1, 5, 4])
        let wq = try store.tensor("a.qkv.weight").storage.asDouble, wo = try store.tensor("a.out.weight").storage.asDouble
        let (y, cache) = try layer.forward(x, store: store, training: false, rng: &rng)
        func reference(_ x: [Double]) -> [Double] {
            AttentionLayersReference.softmaxAttention(x: x, wqkv: wq, wout: wo, B: 1, T: 5, D: 4, H: 1, dk: 4)
        }
        assertSpecClose(y.storage, reference(x.storage.asDouble), "y (B*H = 1)")
        let dx = try layer.backward(dy, cache: cache, store: &store)
        let dyd = dy.storage.asDouble
        checkGradient("dx (B*H = 1)", dx.storage, at: x.storage.asDouble) { dot(dyd, reference($0)) }
    }

    /// Changing x at time t0 leaves y before t0 bit-identical and changes y at t0.
    func testCausality() throws {
        let (layer, store, seeded) = try makeLayer(seed: 203)
        var rng = seeded
        let x = rng.normalTensor([B, T, D])
        let (y, _) = try layer.forward(x, store: store, training: false, rng: &rng)
        for t0 in [0, 3, T - 1] {
            var x2 = x
            for b in 0..<B { for i in 0..<D { x2[b, t0, i] += 1.5 } }
            let (y2, _) = try layer.forward(x2, store: store, training: false, rng: &rng)
            for b in 0..<B {
                for t in 0..<t0 {
                    for i in 0..<D { XCTAssertEqual(y2[b, t, i], y[b, t, i], "y[\(b), \(t), \(i)] changed when x at t = \(t0) did") }
                }
                let moved = (0..<D).contains { y2[b, t0, $0] != y[b, t0, $0] }
                XCTAssertTrue(moved, "y at t = \(t0) did not react to x at t = \(t0)")
            }
        }
    }

    func testLargeScoresStayFinite() throws {
        var (layer, store, rng) = try makeLayer(seed: 204, weightStd: 30)
        let x = rng.normalTensor([B, T, D], std: 10)
        let (y, cache) = try layer.forward(x, store: store, training: true, rng: &rng)
        XCTAssertTrue(y.isFinite)
        let dx = try layer.backward(rng.normalTensor([B, T, D]), cache: cache, store: &store)
        XCTAssertTrue(dx.isFinite)
        XCTAssertTrue(store.gradients.allSatisfy { $0.isFinite })
    }

    func testEmptyBatchOrSequence() throws {
        var (layer, store, rng) = try makeLayer(seed: 206)
        for shape in [[1, 0, D], [0, 3, D]] {
            let (y, cache) = try layer.forward(Tensor(shape: shape), store: store, training: true, rng: &rng)
            XCTAssertEqual(y.shape, shape)
            XCTAssertEqual(try layer.backward(y, cache: cache, store: &store).shape, shape)
        }
        XCTAssertTrue(store.gradients.allSatisfy { $0 == 0 })
    }

    func testShapeErrorsNameTheTensor() throws {
        var (layer, store, rng) = try makeLayer(seed: 205)
        XCTAssertThrowsError(try layer.forward(Tensor(shape: [2, 7, 4]), store: store, training: true, rng: &rng)) { error in
            XCTAssertEqual("\(error)", "x: expected shape [B, T, D] = [B, T, 6], got [2, 7, 4]")
        }
        let (_, cache) = try layer.forward(rng.normalTensor([B, T, D]), store: store, training: true, rng: &rng)
        XCTAssertThrowsError(try layer.backward(Tensor(shape: [B, T]), cache: cache, store: &store)) { error in
            XCTAssertEqual(error as? FWError, .shapeMismatch(tensor: "dy", expected: "[2, 7, 6]", got: [2, 7]))
        }
        var s = ParameterStore()
        XCTAssertThrowsError(try SoftmaxAttentionLayer(modelSize: 6, heads: 0, headSize: 3, name: "z", store: &s, rng: &rng)) { error in
            XCTAssertEqual("\(error)", "SoftmaxAttentionLayer: heads must be at least 1, got 0")
        }
    }
}
