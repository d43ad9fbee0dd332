import XCTest
import FWTestSupport

/// Associative LSTM: forward vs the Float64 reference, every gradient vs central
/// finite differences of the reference (loss <dh, h>), both branches of `bound`,
/// permutations, initialisation, shape errors.
final class AssociativeLSTMTests: XCTestCase {
    struct Case {
        var x: Tensor
        var parameters: AssociativeLSTMParameters
        var batch: Int, time: Int, hidden: Int, input: Int
    }

    /// x ~ N(0, 1); the initialisation, or with `scale` W, U ~ U(-scale, scale) and
    /// b ~ N(0, 0.5^2) plus `forgetBias` on the forget gate.
    func makeCase(seed: UInt64, batch: Int, time: Int, hidden: Int, input: Int, copies: Int,
                  scale: Float? = nil, forgetBias: Float = 1) -> Case {
        var rng = SeededRNG(seed: seed)
        var p = AssociativeLSTMParameters(hidden: hidden, input: input, copies: copies, rng: &rng,
                                          forgetBias: forgetBias)
        let rows = 9 * hidden / 2
        if let scale {
            p.W = rng.uniformTensor([rows, hidden], low: -scale, high: scale)
            p.U = rng.uniformTensor([rows, input], low: -scale, high: scale)
            p.b = rng.normalTensor([rows], std: 0.5)
            for j in (hidden / 2)..<hidden { p.b.storage[j] += forgetBias }
        }
        let x = rng.normalTensor([batch, time, input])
        return Case(x: x, parameters: p, batch: batch, time: time, hidden: hidden, input: input)
    }

    func reference(_ c: Case, x: [Double]? = nil, W: [Double]? = nil, U: [Double]? = nil, b: [Double]? = nil)
        -> (h: [Double], inputModuli: [Double], readModuli: [Double])
    {
        BaselinesReference.associativeLSTM(
            x: x ?? c.x.storage.asDouble, W: W ?? c.parameters.W.storage.asDouble,
            U: U ?? c.parameters.U.storage.asDouble, b: b ?? c.parameters.b.storage.asDouble,
            permutations: c.parameters.permutations,
            batch: c.batch, time: c.time, hidden: c.hidden, input: c.input)
    }

    func testForwardMatchesFloat64() throws {
        for (seed, copies, scale, fb) in [(UInt64(1), 4, Float?.none, Float(1)), (2, 3, 0.6, 1), (3, 2, 1.2, 3)] {
            let c = makeCase(seed: seed, batch: 3, time: 30, hidden: 16, input: 5, copies: copies,
                             scale: scale, forgetBias: fb)
            let (h, cache) = try AssociativeLSTM.forward(x: c.x, parameters: c.parameters)
            XCTAssertEqual(h.shape, [3, 30, 16])
            XCTAssertEqual(cache.cells.shape, [3, 30, copies, 16])
            XCTAssertEqual(cache.preactivations.shape, [3, 30, 72])
            let ref = reference(c).h
            assertSpecClose(h.storage, ref, "associative LSTM h (seed \(seed))")
            print("AssociativeLSTM forward (seed \(seed), copies \(copies)): max|h - ref| = \(maxAbsDifference(h.storage, ref))")
        }
    }

    func testForwardMatchesFloat64LongSequence() throws {
        let c = makeCase(seed: 4, batch: 2, time: 500, hidden: 8, input: 3, copies: 3, scale: 0.8, forgetBias: 3)
        let (h, _) = try AssociativeLSTM.forward(x: c.x, parameters: c.parameters)
        let ref = reference(c).h
        assertSpecClose(h.storage, ref, "associative LSTM h (T = 500)")
        print("AssociativeLSTM forward (T = 500): max|h - ref| = \(maxAbsDifference(h.storage, ref))")
    }

    /// A case whose every `bound` input is at least `margin` away from the kink at
    /// |z| = 1 (so that finite differences never cross it), with inputs on both
    /// sides of it, and with reads on both sides when `readsOutside`.
    func gradientCase(seeds: Range<UInt64>, copies: Int, scale: Float, forgetBias: Float,
                      readsOutside: Bool) -> Case? {
        let margin = 1e-3
        for seed in seeds {
            let c = makeCase(seed: seed, batch: 2, time: 5, hidden: 6, input: 4, copies: copies,
                             scale: scale, forgetBias: forgetBias)
            let r = reference(c)
            let all = r.inputModuli + r.readModuli
            guard all.allSatisfy({ abs($0 - 1) > margin }) else { continue }
            guard r.inputModuli.contains(where: { $0 > 1 }), r.inputModuli.contains(where: { $0 < 1 }) else { continue }
            if readsOutside && !(r.readModuli.contains(where: { $0 > 1 }) && r.readModuli.contains(where: { $0 < 1 })) {
                continue
            }
            return c
        }
        return nil
    }

    func testGradientsMatchFiniteDifferences() throws {
        let cases = [
            ("3 copies", gradientCase(seeds: 10..<60, copies: 3, scale: 0.6, forgetBias: 1, readsOutside: false)),
            ("2 copies, reads outside the unit disc",
             gradientCase(seeds: 60..<110, copies: 2, scale: 1.2, forgetBias: 3, readsOutside: true)),
        ]
        for (label, found) in cases {
            let c = try XCTUnwrap(found, "no seed away from bound's kink (\(label))")
            var rng = SeededRNG(seed: 99)
            let dh = rng.normalTensor([c.batch, c.time, c.hidden])
            let (_, cache) = try AssociativeLSTM.forward(x: c.x, parameters: c.parameters)
            let g = try AssociativeLSTM.backward(dh: dh, cache: cache)
            XCTAssertEqual(g.dx.shape, [2, 5, 4])
            XCTAssertEqual(g.dW.shape, [27, 6])
            XCTAssertEqual(g.dU.shape, [27, 4])
            XCTAssertEqual(g.db.shape, [27])
            let errors = assertGradientsMatchFiniteDifferences(
                names: ["dx", "dW", "dU", "db"],
                inputs: [c.x.storage.asDouble, c.parameters.W.storage.asDouble,
                         c.parameters.U.storage.asDouble, c.parameters.b.storage.asDouble],
                analytic: [g.dx.storage, g.dW.storage, g.dU.storage, g.db.storage],
                dh: dh.storage.asDouble, label: "associative LSTM (\(label))"
            ) { v in
                self.reference(c, x: v[0], W: v[1], U: v[2], b: v[3]).h
            }
            print("AssociativeLSTM gradients vs finite differences (\(label)): \(errors.sorted { $0.key < $1.key })")
        }
    }

    func testSingleCopyWithIdentityPermutationIsPlainHRR() throws {
        // One copy, P = identity, W = 0, U = 0: constant gates and keys from the biases.
        // Then c_t = g_f c_{t-1} + r_i * (g_i u) and h_t = g_o bound(r_o * c_t), in closed form.
        let H = 2, n = 4
        var b = [Float](repeating: 0, count: 9 * H)
        b[0] = 0.3; b[1] = -0.2          // a_i
        b[2] = 1.0; b[3] = 0.5           // a_f
        b[4] = -0.4; b[5] = 0.7          // a_o
        b[6] = 0.6; b[7] = -0.3; b[8] = 0.2; b[9] = 0.9      // r_i: re 0.6, -0.3; im 0.2, 0.9
        b[10] = 0.1; b[11] = 0.8; b[12] = -0.7; b[13] = 0.4  // r_o
        b[14] = 1.5; b[15] = 0.2; b[16] = 0.5; b[17] = -0.1  // u (first entry outside the unit disc)
        let p = AssociativeLSTMParameters(W: Tensor(shape: [9 * H, n]), U: Tensor(shape: [9 * H, 1]),
                                          b: Tensor(shape: [9 * H], storage: b), permutations: [[0, 1]])
        let (h, _) = try AssociativeLSTM.forward(x: Tensor(shape: [1, 3, 1]), parameters: p)
        func sig(_ z: Double) -> Double { 1 / (1 + exp(-z)) }
        func bound(_ re: Double, _ im: Double) -> (Double, Double) {
            let r = (re * re + im * im).squareRoot()
            return r > 1 ? (re / r, im / r) : (re, im)
        }
        let bd = b.map(Double.init)
        for j in 0..<H {
            let gi = sig(bd[j]), gf = sig(bd[H + j]), go = sig(bd[2 * H + j])
            let ri = bound(bd[3 * H + j], bd[4 * H + j])
            let ro = bound(bd[5 * H + j], bd[6 * H + j])
            let u = bound(bd[7 * H + j], bd[8 * H + j])
            let w = (ri.0 * gi * u.0 - ri.1 * gi * u.1, ri.0 * gi * u.1 + ri.1 * gi * u.0)
            var c = (0.0, 0.0)
            for t in 0..<3 {
                c = (gf * c.0 + w.0, gf * c.1 + w.1)
                let y = bound(ro.0 * c.0 - ro.1 * c.1, ro.0 * c.1 + ro.1 * c.0)
                XCTAssertEqual(Double(h[0, t, j]), go * y.0, accuracy: 1e-6, "re t=\(t) j=\(j)")
                XCTAssertEqual(Double(h[0, t, H + j]), go * y.1, accuracy: 1e-6, "im t=\(t) j=\(j)")
            }
        }
    }

    func testPermutationsMatter() throws {
        // Same weights, different permutations: different outputs (the copies are not redundant clones).
        var c = makeCase(seed: 8, batch: 1, time: 6, hidden: 8, input: 3, copies: 2, scale: 0.8)
        let (h1, _) = try AssociativeLSTM.forward(x: c.x, parameters: c.parameters)
        c.parameters.permutations = [[0, 1, 2, 3], [3, 2, 1, 0]]
        let (h2, _) = try AssociativeLSTM.forward(x: c.x, parameters: c.parameters)
        assertSpecClose(h2.storage, reference(c).h, "associative LSTM h (given permutations)")
        XCTAssertGreaterThan(zip(h1.storage, h2.storage).map { abs($0 - $1) }.max()!, 1e-3)
    }

    func testInitialisation() {
        var rng = SeededRNG(seed: 5)
        let p = AssociativeLSTMParameters(hidden: 16, input: 7, copies: 4, rng: &rng)
        XCTAssertEqual(p.W.shape, [72, 16])
        XCTAssertEqual(p.U.shape, [72, 7])
        XCTAssertEqual(p.b.shape, [72])
        XCTAssertEqual(p.hidden, 16)
        XCTAssertEqual(p.input, 7)
        XCTAssertEqual(p.copies, 4)
        XCTAssertLessThanOrEqual(p.W.maxAbs, 0.25)
        for j in 0..<72 { XCTAssertEqual(p.b[j], (8..<16).contains(j) ? 1 : 0, "bias \(j)") }
        for perm in p.permutations { XCTAssertEqual(perm.sorted(), Array(0..<8)) }
        XCTAssertEqual(Set(p.permutations.map { $0 }).count, 4, "4 distinct permutations expected")
        var again = SeededRNG(seed: 5)
        XCTAssertEqual(AssociativeLSTMParameters(hidden: 16, input: 7, copies: 4, rng: &again), p)
    }

    func testShapeAndArgumentErrors() throws {
        let c = makeCase(seed: 4, batch: 2, time: 3, hidden: 4, input: 3, copies: 2)
        let p = c.parameters
        assertShapeMismatch("x") { _ = try AssociativeLSTM.forward(x: Tensor(shape: [2, 3]), parameters: p) }
        assertShapeMismatch("x") { _ = try AssociativeLSTM.forward(x: Tensor(shape: [2, 3, 2]), parameters: p) }
        var bad = p
        bad.W = Tensor(shape: [18, 5])   // N odd
        assertShapeMismatch("W") { _ = try AssociativeLSTM.forward(x: c.x, parameters: bad) }
        bad = p
        bad.W = Tensor(shape: [16, 4])
        assertShapeMismatch("W") { _ = try AssociativeLSTM.forward(x: c.x, parameters: bad) }
        bad = p
        bad.U = Tensor(shape: [16, 3])
        assertShapeMismatch("U") { _ = try AssociativeLSTM.forward(x: c.x, parameters: bad) }
        bad = p
        bad.b = Tensor(shape: [17])
        assertShapeMismatch("b") { _ = try AssociativeLSTM.forward(x: c.x, parameters: bad) }
        for perms in [[[Int]](), [[0, 0]], [[0, 1, 2]], [[1, 2]]] {
            bad = p
            bad.permutations = perms
            XCTAssertThrowsError(try AssociativeLSTM.forward(x: c.x, parameters: bad)) { e in
                guard case FWError.invalidArgument(let m)? = e as? FWError else {
                    return XCTFail("expected invalidArgument, got \(e)")
                }
                XCTAssertTrue(m.hasPrefix("permutations"), m)
            }
        }
        let (_, cache) = try AssociativeLSTM.forward(x: c.x, parameters: p)
        assertShapeMismatch("dh") { _ = try AssociativeLSTM.backward(dh: Tensor(shape: [2, 3, 2]), cache: cache) }
    }

    func testFlops() {
        // 18BT H Din + 18B(T-1) H N + BTH(30 + 18K) at B=2, T=3, N=4 (H=2), Din=5, K=2.
        XCTAssertEqual(AssociativeLSTM.flops(batch: 2, time: 3, hidden: 4, input: 5, copies: 2, backward: false),
                       1080 + 576 + 12 * 66)
        XCTAssertGreaterThan(
            AssociativeLSTM.flops(batch: 2, time: 3, hidden: 4, input: 5, copies: 2, backward: true),
            2 * AssociativeLSTM.flops(batch: 2, time: 3, hidden: 4, input: 5, copies: 2, backward: false))
    }
}
