import XCTest
import FWTestSupport

/// LSTM: forward vs the Float64 reference, every gradient vs central finite
/// differences of the reference (loss <dh, h>), gate order, initialisation,
/// shape errors.
final class LSTMTests: XCTestCase {
    struct Case {
        var x: Tensor
        var parameters: LSTMParameters
        var batch: Int, time: Int, hidden: Int, input: Int
    }

    /// x ~ N(0, 1); the LSTM initialisation, or, with `scale`, W, U ~ U(-scale, scale)
    /// and b ~ N(0, 0.5^2) so that every gate is away from its default.
    func makeCase(seed: UInt64, batch: Int, time: Int, hidden: Int, input: Int, scale: Float? = nil) -> Case {
        var rng = SeededRNG(seed: seed)
        var p = LSTMParameters(hidden: hidden, input: input, rng: &rng)
        if let scale {
            p.W = rng.uniformTensor([4 * hidden, hidden], low: -scale, high: scale)
            p.U = rng.uniformTensor([4 * hidden, input], low: -scale, high: scale)
            p.b = rng.normalTensor([4 * hidden], std: 0.5)
        }
        let x = rng.normalTensor([batch, time, input])
        return Case(x: x, parameters: p, batch: batch, time: time, hidden: hidden, input: input)
    }

    func reference(_ c: Case, x: [Double]? = nil, W: [Double]? = nil, U: [Double]? = nil, b: [Double]? = nil) -> [Double] {
        BaselinesReference.lstm(x: x ?? c.x.storage.asDouble, W: W ?? c.parameters.W.storage.asDouble,
                                U: U ?? c.parameters.U.storage.asDouble, b: b ?? c.parameters.b.storage.asDouble,
                                batch: c.batch, time: c.time, hidden: c.hidden, input: c.input)
    }

    func testForwardMatchesFloat64() throws {
        for (seed, scale) in [(UInt64(1), Float?.none), (2, 0.8)] {
            let c = makeCase(seed: seed, batch: 3, time: 40, hidden: 16, input: 7, scale: scale)
            let (h, cache) = try LSTM.forward(x: c.x, parameters: c.parameters)
            XCTAssertEqual(h.shape, [3, 40, 16])
            XCTAssertEqual(cache.c.shape, [3, 40, 16])
            XCTAssertEqual(cache.gates.shape, [3, 40, 64])
            let ref = reference(c)
            assertSpecClose(h.storage, ref, "LSTM h (seed \(seed))")
            print("LSTM forward (seed \(seed), T = 40): max|h - ref| = \(maxAbsDifference(h.storage, ref))")
        }
    }

    func testForwardMatchesFloat64LongSequence() throws {
        // Forget bias 1 and larger weights: the cell integrates over a long sequence.
        let c = makeCase(seed: 3, batch: 2, time: 1000, hidden: 8, input: 4, scale: 0.5)
        let (h, _) = try LSTM.forward(x: c.x, parameters: c.parameters)
        let ref = reference(c)
        assertSpecClose(h.storage, ref, "LSTM h (T = 1000)")
        print("LSTM forward (T = 1000): max|h - ref| = \(maxAbsDifference(h.storage, ref))")
    }

    func testGradientsMatchFiniteDifferences() throws {
        for (seed, time) in [(UInt64(10), 6), (11, 1)] {
            let c = makeCase(seed: seed, batch: 2, time: time, hidden: 5, input: 4, scale: 0.7)
            var rng = SeededRNG(seed: 99)
            let dh = rng.normalTensor([c.batch, c.time, c.hidden])
            let (_, cache) = try LSTM.forward(x: c.x, parameters: c.parameters)
            let g = try LSTM.backward(dh: dh, cache: cache)
            XCTAssertEqual(g.dx.shape, [2, time, 4])
            XCTAssertEqual(g.dW.shape, [20, 5])
            XCTAssertEqual(g.dU.shape, [20, 4])
            XCTAssertEqual(g.db.shape, [20])
            let errors = assertGradientsMatchFiniteDifferences(
                names: ["dx", "dW", "dU", "db"],
                inputs: [c.x.storage.asDouble, c.parameters.W.storage.asDouble,
                         c.parameters.U.storage.asDouble, c.parameters.b.storage.asDouble],
                analytic: [g.dx.storage, g.dW.storage, g.dU.storage, g.db.storage],
                dh: dh.storage.asDouble, label: "LSTM T=\(time)"
            ) { v in
                self.reference(c, x: v[0], W: v[1], U: v[2], b: v[3])
            }
            print("LSTM gradients vs finite differences (T = \(time)): \(errors.sorted { $0.key < $1.key })")
        }
    }

    func testGateOrder() throws {
        // One unit, one input, W = 0, U = 0: only the biases act. i, f, g, o = sigmoid(b_i),
        // sigmoid(b_f), tanh(b_g), sigmoid(b_o); c_0 = i g, h_0 = o tanh(c_0); c_1 = f c_0 + i g.
        let bias: [Float] = [0.5, -1.0, 2.0, -0.25]
        let p = LSTMParameters(W: Tensor(shape: [4, 1]), U: Tensor(shape: [4, 1]), b: Tensor(shape: [4], storage: bias))
        let (h, cache) = try LSTM.forward(x: Tensor(shape: [1, 2, 1]), parameters: p)
        func sig(_ z: Double) -> Double { 1 / (1 + exp(-z)) }
        let (i, f, g, o) = (sig(0.5), sig(-1.0), tanh(2.0), sig(-0.25))
        let c0 = i * g, c1 = f * c0 + i * g
        XCTAssertEqual(Double(cache.c[0, 0, 0]), c0, accuracy: 1e-6)
        XCTAssertEqual(Double(cache.c[0, 1, 0]), c1, accuracy: 1e-6)
        XCTAssertEqual(Double(h[0, 0, 0]), o * tanh(c0), accuracy: 1e-6)
        XCTAssertEqual(Double(h[0, 1, 0]), o * tanh(c1), accuracy: 1e-6)
    }

    func testInitialisation() {
        var rng = SeededRNG(seed: 5)
        let p = LSTMParameters(hidden: 25, input: 7, rng: &rng)
        XCTAssertEqual(p.W.shape, [100, 25])
        XCTAssertEqual(p.U.shape, [100, 7])
        XCTAssertEqual(p.b.shape, [100])
        XCTAssertEqual(p.hidden, 25)
        XCTAssertEqual(p.input, 7)
        XCTAssertLessThanOrEqual(p.W.maxAbs, 0.2)   // U(-1/sqrt(25), 1/sqrt(25))
        XCTAssertLessThanOrEqual(p.U.maxAbs, 0.2)
        XCTAssertGreaterThan(p.W.maxAbs, 0.15)
        for j in 0..<100 { XCTAssertEqual(p.b[j], (25..<50).contains(j) ? 1 : 0, "bias \(j)") }
    }

    func testShapeErrors() throws {
        let c = makeCase(seed: 4, batch: 2, time: 3, hidden: 4, input: 3)
        let p = c.parameters
        assertShapeMismatch("x") { _ = try LSTM.forward(x: Tensor(shape: [2, 3]), parameters: p) }
        assertShapeMismatch("x") { _ = try LSTM.forward(x: Tensor(shape: [2, 3, 4]), parameters: p) }
        var bad = p
        bad.W = Tensor(shape: [4, 4])
        assertShapeMismatch("W") { _ = try LSTM.forward(x: c.x, parameters: bad) }
        bad = p
        bad.W = Tensor(shape: [64])
        assertShapeMismatch("W") { _ = try LSTM.forward(x: c.x, parameters: bad) }
        bad = p
        bad.U = Tensor(shape: [12, 3])
        assertShapeMismatch("U") { _ = try LSTM.forward(x: c.x, parameters: bad) }
        bad = p
        bad.b = Tensor(shape: [4])
        assertShapeMismatch("b") { _ = try LSTM.forward(x: c.x, parameters: bad) }
        let (_, cache) = try LSTM.forward(x: c.x, parameters: p)
        assertShapeMismatch("dh") { _ = try LSTM.backward(dh: Tensor(shape: [2, 3, 16]), cache: cache) }
    }

    func testFlops() {
        // 8BT N Din + 8B(T-1)N^2 + 13BTN at B=2, T=3, N=4, Din=5.
        XCTAssertEqual(LSTM.flops(batch: 2, time: 3, hidden: 4, input: 5, backward: false), 960 + 512 + 312)
        XCTAssertGreaterThan(LSTM.flops(batch: 2, time: 3, hidden: 4, input: 5, backward: true),
                             2 * LSTM.flops(batch: 2, time: 3, hidden: 4, input: 5, backward: false))
    }
}
