import XCTest
import FWTestSupport

/// The gated sum and gated delta rules (docs/contract.md section 4b) through the
/// batched op: recurrent vs chunked vs the Float64 evaluation, every
/// gradient (dq, dk, dv, dbeta, dg, dS_0) vs central finite differences of
/// that evaluation; strong decays (g about -3 per step), T = 1, chunks that
/// do not divide T, S_0 and dS_T.
final class GatedRuleTests: XCTestCase {
    static let rules: [FastWeightRule] = [.gatedSum, .gatedDelta]
    static let maps: [FeatureMap] = [.identity, .silu, .elu1, .dpfp(order: 1), .favor(features: 3)]
    static let norms: [FeatureNormalization] = [.none, .sum, .l2]

    struct Inputs {
        var q, k, v: Tensor
        var gates: FWPGates
        var omega: Tensor?
        var s0: Tensor?
        var dy: Tensor
        var dsT: Tensor?
    }

    /// g uniform in [gLow, gHigh] (<= 0); beta in (0, 1) for the delta rule.
    func makeInputs(_ rule: FastWeightRule, _ map: FeatureMap, B: Int, H: Int, T: Int, dk: Int, dv: Int,
                    gLow: Float, gHigh: Float, initialState: Bool, finalGradient: Bool, seed: UInt64) -> Inputs {
        var rng = SeededRNG(seed: seed)
        let dphi = map.outputSize(inputSize: dk)
        let scale: Float = { if case .favor = map { return 0.5 } else { return 1 } }()
        var gates = FWPGates()
        if rule.needs(.beta) { gates.beta = rng.uniformTensor([B, H, T]) }
        var g = rng.uniformTensor([B, H, T])
        for i in 0..<g.count { g.storage[i] = gLow + (gHigh - gLow) * g.storage[i] }
        gates.g = g
        return Inputs(
            q: rng.normalTensor([B, H, T, dk], std: scale), k: rng.normalTensor([B, H, T, dk], std: scale),
            v: rng.normalTensor([B, H, T, dv]), gates: gates,
            omega: { if case let .favor(m) = map { return rng.normalTensor([m, dk]) } else { return nil } }(),
            s0: initialState ? rng.normalTensor([B, H, dv, dphi], std: 0.5) : nil,
            dy: rng.normalTensor([B, H, T, dv]),
            dsT: finalGradient ? rng.normalTensor([B, H, dv, dphi]) : nil)
    }

    func reference(_ op: FastWeightProgrammer, _ x: Inputs) -> ReferenceFWP {
        ReferenceFWP(rule: op.rule, map: op.featureMap, norm: op.normalization, denominator: false,
                     B: x.q.shape[0], H: x.q.shape[1], T: x.q.shape[2], dk: x.q.shape[3], dv: x.v.shape[3])
    }

    func run(_ op: FastWeightProgrammer, _ x: Inputs) throws -> (FWPResult, FWPGradients) {
        let r = try op.forward(q: x.q, k: x.k, v: x.v, gates: x.gates, omega: x.omega, initialState: x.s0)
        return (r, try FastWeightProgrammer.backward(dy: x.dy, dstate: x.dsT, cache: r.cache!))
    }

    /// Both algorithms vs Float64 (forward) and vs each other (every output and gradient).
    func checkAlgorithms(_ rule: FastWeightRule, _ map: FeatureMap, _ norm: FeatureNormalization, T: Int, chunk: Int,
                         gLow: Float = -1, gHigh: Float = 0, initialState: Bool, seed: UInt64,
                         B: Int = 2, H: Int = 2, dk: Int = 4, dv: Int = 3) throws {
        let x = makeInputs(rule, map, B: B, H: H, T: T, dk: dk, dv: dv, gLow: gLow, gHigh: gHigh,
                           initialState: initialState, finalGradient: true, seed: seed)
        let label = "\(rule) \(map) \(norm) T=\(T) chunk=\(chunk) g in [\(gLow), \(gHigh)] s0=\(initialState)"
        var out: [String: (FWPResult, FWPGradients)] = [:]
        for algorithm in [FWPAlgorithm.recurrent, .chunked(size: chunk)] {
            let op = try FastWeightProgrammer(rule: rule, featureMap: map, normalization: norm, algorithm: algorithm)
            let (r, g) = try run(op, x)
            out[algorithm.name] = (r, g)
            let (y, s) = reference(op, x).evaluate(
                q: x.q.storage.asDouble, k: x.k.storage.asDouble, v: x.v.storage.asDouble,
                beta: x.gates.beta?.storage.asDouble ?? [], g: x.gates.g!.storage.asDouble,
                omega: x.omega?.storage.asDouble ?? [], initialState: x.s0?.storage.asDouble)
            assertSpecClose(r.y.storage, y, "\(label) \(algorithm.name) y vs Float64")
            assertSpecClose(r.state.storage, s, "\(label) \(algorithm.name) state vs Float64")
            XCTAssertTrue(r.y.storage.allSatisfy(\.isFinite) && g.dg!.storage.allSatisfy(\.isFinite), "\(label) finite")
        }
        let (rr, gr) = out["recurrent"]!, (rc, gc) = out["chunked"]!
        assertSpecClose(rc.y.storage, rr.y.storage, "\(label) y chunked vs recurrent")
        assertSpecClose(rc.state.storage, rr.state.storage, "\(label) state chunked vs recurrent")
        for (name, a, b) in [("dq", gc.dq, gr.dq), ("dk", gc.dk, gr.dk), ("dv", gc.dv, gr.dv),
                             ("dS0", gc.dstate, gr.dstate), ("dg", gc.dg!, gr.dg!)] {
            assertSpecClose(a.storage, b.storage, "\(label) \(name) chunked vs recurrent")
        }
        if rule.needs(.beta) { assertSpecClose(gc.dbeta!.storage, gr.dbeta!.storage, "\(label) dbeta chunked vs recurrent") }
        XCTAssertNil(gc.dbeta == nil ? nil : (rule.needs(.beta) ? nil : "dbeta"), "\(label): dbeta only for delta rules")
    }

    func testEveryCombinationAgreesWithFloat64AcrossAlgorithms() throws {
        var seed: UInt64 = 1000
        for rule in Self.rules {
            for map in Self.maps {
                for norm in Self.norms where !(norm == .sum && !map.isNonNegative) {
                    // Unnormalised keys make the delta rules unstable by nature: T <= 16 there.
                    let lengths = rule == .gatedDelta && norm == .none ? [1, 7, 16] : [1, 7, 70]
                    for T in lengths {
                        for initialState in [false, true] {
                            seed += 1
                            try checkAlgorithms(rule, map, norm, T: T, chunk: 16, initialState: initialState, seed: seed)
                        }
                    }
                }
            }
        }
    }

    /// g about -3 per step: G_C is near -100 inside a 32-step chunk; exp(G_i) * exp(-G_j)
    /// would overflow Float32 there, one exponent does not.
    func testStrongDecayStaysFiniteAndAgrees() throws {
        for rule in Self.rules {
            for (T, chunk) in [(100, 32), (64, 64), (45, 16)] {
                try checkAlgorithms(rule, .elu1, .l2, T: T, chunk: chunk, gLow: -3.5, gHigh: -2.5,
                                    initialState: true, seed: 77 + UInt64(T))
            }
        }
    }

    func testChunkSizesThatDoNotDivideT() throws {
        for rule in Self.rules {
            for chunk in [1, 3, 16, 64] {
                try checkAlgorithms(rule, .elu1, .sum, T: 45, chunk: chunk, initialState: true, seed: 7)
                try checkAlgorithms(rule, .dpfp(order: 2), .l2, T: 45, chunk: chunk, initialState: false, seed: 8)
            }
        }
    }

    /// Every gradient vs central finite differences of the Float64 reference.
    func testGradientsMatchFiniteDifferences() throws {
        var seed: UInt64 = 3000
        for rule in Self.rules {
            for map in Self.maps {
                for norm in Self.norms where !(norm == .sum && !map.isNonNegative) {
                    for (gLow, gHigh) in [(Float(-1), Float(0)), (-3.5, -2.5)] {
                        seed += 1
                        try checkFiniteDifferences(rule, map, norm, gLow: gLow, gHigh: gHigh, seed: seed)
                    }
                }
            }
        }
    }

    func checkFiniteDifferences(_ rule: FastWeightRule, _ map: FeatureMap, _ norm: FeatureNormalization,
                                gLow: Float, gHigh: Float, seed: UInt64, T: Int = 5) throws {
        let (B, H, dk, dv) = (1, 2, 3, 2)
        let x = makeInputs(rule, map, B: B, H: H, T: T, dk: dk, dv: dv, gLow: gLow, gHigh: gHigh,
                           initialState: true, finalGradient: true, seed: seed)
        for algorithm in [FWPAlgorithm.recurrent, .chunked(size: 2)] {
            let op = try FastWeightProgrammer(rule: rule, featureMap: map, normalization: norm, algorithm: algorithm)
            let (_, g) = try run(op, x)
            let ref = reference(op, x)
            let q = x.q.storage.asDouble, k = x.k.storage.asDouble, v = x.v.storage.asDouble
            let beta = x.gates.beta?.storage.asDouble ?? [], gg = x.gates.g!.storage.asDouble
            let omega = x.omega?.storage.asDouble ?? []
            let s0 = x.s0!.storage.asDouble, dy = x.dy.storage.asDouble, ds = x.dsT?.storage.asDouble
            func loss(q: [Double], k: [Double], v: [Double], beta: [Double], g: [Double], s0: [Double]) -> Double {
                ref.loss(q: q, k: k, v: v, beta: beta, g: g, omega: omega, initialState: s0, dy: dy, dstate: ds)
            }
            let label = "\(rule) \(map) \(norm) g in [\(gLow), \(gHigh)] \(algorithm.name)"
            assertSpecClose(g.dq.storage, centralDifferences(at: q) { loss(q: $0, k: k, v: v, beta: beta, g: gg, s0: s0) }, "\(label) dq vs FD")
            assertSpecClose(g.dk.storage, centralDifferences(at: k) { loss(q: q, k: $0, v: v, beta: beta, g: gg, s0: s0) }, "\(label) dk vs FD")
            assertSpecClose(g.dv.storage, centralDifferences(at: v) { loss(q: q, k: k, v: $0, beta: beta, g: gg, s0: s0) }, "\(label) dv vs FD")
            assertSpecClose(g.dg!.storage, centralDifferences(at: gg) { loss(q: q, k: k, v: v, beta: beta, g: $0, s0: s0) }, "\(label) dg vs FD")
            if rule.needs(.beta) {
                assertSpecClose(g.dbeta!.storage, centralDifferences(at: beta) { loss(q: q, k: k, v: v, beta: $0, g: gg, s0: s0) }, "\(label) dbeta vs FD")
            }
            assertSpecClose(g.dstate.storage, centralDifferences(at: s0) { loss(q: q, k: k, v: v, beta: beta, g: gg, s0: $0) }, "\(label) dS0 vs FD")
        }
    }

    /// A long run (T = 2048, the contract's largest length) against Float64, both algorithms.
    func testLongSequence() throws {
        for rule in Self.rules {
            try checkAlgorithms(rule, .elu1, .l2, T: 2048, chunk: 64, gLow: -0.2, gHigh: 0, initialState: true, seed: 41,
                                B: 1, H: 1, dk: 8, dv: 8)
        }
    }

    /// The registry lists each rule's gates; the validator follows it.
    func testRegistryGates() throws {
        XCTAssertEqual(FastWeightRule.sum.gates, [])
        XCTAssertEqual(FastWeightRule.delta.gates, [.beta])
        XCTAssertEqual(FastWeightRule.gatedSum.gates, [.g])
        XCTAssertEqual(FastWeightRule.gatedDelta.gates, [.beta, .g])
        XCTAssertEqual(try FastWeightRule(parsing: "gated-delta"), .gatedDelta)
        for rule in FastWeightRule.allCases {
            XCTAssertNoThrow(try rule.checkGates(given: rule.gates))
            XCTAssertEqual(rule.allowsDenominator, rule == .sum)
            for gate in FWPGate.allCases where !rule.needs(gate) {
                XCTAssertThrowsError(try rule.checkGates(given: rule.gates + [gate]))
            }
            for gate in rule.gates {
                XCTAssertThrowsError(try rule.checkGates(given: rule.gates.filter { $0 != gate }))
            }
        }
    }

    /// T = 1 (one partial chunk) and a chunk longer than T.
    func testLengthOne() throws {
        for rule in Self.rules {
            try checkAlgorithms(rule, .elu1, .l2, T: 1, chunk: 64, initialState: true, seed: 5)
            try checkFiniteDifferences(rule, .elu1, .l2, gLow: -1, gHigh: 0, seed: 6, T: 1)
        }
    }

    /// beta in (0, 2) (negative eigenvalues) is taken as given.
    func testBetaUpToTwo() throws {
        var x = makeInputs(.gatedDelta, .elu1, B: 1, H: 2, T: 20, dk: 4, dv: 3, gLow: -1, gHigh: 0,
                           initialState: true, finalGradient: true, seed: 21)
        for i in 0..<x.gates.beta!.count { x.gates.beta!.storage[i] *= 2 }
        let rec = try run(FastWeightProgrammer(rule: .gatedDelta, featureMap: .elu1, normalization: .l2, algorithm: .recurrent), x)
        let chk = try run(FastWeightProgrammer(rule: .gatedDelta, featureMap: .elu1, normalization: .l2, algorithm: .chunked(size: 8)), x)
        assertSpecClose(chk.0.y.storage, rec.0.y.storage, "y, beta in (0, 2)")
        assertSpecClose(chk.1.dk.storage, rec.1.dk.storage, "dk, beta in (0, 2)")
        assertSpecClose(chk.1.dg!.storage, rec.1.dg!.storage, "dg, beta in (0, 2)")
    }

    /// g = 0 everywhere is the ungated rule.
    func testZeroDecayIsTheUngatedRule() throws {
        for (gated, plain) in [(FastWeightRule.gatedSum, FastWeightRule.sum), (.gatedDelta, .delta)] {
            let x = makeInputs(gated, .elu1, B: 1, H: 2, T: 30, dk: 4, dv: 3, gLow: 0, gHigh: 0,
                               initialState: true, finalGradient: true, seed: 31)
            for algorithm in [FWPAlgorithm.recurrent, .chunked(size: 8)] {
                let a = try run(FastWeightProgrammer(rule: gated, featureMap: .elu1, normalization: .sum, algorithm: algorithm), x)
                let b = try run(FastWeightProgrammer(rule: plain, featureMap: .elu1, normalization: .sum, algorithm: algorithm),
                                Inputs(q: x.q, k: x.k, v: x.v, gates: FWPGates(beta: x.gates.beta), omega: nil, s0: x.s0, dy: x.dy, dsT: x.dsT))
                assertSpecClose(a.0.y.storage, b.0.y.storage, "\(gated) g = 0 vs \(plain) y")
                assertSpecClose(a.1.dk.storage, b.1.dk.storage, "\(gated) g = 0 vs \(plain) dk")
            }
        }
    }

    func testGateErrors() throws {
        let op = try FastWeightProgrammer(rule: .gatedDelta, featureMap: .elu1, normalization: .sum)
        let x = makeInputs(.gatedDelta, .elu1, B: 1, H: 2, T: 5, dk: 3, dv: 4, gLow: -1, gHigh: 0,
                           initialState: false, finalGradient: false, seed: 3)
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message { _ = try op.forward(q: x.q, k: x.k, v: x.v, beta: x.gates.beta) }.contains("needs g"))
        XCTAssertTrue(message { _ = try op.forward(q: x.q, k: x.k, v: x.v, g: x.gates.g) }.contains("needs beta"))
        var g = x.gates.g!
        g[0, 1, 2] = 0.5
        XCTAssertEqual(message { _ = try op.forward(q: x.q, k: x.k, v: x.v, beta: x.gates.beta, g: g) },
                       "g[7] = 0.5 is above 0 (a log-decay g_t must be <= 0)")
        g[0, 1, 2] = .nan
        XCTAssertEqual(message { _ = try op.forward(q: x.q, k: x.k, v: x.v, beta: x.gates.beta, g: g) },
                       "g: non-finite value nan at index [0, 1, 2]")
        let sum = try FastWeightProgrammer(rule: .sum, featureMap: .elu1, normalization: .sum)
        XCTAssertTrue(message { _ = try sum.forward(q: x.q, k: x.k, v: x.v, g: x.gates.g) }.contains("g is for the gated-sum, gated-delta rules only"))
        XCTAssertTrue(message { _ = try FastWeightProgrammer(rule: .gatedSum, featureMap: .elu1, denominator: true) }.contains("gated-sum"))
        XCTAssertThrowsError(try FastWeightLayerConfig(modelSize: 8, heads: 2, headSize: 4, rule: .gatedDelta, featureMap: .elu1).validate())
    }
}
