import XCTest
import FWTestSupport

/// The batched op end to end (phi, n, rule, denominator, batching, state
/// layout): recurrent vs chunked vs the Float64 evaluation of docs/contract.md, and
/// every gradient vs central finite differences of that evaluation, for
/// every valid phi x norm x rule combination.
final class FastWeightProgrammerTests: XCTestCase {
    static let maps: [FeatureMap] = [.identity, .silu, .elu1, .dpfp(order: 1), .dpfp(order: 3), .favor(features: 3)]
    static let norms: [FeatureNormalization] = [.none, .sum, .l2]

    /// Every valid (rule, phi, norm, denominator) combination.
    static var combinations: [(FastWeightRule, FeatureMap, FeatureNormalization, Bool)] {
        var all: [(FastWeightRule, FeatureMap, FeatureNormalization, Bool)] = []
        for map in maps {
            for norm in norms where !(norm == .sum && !map.isNonNegative) {
                all.append((.sum, map, norm, false))
                if map.isNonNegative { all.append((.sum, map, norm, true)) }
                all.append((.delta, map, norm, false))
            }
        }
        return all
    }

    struct Inputs {
        var q, k, v: Tensor
        var beta: Tensor?
        var omega: Tensor?
        var s0: Tensor?
        var dy: Tensor
        var dsT: Tensor?
    }

    func makeInputs(_ rule: FastWeightRule, _ map: FeatureMap, B: Int, H: Int, T: Int, dk: Int, dv: Int,
                    initialState: Bool, finalGradient: Bool, seed: UInt64) -> Inputs {
        var rng = SeededRNG(seed: seed)
        let dphi = map.outputSize(inputSize: dk)
        // favor: keep |x| moderate so features are not vanishingly small (contract: d <= 16).
        let scale: Float = { if case .favor = map { return 0.5 } else { return 1 } }()
        return Inputs(
            q: rng.normalTensor([B, H, T, dk], std: scale), k: rng.normalTensor([B, H, T, dk], std: scale),
            v: rng.normalTensor([B, H, T, dv]),
            beta: rule == .delta ? rng.uniformTensor([B, H, T]) : nil,
            omega: { if case let .favor(m) = map { return rng.normalTensor([m, dk]) } else { return nil } }(),
            s0: initialState ? rng.normalTensor([B, H, dv, dphi], std: 0.5) : nil,
            dy: rng.normalTensor([B, H, T, dv]),
            dsT: finalGradient ? rng.normalTensor([B, H, dv, dphi]) : nil)
    }

    func reference(_ op: FastWeightProgrammer, _ x: Inputs) -> ReferenceFWP {
        ReferenceFWP(rule: op.rule, map: op.featureMap, norm: op.normalization, denominator: op.denominator,
                     B: x.q.shape[0], H: x.q.shape[1], T: x.q.shape[2], dk: x.q.shape[3], dv: x.v.shape[3])
    }

    /// Forward and backward of both algorithms against the Float64 reference.
    func checkForwardAndBackward(_ rule: FastWeightRule, _ map: FeatureMap, _ norm: FeatureNormalization,
                                 _ denominator: Bool, T: Int, chunk: Int, initialState: Bool, seed: UInt64,
                                 B: Int = 2, H: Int = 2, dk: Int = 4, dv: Int = 3) throws {
        let x = makeInputs(rule, map, B: B, H: H, T: T, dk: dk, dv: dv, initialState: initialState && !denominator,
                           finalGradient: true, seed: seed)
        let label = "\(rule) \(map) \(norm)\(denominator ? " denominator" : "") T=\(T) chunk=\(chunk) s0=\(x.s0 != nil)"
        var results: [String: (FWPResult, FWPGradients)] = [:]
        for algorithm in [FWPAlgorithm.recurrent, .chunked(size: chunk)] {
            let op = try FastWeightProgrammer(rule: rule, featureMap: map, normalization: norm,
                                              denominator: denominator, algorithm: algorithm)
            let r = try op.forward(q: x.q, k: x.k, v: x.v, beta: x.beta, omega: x.omega, initialState: x.s0)
            let g = try FastWeightProgrammer.backward(dy: x.dy, dstate: x.dsT, cache: r.cache!)
            results[algorithm.name] = (r, g)
            let ref = reference(op, x)
            let (y, s) = ref.evaluate(q: x.q.storage.asDouble, k: x.k.storage.asDouble, v: x.v.storage.asDouble,
                                      beta: x.beta?.storage.asDouble ?? [], omega: x.omega?.storage.asDouble ?? [],
                                      initialState: x.s0?.storage.asDouble)
            assertSpecClose(r.y.storage, y, "\(label) \(algorithm.name) y vs Float64")
            assertSpecClose(r.state.storage, s, "\(label) \(algorithm.name) state vs Float64")
        }
        let (rr, gr) = results["recurrent"]!, (rc, gc) = results["chunked"]!
        assertSpecClose(rc.y.storage, rr.y.storage, "\(label) y chunked vs recurrent")
        assertSpecClose(rc.state.storage, rr.state.storage, "\(label) state chunked vs recurrent")
        assertSpecClose(gc.dq.storage, gr.dq.storage, "\(label) dq chunked vs recurrent")
        assertSpecClose(gc.dk.storage, gr.dk.storage, "\(label) dk chunked vs recurrent")
        assertSpecClose(gc.dv.storage, gr.dv.storage, "\(label) dv chunked vs recurrent")
        assertSpecClose(gc.dstate.storage, gr.dstate.storage, "\(label) dS0 chunked vs recurrent")
        if rule == .delta { assertSpecClose(gc.dbeta!.storage, gr.dbeta!.storage, "\(label) dbeta chunked vs recurrent") }
    }

    func testEveryCombinationAgreesWithFloat64AcrossAlgorithms() throws {
        var seed: UInt64 = 100
        for (rule, map, norm, den) in Self.combinations {
            // Unnormalised keys make the delta rule unstable by nature (docs/contract.md section 7): T <= 16 there.
            let lengths = rule == .delta && norm == .none ? [1, 7, 16] : [1, 7, 70]
            for T in lengths {
                for initialState in [false, true] where !(den && initialState) {
                    seed += 1
                    try checkForwardAndBackward(rule, map, norm, den, T: T, chunk: 16, initialState: initialState, seed: seed)
                }
            }
        }
    }

    func testChunkSizesThatDoNotDivideT() throws {
        for chunk in [1, 3, 16, 64] {
            try checkForwardAndBackward(.delta, .elu1, .sum, false, T: 45, chunk: chunk, initialState: true, seed: 7)
            try checkForwardAndBackward(.sum, .dpfp(order: 2), .sum, true, T: 45, chunk: chunk, initialState: false, seed: 8)
        }
    }

    /// Every gradient vs central finite differences of the Float64 reference.
    func testGradientsMatchFiniteDifferencesForEveryCombination() throws {
        var seed: UInt64 = 500
        for (rule, map, norm, den) in Self.combinations {
            seed += 1
            let (B, H, T, dk, dv) = (1, 2, 5, 3, 2)
            let x = makeInputs(rule, map, B: B, H: H, T: T, dk: dk, dv: dv, initialState: !den, finalGradient: true, seed: seed)
            for algorithm in [FWPAlgorithm.recurrent, .chunked(size: 2)] {
                let op = try FastWeightProgrammer(rule: rule, featureMap: map, normalization: norm, denominator: den,
                                                  algorithm: algorithm)
                let r = try op.forward(q: x.q, k: x.k, v: x.v, beta: x.beta, omega: x.omega, initialState: x.s0)
                let g = try FastWeightProgrammer.backward(dy: x.dy, dstate: x.dsT, cache: r.cache!)
                let ref = reference(op, x)
                let q = x.q.storage.asDouble, k = x.k.storage.asDouble, v = x.v.storage.asDouble
                let beta = x.beta?.storage.asDouble ?? [], omega = x.omega?.storage.asDouble ?? []
                let s0 = x.s0?.storage.asDouble, dy = x.dy.storage.asDouble, ds = x.dsT?.storage.asDouble
                let label = "\(rule) \(map) \(norm)\(den ? " denominator" : "") \(algorithm.name)"
                assertSpecClose(g.dq.storage, centralDifferences(at: q) {
                    ref.loss(q: $0, k: k, v: v, beta: beta, omega: omega, initialState: s0, dy: dy, dstate: ds) }, "\(label) dq vs FD")
                assertSpecClose(g.dk.storage, centralDifferences(at: k) {
                    ref.loss(q: q, k: $0, v: v, beta: beta, omega: omega, initialState: s0, dy: dy, dstate: ds) }, "\(label) dk vs FD")
                assertSpecClose(g.dv.storage, centralDifferences(at: v) {
                    ref.loss(q: q, k: k, v: $0, beta: beta, omega: omega, initialState: s0, dy: dy, dstate: ds) }, "\(label) dv vs FD")
                if rule == .delta {
                    assertSpecClose(g.dbeta!.storage, centralDifferences(at: beta) {
                        ref.loss(q: q, k: k, v: v, beta: $0, omega: omega, initialState: s0, dy: dy, dstate: ds) }, "\(label) dbeta vs FD")
                }
                let zeros = [Double](repeating: 0, count: g.dstate.count)
                assertSpecClose(g.dstate.storage, centralDifferences(at: s0 ?? zeros) {
                    ref.loss(q: q, k: k, v: v, beta: beta, omega: omega, initialState: $0, dy: dy, dstate: ds) }, "\(label) dS0 vs FD")
            }
        }
    }

    func testWithoutFinalStateGradientAndAtLength1() throws {
        let x = makeInputs(.delta, .elu1, B: 1, H: 1, T: 1, dk: 2, dv: 5, initialState: false, finalGradient: false, seed: 3)
        let op = try FastWeightProgrammer(rule: .delta, featureMap: .elu1, normalization: .l2, algorithm: .chunked(size: 64))
        let r = try op.forward(q: x.q, k: x.k, v: x.v, beta: x.beta)
        let g = try FastWeightProgrammer.backward(dy: x.dy, cache: r.cache!)
        XCTAssertEqual(g.dstate.shape, [1, 1, 5, 2])
        XCTAssertEqual(r.y.shape, [1, 1, 1, 5])
    }

    func testShapeAndCombinationErrorsNameTheTensor() throws {
        let sum = try FastWeightProgrammer(rule: .sum, featureMap: .elu1, normalization: .sum)
        let q = Tensor(shape: [2, 3, 5, 4]), v = Tensor(shape: [2, 3, 5, 6])
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(message { _ = try sum.forward(q: q, k: Tensor(shape: [2, 3, 4, 4]), v: v) },
                       "k: expected shape [2, 3, 5, 4], got [2, 3, 4, 4]")
        XCTAssertEqual(message { _ = try sum.forward(q: q, k: q, v: Tensor(shape: [2, 3, 6, 6])) },
                       "v: expected shape [2, 3, 5, Dv] with Dv >= 1, got [2, 3, 6, 6]")
        XCTAssertEqual(message { _ = try sum.forward(q: Tensor(shape: [5, 4]), k: q, v: v) },
                       "q: expected shape [B, H, T, Dk], got [5, 4]")
        let empty = Tensor(shape: [2, 3, 0, 4])
        XCTAssertEqual(message { _ = try sum.forward(q: empty, k: empty, v: Tensor(shape: [2, 3, 0, 6])) },
                       "q: expected shape [B, H, T, Dk] with T >= 1, got [2, 3, 0, 4]")
        XCTAssertEqual(message { _ = try sum.forward(q: q, k: q, v: v, initialState: Tensor(shape: [2, 3, 4, 6])) },
                       "initial state: expected shape [2, 3, 6, 4], got [2, 3, 4, 6]")
        XCTAssertTrue(message { _ = try sum.forward(q: q, k: q, v: v, beta: Tensor(shape: [2, 3, 5])) }.contains("beta"))
        let delta = try FastWeightProgrammer(rule: .delta, featureMap: .elu1, normalization: .sum)
        XCTAssertTrue(message { _ = try delta.forward(q: q, k: q, v: v) }.contains("beta"))
        XCTAssertEqual(message { _ = try delta.forward(q: q, k: q, v: v, beta: Tensor(shape: [2, 3, 4])) },
                       "beta: expected shape [2, 3, 5], got [2, 3, 4]")
        let favor = try FastWeightProgrammer(rule: .sum, featureMap: .favor(features: 3), normalization: .sum)
        XCTAssertEqual(message { _ = try favor.forward(q: q, k: q, v: v, omega: Tensor(shape: [3, 5])) },
                       "omega: expected shape [3, 4], got [3, 5]")
        XCTAssertTrue(message { _ = try favor.forward(q: q, k: q, v: v) }.contains("omega"))
        XCTAssertTrue(message { _ = try sum.forward(q: q, k: q, v: v, omega: Tensor(shape: [3, 4])) }.contains("omega"))
        XCTAssertTrue(message { _ = try FastWeightProgrammer(rule: .delta, featureMap: .elu1, denominator: true) }.contains("delta"))
        XCTAssertTrue(message { _ = try FastWeightProgrammer(rule: .sum, featureMap: .identity, denominator: true) }.contains("identity"))
        XCTAssertTrue(message { _ = try FastWeightProgrammer(rule: .sum, featureMap: .identity, normalization: .sum) }.contains("identity"))
        XCTAssertTrue(message { _ = try FastWeightProgrammer(rule: .sum, algorithm: .chunked(size: 0)) }.contains("chunk"))
        let withDen = try FastWeightProgrammer(rule: .sum, featureMap: .elu1, denominator: true)
        XCTAssertTrue(message { _ = try withDen.forward(q: q, k: q, v: v, initialState: Tensor(shape: [2, 3, 6, 4])) }.contains("initial state"))
        let r = try sum.forward(q: q, k: q, v: v)
        XCTAssertEqual(message { _ = try FastWeightProgrammer.backward(dy: Tensor(shape: [2, 3, 5, 5]), cache: r.cache!) },
                       "dy: expected shape [2, 3, 5, 6], got [2, 3, 5, 5]")
        XCTAssertEqual(message { _ = try FastWeightProgrammer.backward(dy: v, dstate: Tensor(shape: [1]), cache: r.cache!) },
                       "dstate: expected shape [2, 3, 6, 4], got [1]")
    }

    /// NaN or Inf in any input is refused, naming the tensor and the first
    /// bad index, by both algorithms alike (they would spread it differently).
    func testNonFiniteInputsAreRejectedNamingTheTensorAndIndex() throws {
        for algorithm in [FWPAlgorithm.recurrent, .chunked(size: 2)] {
            let op = try FastWeightProgrammer(rule: .delta, featureMap: .elu1, normalization: .sum, algorithm: algorithm)
            let x = makeInputs(.delta, .elu1, B: 1, H: 2, T: 5, dk: 3, dv: 4, initialState: false, finalGradient: false, seed: 3)
            var beta = x.beta!
            beta[0, 1, 3] = .nan
            XCTAssertThrowsError(try op.forward(q: x.q, k: x.k, v: x.v, beta: beta)) { error in
                XCTAssertEqual(error as? FWError, .nonFinite("beta: non-finite value nan at index [0, 1, 3]"))
            }
            var v = x.v
            v[0, 0, 2, 1] = -.infinity
            XCTAssertThrowsError(try op.forward(q: x.q, k: x.k, v: v, beta: x.beta)) { error in
                XCTAssertEqual(error as? FWError, .nonFinite("v: non-finite value -inf at index [0, 0, 2, 1]"))
            }
            let out = try op.forward(q: x.q, k: x.k, v: x.v, beta: x.beta)
            var dy = x.dy
            dy[0, 1, 4, 0] = .infinity
            XCTAssertThrowsError(try FastWeightProgrammer.backward(dy: dy, cache: out.cache!)) { error in
                XCTAssertEqual(error as? FWError, .nonFinite("dy: non-finite value inf at index [0, 1, 4, 0]"))
            }
        }
    }

    /// A chunk far longer than T (up to Int.max) is one chunk of T steps, not an overflow.
    func testHugeChunkIsOneChunk() throws {
        let x = makeInputs(.sum, .elu1, B: 1, H: 2, T: 5, dk: 3, dv: 4, initialState: false, finalGradient: false, seed: 4)
        let whole = try FastWeightProgrammer(rule: .sum, featureMap: .elu1, normalization: .sum, algorithm: .chunked(size: 5))
        let huge = try FastWeightProgrammer(rule: .sum, featureMap: .elu1, normalization: .sum, algorithm: .chunked(size: .max))
        let a = try whole.forward(q: x.q, k: x.k, v: x.v), b = try huge.forward(q: x.q, k: x.k, v: x.v)
        XCTAssertEqual(a.y, b.y)
        XCTAssertEqual(SequenceShape(T: 5, dphi: 3, dv: 4).chunkCount(.max), 1)
        let ga = try FastWeightProgrammer.backward(dy: x.dy, cache: a.cache!)
        let gb = try FastWeightProgrammer.backward(dy: x.dy, cache: b.cache!)
        XCTAssertEqual(ga.dk, gb.dk)
    }

    /// Extents beyond BLAS's 32-bit sizes, even in an empty tensor, are an error, not a trap.
    func testAbsurdExtentsAreRejected() throws {
        let op = try FastWeightProgrammer(rule: .sum, featureMap: .dpfp(order: 2), normalization: .sum)
        let empty = Tensor(shape: [0, 1, 1, 1 << 62], storage: [])
        XCTAssertThrowsError(try op.forward(q: empty, k: empty, v: empty)) { error in
            XCTAssertTrue("\(error)".hasPrefix("q: extent 4611686018427387904"), "\(error)")
        }
    }

    func testAutomaticAlgorithmRunsAndAgrees() throws {
        let x = makeInputs(.sum, .elu1, B: 1, H: 2, T: 40, dk: 8, dv: 8, initialState: false, finalGradient: false, seed: 9)
        let auto = try FastWeightProgrammer(rule: .sum, featureMap: .elu1, normalization: .sum)
        let rec = try FastWeightProgrammer(rule: .sum, featureMap: .elu1, normalization: .sum, algorithm: .recurrent)
        assertSpecClose(try auto.forward(q: x.q, k: x.k, v: x.v).y.storage, try rec.forward(q: x.q, k: x.k, v: x.v).y.storage,
                        "automatic vs recurrent")
    }
}
