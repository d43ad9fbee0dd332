import XCTest
import FWTestSupport

/// IRNN: forward vs the Float64 reference, every gradient vs central finite
/// differences of the reference (loss <dh, h>), initialisation, shape errors.
final class IRNNTests: XCTestCase {
    struct Case {
        var x: Tensor
        var parameters: IRNNParameters
        var batch: Int, time: Int, hidden: Int, input: Int
    }

    /// x ~ N(0, 1); W ~ N(0, wStd^2) (or the IRNN initialisation when nil); U ~ N(0, 1/Din); b ~ N(0, bStd^2).
    func makeCase(seed: UInt64, batch: Int, time: Int, hidden: Int, input: Int,
                  wStd: Float?, bStd: Float = 0.3) -> Case {
        var rng = SeededRNG(seed: seed)
        var p = IRNNParameters(hidden: hidden, input: input, rng: &rng)
        if let wStd {
            p.W = rng.normalTensor([hidden, hidden], std: wStd)
            p.b = rng.normalTensor([hidden], std: bStd)
        }
        let x = rng.normalTensor([batch, time, input])
        return Case(x: x, parameters: p, batch: batch, time: time, hidden: hidden, input: input)
    }

    func reference(_ c: Case, x: [Double]? = nil, W: [Double]? = nil, U: [Double]? = nil, b: [Double]? = nil)
        -> (h: [Double], z: [Double])
    {
        BaselinesReference.irnn(x: x ?? c.x.storage.asDouble, W: W ?? c.parameters.W.storage.asDouble,
                                U: U ?? c.parameters.U.storage.asDouble, b: b ?? c.parameters.b.storage.asDouble,
                                batch: c.batch, time: c.time, hidden: c.hidden, input: c.input)
    }

    func testForwardMatchesFloat64AtIdentityInitialisation() throws {
        // W = I, b = 0: h grows along the sequence (nothing decays), a hard case for accumulation.
        let c = makeCase(seed: 1, batch: 3, time: 64, hidden: 16, input: 8, wStd: nil)
        let (h, _) = try IRNN.forward(x: c.x, parameters: c.parameters)
        XCTAssertEqual(h.shape, [3, 64, 16])
        let ref = reference(c).h
        assertSpecClose(h.storage, ref, "IRNN h (W = I)")
        print("IRNN forward (W = I, T = 64): max|h - ref| = \(maxAbsDifference(h.storage, ref)), max|ref| = \(ref.map(abs).max()!)")
    }

    func testForwardMatchesFloat64RandomWeightsLongSequence() throws {
        let c = makeCase(seed: 2, batch: 2, time: 300, hidden: 12, input: 5, wStd: 1 / Float(12).squareRoot())
        let (h, _) = try IRNN.forward(x: c.x, parameters: c.parameters)
        let ref = reference(c).h
        assertSpecClose(h.storage, ref, "IRNN h (random W, T = 300)")
        print("IRNN forward (random W, T = 300): max|h - ref| = \(maxAbsDifference(h.storage, ref))")
    }

    func testGradientsMatchFiniteDifferences() throws {
        // relu has a kink at z = 0: use a seed whose pre-activations all stay at least
        // `margin` away from it, so that the finite differences (step 1e-6) never cross it.
        let margin = 1e-3
        var found: Case?
        for seed in UInt64(10)..<UInt64(60) {
            let c = makeCase(seed: seed, batch: 2, time: 6, hidden: 5, input: 4, wStd: 0.6)
            let z = reference(c).z
            if z.allSatisfy({ abs($0) > margin }) && z.contains(where: { $0 < 0 }) && z.contains(where: { $0 > 0 }) {
                found = c
                break
            }
        }
        let c = try XCTUnwrap(found, "no seed with all pre-activations away from relu's kink")
        var rng = SeededRNG(seed: 99)
        let dh = rng.normalTensor([c.batch, c.time, c.hidden])
        let (_, cache) = try IRNN.forward(x: c.x, parameters: c.parameters)
        let g = try IRNN.backward(dh: dh, cache: cache)
        XCTAssertEqual(g.dx.shape, [2, 6, 4])
        XCTAssertEqual(g.dW.shape, [5, 5])
        XCTAssertEqual(g.dU.shape, [5, 4])
        XCTAssertEqual(g.db.shape, [5])
        let errors = assertGradientsMatchFiniteDifferences(
            names: ["dx", "dW", "dU", "db"],
            inputs: [c.x.storage.asDouble, c.parameters.W.storage.asDouble,
                     c.parameters.U.storage.asDouble, c.parameters.b.storage.asDouble],
            analytic: [g.dx.storage, g.dW.storage, g.dU.storage, g.db.storage],
            dh: dh.storage.asDouble, label: "IRNN"
        ) { v in
            self.reference(c, x: v[0], W: v[1], U: v[2], b: v[3]).h
        }
        print("IRNN gradients vs finite differences: \(errors.sorted { $0.key < $1.key })")
    }

    func testGradientIsZeroThroughInactiveUnits() throws {
        // With a large negative bias every unit is off: all gradients are exactly 0.
        var c = makeCase(seed: 3, batch: 2, time: 4, hidden: 3, input: 2, wStd: 0.1)
        c.parameters.b = Tensor(shape: [3], repeating: -100)
        let (h, cache) = try IRNN.forward(x: c.x, parameters: c.parameters)
        XCTAssertEqual(h.maxAbs, 0)
        let g = try IRNN.backward(dh: Tensor(shape: [2, 4, 3], repeating: 1), cache: cache)
        XCTAssertEqual(g.dx.maxAbs + g.dW.maxAbs + g.dU.maxAbs + g.db.maxAbs, 0)
    }

    func testInitialisation() {
        var rng = SeededRNG(seed: 5)
        let p = IRNNParameters(hidden: 64, input: 100, rng: &rng)
        XCTAssertEqual(p.W.shape, [64, 64])
        XCTAssertEqual(p.U.shape, [64, 100])
        XCTAssertEqual(p.b.shape, [64])
        for i in 0..<64 { for j in 0..<64 { XCTAssertEqual(p.W[i, j], i == j ? 1 : 0) } }
        XCTAssertEqual(p.b.maxAbs, 0)
        let variance = p.U.storage.reduce(0) { $0 + Double($1 * $1) } / Double(p.U.count)
        XCTAssertEqual(variance, 1.0 / 100, accuracy: 0.1 / 100)   // N(0, 1/Din)
        let q = IRNNParameters(hidden: 4, input: 3, rng: &rng, recurrentScale: 0.5, inputStd: 0.001)
        XCTAssertEqual(q.W[2, 2], 0.5)
        XCTAssertLessThan(q.U.maxAbs, 0.01)
        XCTAssertEqual(p.hidden, 64)
        XCTAssertEqual(p.input, 100)
    }

    func testShapeErrors() throws {
        let c = makeCase(seed: 4, batch: 2, time: 3, hidden: 4, input: 3, wStd: 0.5)
        let p = c.parameters
        assertShapeMismatch("x") { _ = try IRNN.forward(x: Tensor(shape: [2, 3]), parameters: p) }
        assertShapeMismatch("x") { _ = try IRNN.forward(x: Tensor(shape: [2, 3, 5]), parameters: p) }
        var bad = p
        bad.W = Tensor(shape: [4, 3])
        assertShapeMismatch("W") { _ = try IRNN.forward(x: c.x, parameters: bad) }
        bad = p
        bad.U = Tensor(shape: [5, 3])
        assertShapeMismatch("U") { _ = try IRNN.forward(x: c.x, parameters: bad) }
        bad = p
        bad.U = Tensor(shape: [12])
        assertShapeMismatch("U") { _ = try IRNN.forward(x: c.x, parameters: bad) }
        bad = p
        bad.b = Tensor(shape: [3])
        assertShapeMismatch("b") { _ = try IRNN.forward(x: c.x, parameters: bad) }
        let (_, cache) = try IRNN.forward(x: c.x, parameters: p)
        assertShapeMismatch("dh") { _ = try IRNN.backward(dh: Tensor(shape: [2, 3, 5]), cache: cache) }
        assertShapeMismatch("dh") { _ = try IRNN.backward(dh: Tensor(shape: [6, 4]), cache: cache) }
    }

    func testEmptyBatchAndFlops() throws {
        let c = makeCase(seed: 6, batch: 0, time: 3, hidden: 4, input: 2, wStd: 0.5)
        let (h, cache) = try IRNN.forward(x: c.x, parameters: c.parameters)
        XCTAssertEqual(h.shape, [0, 3, 4])
        let g = try IRNN.backward(dh: h, cache: cache)
        XCTAssertEqual(g.dW.maxAbs, 0)
        // 2BTN Din + 2B(T-1)N^2 + 2BTN at B=2, T=3, N=4, Din=5.
        XCTAssertEqual(IRNN.flops(batch: 2, time: 3, hidden: 4, input: 5, backward: false), 240 + 128 + 48)
        XCTAssertGreaterThan(IRNN.flops(batch: 2, time: 3, hidden: 4, input: 5, backward: true),
                             2 * IRNN.flops(batch: 2, time: 3, hidden: 4, input: 5, backward: false))
    }
}
