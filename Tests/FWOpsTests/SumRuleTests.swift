// The sum rule kernels (docs/contract.md section 4) against the Float64 oracle
// (Tests/FWTestSupport/Reference/SumRule+Reference.swift): recurrent vs
// chunked vs Float64 for the forward (y, S_T) and the backward (dq, dk, dv,
// dS_0); the oracle's gradients and the kernels' gradients against central
// finite differences of the oracle's loss <dy, y> + <dS_T, S_T>.
import XCTest
import FWTestSupport

final class SumRuleTests: XCTestCase {
    /// The largest max|a - b| / max(1, max|b|) seen in this test, with its label
    /// (printed at the end of each test; contract bound 2e-4).
    var worst: (ratio: Double, label: String) = (0, "none")

    override func tearDown() {
        print("SumRuleTests \(name): worst max|a-b|/max(1,max|b|) = \(worst.ratio) (\(worst.label))")
        super.tearDown()
    }

    /// `assertSpecClose` that also records the error ratio.
    func check(_ a: [Float], _ b: [Double], _ label: String,
               file: StaticString = #filePath, line: UInt = #line) {
        assertSpecClose(a, b, label, file: file, line: line)
        guard a.count == b.count, !b.isEmpty else { return }
        let ratio = maxAbsDifference(a, b) / max(1, b.reduce(0) { max($0, abs($1)) })
        if ratio > worst.ratio || ratio.isNaN { worst = (ratio, label) }
    }

    func check(_ a: [Float], _ b: [Float], _ label: String,
               file: StaticString = #filePath, line: UInt = #line) {
        check(a, b.asDouble, label, file: file, line: line)
    }

    /// One sequence's inputs. States are kept in the kernels' layout S^T
    /// `[dphi, dv]`; `ref*` give the oracle's Float64 views (S `[dv, dphi]`).
    struct Problem {
        var shape: SequenceShape
        var q, k, v, dy: [Float]
        var s0: [Float]?
        var dsT: [Float]?

        init(T: Int, dphi: Int, dv: Int, initialState: Bool, stateGradient: Bool, seed: UInt64) {
            var rng = SeededRNG(seed: seed)
            func draw(_ n: Int) -> [Float] { (0..<n).map { _ in rng.normal() } }
            shape = SequenceShape(T: T, dphi: dphi, dv: dv)
            q = draw(T * dphi)
            k = draw(T * dphi)
            v = draw(T * dv)
            dy = draw(T * dv)
            s0 = initialState ? draw(dphi * dv) : nil
            dsT = stateGradient ? draw(dphi * dv) : nil
        }

        func toSpec(_ st: [Float]) -> [Double] {
            SumRuleReference.transposed(st.asDouble, rows: shape.dphi, cols: shape.dv)
        }
        var refS0: [Double]? { s0.map(toSpec) }
        var refDsT: [Double]? { dsT.map(toSpec) }

        func referenceForward() -> (y: [Double], state: [Double]) {
            SumRuleReference.forward(q: q.asDouble, k: k.asDouble, v: v.asDouble, s0: refS0,
                                     T: shape.T, dphi: shape.dphi, dv: shape.dv)
        }

        func referenceBackward() -> (dq: [Double], dk: [Double], dv: [Double], ds0: [Double]) {
            SumRuleReference.backward(q: q.asDouble, k: k.asDouble, v: v.asDouble, s0: refS0,
                                      dy: dy.asDouble, dsT: refDsT,
                                      T: shape.T, dphi: shape.dphi, dv: shape.dv)
        }

        /// Central differences of the oracle's loss with respect to q, k, v, S_0
        /// (S_0 in the contract layout; at zero when no initial state is given).
        func finiteDifferences() -> (dq: [Double], dk: [Double], dv: [Double], ds0: [Double]) {
            let (T, dphi, dv) = (shape.T, shape.dphi, shape.dv)
            let nq = T * dphi, nv = T * dv, ns = dphi * dv
            let s0 = refS0 ?? [Double](repeating: 0, count: ns)
            let x = q.asDouble + k.asDouble + v.asDouble + s0
            let dyD = dy.asDouble, dsTD = refDsT
            let g = centralDifferences(at: x) { x in
                SumRuleReference.loss(q: Array(x[0..<nq]), k: Array(x[nq..<2 * nq]),
                                      v: Array(x[2 * nq..<2 * nq + nv]), s0: Array(x[(2 * nq + nv)...]),
                                      dy: dyD, dsT: dsTD, T: T, dphi: dphi, dv: dv)
            }
            return (Array(g[0..<nq]), Array(g[nq..<2 * nq]), Array(g[2 * nq..<2 * nq + nv]),
                    Array(g[(2 * nq + nv)...]))
        }
    }

    /// Kernel outputs; `state` and `ds0` in the kernels' layout S^T.
    struct Result {
        var y, state: [Float]
        var dq: [Float] = [], dk: [Float] = [], dv: [Float] = [], ds0: [Float] = []
    }

    enum Form: CustomStringConvertible {
        case recurrent, chunked(Int)
        var description: String {
            switch self {
            case .recurrent: return "recurrent"
            case .chunked(let c): return "chunked(C=\(c))"
            }
        }
    }

    /// Runs a kernel pair. Outputs start as NaN, so anything not overwritten shows.
    func run(_ p: Problem, _ form: Form, backward: Bool, saveInForward: Bool = true) -> Result {
        let shape = p.shape
        let nan = Float.nan
        var y = [Float](repeating: nan, count: shape.T * shape.dv)
        var state = p.s0 ?? [Float](repeating: 0, count: shape.stateCount)
        let savedCount: Int
        switch form {
        case .recurrent: savedCount = SumRule.recurrentSavedCount(shape)
        case .chunked(let c): savedCount = SumRule.chunkedSavedCount(shape, chunk: c)
        }
        var saved = [Float](repeating: nan, count: savedCount)
        switch form {
        case .recurrent:
            if saveInForward {
                SumRule.recurrentForward(y: &y, state: &state, saved: &saved, q: p.q, k: p.k, v: p.v, shape: shape)
            } else {
                SumRule.recurrentForward(y: &y, state: &state, saved: nil, q: p.q, k: p.k, v: p.v, shape: shape)
            }
        case .chunked(let c):
            if saveInForward {
                SumRule.chunkedForward(y: &y, state: &state, saved: &saved, q: p.q, k: p.k, v: p.v,
                                       shape: shape, chunk: c)
            } else {
                SumRule.chunkedForward(y: &y, state: &state, saved: nil, q: p.q, k: p.k, v: p.v,
                                       shape: shape, chunk: c)
            }
        }
        var r = Result(y: y, state: state)
        guard backward else { return r }
        var dq = [Float](repeating: nan, count: shape.T * shape.dphi)
        var dk = dq
        var dv = [Float](repeating: nan, count: shape.T * shape.dv)
        var dstate = p.dsT ?? [Float](repeating: 0, count: shape.stateCount)
        switch form {
        case .recurrent:
            SumRule.recurrentBackward(dq: &dq, dk: &dk, dv: &dv, dstate: &dstate, dy: p.dy,
                                      q: p.q, k: p.k, v: p.v, saved: saved, shape: shape)
        case .chunked(let c):
            SumRule.chunkedBackward(dq: &dq, dk: &dk, dv: &dv, dstate: &dstate, dy: p.dy,
                                    q: p.q, k: p.k, v: p.v, saved: saved,
                                    shape: shape, chunk: c)
        }
        r.dq = dq; r.dk = dk; r.dv = dv; r.ds0 = dstate
        return r
    }

    func assertForward(_ r: Result, _ ref: (y: [Double], state: [Double]), _ p: Problem, _ label: String,
                       file: StaticString = #filePath, line: UInt = #line) {
        check(r.y, ref.y, "\(label) y", file: file, line: line)
        check(r.state, SumRuleReference.transposed(ref.state, rows: p.shape.dv, cols: p.shape.dphi),
                        "\(label) S_T", file: file, line: line)
    }

    func assertBackward(_ r: Result, _ ref: (dq: [Double], dk: [Double], dv: [Double], ds0: [Double]),
                        _ p: Problem, _ label: String,
                        file: StaticString = #filePath, line: UInt = #line) {
        check(r.dq, ref.dq, "\(label) dq", file: file, line: line)
        check(r.dk, ref.dk, "\(label) dk", file: file, line: line)
        check(r.dv, ref.dv, "\(label) dv", file: file, line: line)
        check(r.ds0, SumRuleReference.transposed(ref.ds0, rows: p.shape.dv, cols: p.shape.dphi),
                        "\(label) dS_0", file: file, line: line)
    }

    func assertSame(_ a: Result, _ b: Result, _ label: String, backward: Bool,
                    file: StaticString = #filePath, line: UInt = #line) {
        check(a.y, b.y, "\(label) y", file: file, line: line)
        check(a.state, b.state, "\(label) S_T", file: file, line: line)
        guard backward else { return }
        check(a.dq, b.dq, "\(label) dq", file: file, line: line)
        check(a.dk, b.dk, "\(label) dk", file: file, line: line)
        check(a.dv, b.dv, "\(label) dv", file: file, line: line)
        check(a.ds0, b.ds0, "\(label) dS_0", file: file, line: line)
    }

    static let lengths = [1, 5, 63, 100, 130]
    static let chunks = [1, 7, 16, 64]

    /// Forward: recurrent and chunked vs the Float64 oracle and each other,
    /// dphi = 12 != dv = 9, with and without S_0.
    func testForwardMatchesReference() {
        var seed: UInt64 = 1
        for T in Self.lengths {
            for initialState in [false, true] {
                seed += 1
                let p = Problem(T: T, dphi: 12, dv: 9, initialState: initialState, stateGradient: false, seed: seed)
                let ref = p.referenceForward()
                let label = "T=\(T) S0=\(initialState)"
                let rec = run(p, .recurrent, backward: false)
                assertForward(rec, ref, p, "\(label) recurrent")
                for C in Self.chunks {
                    let ch = run(p, .chunked(C), backward: false)
                    assertForward(ch, ref, p, "\(label) chunked(C=\(C))")
                    assertSame(ch, rec, "\(label) chunked(C=\(C)) vs recurrent", backward: false)
                    // Without saving (no backward follows) the result is the same.
                    let unsaved = run(p, .chunked(C), backward: false, saveInForward: false)
                    XCTAssertEqual(unsaved.y, ch.y, "\(label) C=\(C) saved: nil changes y")
                    XCTAssertEqual(unsaved.state, ch.state, "\(label) C=\(C) saved: nil changes S_T")
                }
            }
        }
    }

    /// Backward: recurrent and chunked gradients vs the oracle's (which the
    /// finite-difference test below checks) and each other, over the same grid,
    /// with and without S_0 and dL/dS_T.
    func testBackwardMatchesReference() {
        var seed: UInt64 = 100
        for T in Self.lengths {
            for initialState in [false, true] {
                for stateGradient in [false, true] {
                    seed += 1
                    let p = Problem(T: T, dphi: 12, dv: 9, initialState: initialState,
                                    stateGradient: stateGradient, seed: seed)
                    let ref = p.referenceBackward()
                    let label = "T=\(T) S0=\(initialState) dS_T=\(stateGradient)"
                    let rec = run(p, .recurrent, backward: true)
                    assertForward(rec, p.referenceForward(), p, "\(label) recurrent")
                    assertBackward(rec, ref, p, "\(label) recurrent")
                    for C in Self.chunks {
                        let ch = run(p, .chunked(C), backward: true)
                        assertBackward(ch, ref, p, "\(label) chunked(C=\(C))")
                        assertSame(ch, rec, "\(label) chunked(C=\(C)) vs recurrent", backward: true)
                    }
                }
            }
        }
    }

    /// The oracle's own backward against central differences of its loss
    /// (tight: both are Float64).
    func testReferenceBackwardMatchesFiniteDifferences() {
        var seed: UInt64 = 200
        for T in [1, 4, 11] {
            for (initialState, stateGradient) in [(false, false), (true, true), (false, true)] {
                seed += 1
                let p = Problem(T: T, dphi: 6, dv: 4, initialState: initialState,
                                stateGradient: stateGradient, seed: seed)
                let ref = p.referenceBackward()
                let fd = p.finiteDifferences()
                let label = "oracle T=\(T) S0=\(initialState) dS_T=\(stateGradient)"
                for (name, a, b) in [("dq", ref.dq, fd.dq), ("dk", ref.dk, fd.dk),
                                     ("dv", ref.dv, fd.dv), ("dS_0", ref.ds0, fd.ds0)] {
                    let scale = max(1, b.reduce(0) { max($0, abs($1)) })
                    var err = 0.0
                    for i in 0..<a.count { err = max(err, abs(a[i] - b[i])) }
                    XCTAssertLessThan(err, 1e-7 * scale, "\(label) \(name)")
                    if err / scale > worst.ratio { worst = (err / scale, "\(label) \(name)") }
                }
            }
        }
    }

    /// The Float32 kernels' gradients against central differences of the
    /// Float64 oracle's loss, small shapes (T <= 20, d <= 8, dphi != dv).
    func testKernelGradientsMatchFiniteDifferences() {
        var seed: UInt64 = 300
        for T in [1, 5, 20] {
            for (initialState, stateGradient) in [(false, false), (true, false), (false, true), (true, true)] {
                seed += 1
                let p = Problem(T: T, dphi: 7, dv: 5, initialState: initialState,
                                stateGradient: stateGradient, seed: seed)
                let fd = p.finiteDifferences()
                let label = "FD T=\(T) S0=\(initialState) dS_T=\(stateGradient)"
                let forms: [Form] = [.recurrent, .chunked(1), .chunked(3), .chunked(8), .chunked(16)]
                for form in forms {
                    assertBackward(run(p, form, backward: true), fd, p, "\(label) \(form)")
                }
            }
        }
    }

    /// dphi < dv, and a chunk that divides T exactly.
    func testNarrowFeaturesWideValues() {
        let p = Problem(T: 48, dphi: 5, dv: 11, initialState: true, stateGradient: true, seed: 400)
        let ref = p.referenceForward(), refGrad = p.referenceBackward()
        for form: Form in [.recurrent, .chunked(16), .chunked(5), .chunked(48), .chunked(200)] {
            let r = run(p, form, backward: true)
            assertForward(r, ref, p, "dphi<dv \(form)")
            assertBackward(r, refGrad, p, "dphi<dv \(form)")
        }
    }

    /// A longer sequence at a realistic width (T = 1000, not a multiple of 64).
    func testLongSequence() {
        let p = Problem(T: 1000, dphi: 32, dv: 32, initialState: true, stateGradient: true, seed: 500)
        let ref = p.referenceForward(), refGrad = p.referenceBackward()
        let rec = run(p, .recurrent, backward: true)
        assertForward(rec, ref, p, "long recurrent")
        assertBackward(rec, refGrad, p, "long recurrent")
        let ch = run(p, .chunked(64), backward: true)
        assertForward(ch, ref, p, "long chunked")
        assertBackward(ch, refGrad, p, "long chunked")
    }

    /// Saved counts and flop counts follow their documented formulas.
    func testSavedCountsAndFlops() {
        let s = SequenceShape(T: 100, dphi: 12, dv: 9)
        XCTAssertEqual(SumRule.recurrentSegment(100), 10)
        XCTAssertEqual(SumRule.recurrentSegment(101), 11)
        XCTAssertEqual(SumRule.recurrentSegment(1), 1)
        XCTAssertEqual(SumRule.recurrentSavedCount(s), 10 * 108)
        XCTAssertEqual(SumRule.chunkedSavedCount(s, chunk: 16), 7 * 108)
        XCTAssertEqual(SumRule.chunkedSavedCount(s, chunk: 100), 108)
        XCTAssertEqual(SumRule.recurrentFlops(s, backward: false), 4 * 108 * 100)
        XCTAssertEqual(SumRule.recurrentFlops(s, backward: true), 16 * 108 * 100)
        // T = 100, C = 64: chunks of 64 and 36.
        func fwd(_ L: Double) -> Double { 2 * (2 * L * 108 + L * L * 12 + L * L * 9) }
        func bwd(_ L: Double) -> Double { 2 * (4 * L * 108 + 3 * L * L * 12 + 2 * L * L * 9) }
        XCTAssertEqual(SumRule.chunkedFlops(s, chunk: 64, backward: false), fwd(64) + fwd(36))
        XCTAssertEqual(SumRule.chunkedFlops(s, chunk: 64, backward: true), fwd(64) + fwd(36) + bwd(64) + bwd(36))
    }
}
