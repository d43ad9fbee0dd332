import XCTest
import FWTestSupport

/// The delta rule kernels: recurrent and chunked, forward and backward,
/// against the Float64 reference (`DeltaRuleReference`), whose own gradients
/// are checked against central finite differences.
final class DeltaRuleTests: XCTestCase {
    // MARK: - Inputs

    /// One test problem; the state arrays are in the kernels' layout S^T [dphi, dv].
    struct Problem {
        var shape: SequenceShape
        var q: [Float], k: [Float], v: [Float], beta: [Float]
        var state0: [Float]?     // S_0^T
        var dy: [Float]
        var dstateT: [Float]?    // dL/dS_T^T

        var T: Int { shape.T }
        var dphi: Int { shape.dphi }
        var dv: Int { shape.dv }
    }

    /// N(0,1) q, k, v, S_0, dy, dS_T and U(0,1) beta; keys optionally
    /// l2-normalised (k / sqrt(|k|^2 + 1e-6)), as docs/contract.md section 7 requires for T > 16.
    static func makeProblem(T: Int, dphi: Int, dv: Int, normalizeKeys: Bool,
                            withState: Bool, withDState: Bool, seed: UInt64) -> Problem {
        var rng = SeededRNG(seed: seed)
        func normals(_ n: Int) -> [Float] { (0..<n).map { _ in rng.normal() } }
        let q = normals(T * dphi)
        var k = normals(T * dphi)
        if normalizeKeys {
            for t in 0..<T {
                var ss: Float = 0
                for j in 0..<dphi { ss += k[t * dphi + j] * k[t * dphi + j] }
                let r = 1 / (ss + 1e-6).squareRoot()
                for j in 0..<dphi { k[t * dphi + j] *= r }
            }
        }
        let v = normals(T * dv)
        let beta = (0..<T).map { _ in rng.uniform() }
        let s0 = withState ? normals(dphi * dv) : nil
        let dy = normals(T * dv)
        let ds = withDState ? normals(dphi * dv) : nil
        return Problem(shape: SequenceShape(T: T, dphi: dphi, dv: dv), q: q, k: k, v: v, beta: beta,
                       state0: s0, dy: dy, dstateT: ds)
    }

    /// `a` `[rows, cols]` transposed.
    static func transpose<E: Numeric>(_ a: [E], rows: Int, cols: Int) -> [E] {
        var out = [E](repeating: 0, count: a.count)
        for i in 0..<rows { for j in 0..<cols { out[j * rows + i] = a[i * cols + j] } }
        return out
    }

    // MARK: - Running the kernels

    enum Form: CustomStringConvertible {
        case recurrent, chunked(Int)
        var description: String {
            switch self {
            case .recurrent: return "recurrent"
            case .chunked(let c): return "chunked(C=\(c))"
            }
        }
    }

    /// Forward and backward results of one form, states in S^T layout.
    struct Result {
        var y: [Float], state: [Float]
        var dq: [Float], dk: [Float], dv: [Float], dbeta: [Float], dstate0: [Float]
    }

    static func run(_ form: Form, _ p: Problem) -> Result {
        let T = p.T, dphi = p.dphi, dv = p.dv, n = p.shape.stateCount
        var y = [Float](repeating: .nan, count: T * dv)
        var state = p.state0 ?? [Float](repeating: 0, count: n)
        let savedCount: Int
        switch form {
        case .recurrent: savedCount = DeltaRule.recurrentSavedCount(p.shape)
        case .chunked(let c): savedCount = DeltaRule.chunkedSavedCount(p.shape, chunk: c)
        }
        var saved = [Float](repeating: .nan, count: savedCount)
        switch form {
        case .recurrent:
            DeltaRule.recurrentForward(y: &y, state: &state, saved: &saved,
                                       q: p.q, k: p.k, v: p.v, beta: p.beta, shape: p.shape)
        case .chunked(let c):
            DeltaRule.chunkedForward(y: &y, state: &state, saved: &saved,
                                     q: p.q, k: p.k, v: p.v, beta: p.beta, shape: p.shape, chunk: c)
        }
        // Outputs are overwritten: start them as NaN so a missed entry shows.
        var dq = [Float](repeating: .nan, count: T * dphi)
        var dk = [Float](repeating: .nan, count: T * dphi)
        var dvv = [Float](repeating: .nan, count: T * dv)
        var dbeta = [Float](repeating: .nan, count: T)
        var dstate = p.dstateT ?? [Float](repeating: 0, count: n)
        switch form {
        case .recurrent:
            DeltaRule.recurrentBackward(dq: &dq, dk: &dk, dv: &dvv, dbeta: &dbeta, dstate: &dstate,
                                        dy: p.dy, q: p.q, k: p.k, v: p.v, beta: p.beta,
                                        saved: saved, shape: p.shape)
        case .chunked(let c):
            DeltaRule.chunkedBackward(dq: &dq, dk: &dk, dv: &dvv, dbeta: &dbeta, dstate: &dstate,
                                      dy: p.dy, q: p.q, k: p.k, v: p.v, beta: p.beta,
                                      saved: saved, shape: p.shape, chunk: c)
        }
        return Result(y: y, state: state, dq: dq, dk: dk, dv: dvv, dbeta: dbeta, dstate0: dstate)
    }

    // MARK: - The reference, in the kernels' layout

    struct ReferenceResult {
        var y: [Double], state: [Double]
        var dq: [Double], dk: [Double], dv: [Double], dbeta: [Double], dstate0: [Double]
    }

    static func reference(_ p: Problem) -> ReferenceResult {
        let dphi = p.dphi, dv = p.dv
        let s0 = p.state0.map { transpose($0.asDouble, rows: dphi, cols: dv) }
        let dsT = p.dstateT.map { transpose($0.asDouble, rows: dphi, cols: dv) }
        let f = DeltaRuleReference.forward(q: p.q.asDouble, k: p.k.asDouble, v: p.v.asDouble,
                                           beta: p.beta.asDouble, state0: s0, T: p.T, dphi: dphi, dv: dv)
        let g = DeltaRuleReference.gradients(q: p.q.asDouble, k: p.k.asDouble, v: p.v.asDouble,
                                             beta: p.beta.asDouble, state0: s0, dy: p.dy.asDouble,
                                             dstateT: dsT, T: p.T, dphi: dphi, dv: dv)
        return ReferenceResult(y: f.y, state: transpose(f.state, rows: dv, cols: dphi),
                               dq: g.dq, dk: g.dk, dv: g.dv, dbeta: g.dbeta,
                               dstate0: transpose(g.dstate, rows: dv, cols: dphi))
    }

    /// Central finite differences of the Float64 reference loss
    /// `<dy, y> + <dS_T, S_T>` with respect to every input (kernels' layout).
    static func finiteDifferences(_ p: Problem) -> ReferenceResult {
        let T = p.T, dphi = p.dphi, dv = p.dv
        let q = p.q.asDouble, k = p.k.asDouble, v = p.v.asDouble, beta = p.beta.asDouble
        let s0 = transpose((p.state0 ?? [Float](repeating: 0, count: dphi * dv)).asDouble, rows: dphi, cols: dv)
        let dy = p.dy.asDouble
        let dsT = p.dstateT.map { transpose($0.asDouble, rows: dphi, cols: dv) }
        func loss(_ q: [Double], _ k: [Double], _ v: [Double], _ beta: [Double], _ s0: [Double]) -> Double {
            DeltaRuleReference.loss(q: q, k: k, v: v, beta: beta, state0: s0, dy: dy, dstateT: dsT,
                                    T: T, dphi: dphi, dv: dv)
        }
        let f = DeltaRuleReference.forward(q: q, k: k, v: v, beta: beta, state0: s0, T: T, dphi: dphi, dv: dv)
        return ReferenceResult(
            y: f.y, state: transpose(f.state, rows: dv, cols: dphi),
            dq: centralDifferences(at: q) { loss($0, k, v, beta, s0) },
            dk: centralDifferences(at: k) { loss(q, $0, v, beta, s0) },
            dv: centralDifferences(at: v) { loss(q, k, $0, beta, s0) },
            dbeta: centralDifferences(at: beta) { loss(q, k, v, $0, s0) },
            dstate0: transpose(centralDifferences(at: s0) { loss(q, k, v, beta, $0) }, rows: dv, cols: dphi))
    }

    // MARK: - Checks

    /// Records the largest error relative to the contract's scale `max(1, max|b|)`
    /// per array name, for the printed summary.
    final class ErrorLog {
        var worst: [String: Double] = [:]
        func note(_ a: [Float], _ b: [Double], _ name: String) {
            let scale = max(1, b.reduce(0) { max($0, abs($1)) })
            worst[name] = max(worst[name] ?? 0, maxAbsDifference(a, b) / scale)
        }
        func print(_ title: String) {
            let items = worst.keys.sorted().map { "\($0) \(String(format: "%.1e", worst[$0]!))" }
            Swift.print("DeltaRuleTests \(title): max|a-b|/max(1,max|b|): " + items.joined(separator: ", "))
        }
    }

    func check(_ r: Result, _ ref: ReferenceResult, _ label: String, backward: Bool,
               log: ErrorLog, file: StaticString = #filePath, line: UInt = #line) {
        var pairs: [(String, [Float], [Double])] = [("y", r.y, ref.y), ("state", r.state, ref.state)]
        if backward {
            pairs += [("dq", r.dq, ref.dq), ("dk", r.dk, ref.dk), ("dv", r.dv, ref.dv),
                      ("dbeta", r.dbeta, ref.dbeta), ("dstate0", r.dstate0, ref.dstate0)]
        }
        for (name, a, b) in pairs {
            assertSpecClose(a, b, "\(label) \(name)", file: file, line: line)
            log.note(a, b, name)
        }
    }

    static let chunks = [1, 7, 16, 64]

    // MARK: - Tests

    /// The reference's own reverse-mode gradients agree with central finite
    /// differences of its forward (so it can judge the kernels at large T).
    func testReferenceGradientsMatchFiniteDifferences() {
        var worst = 0.0
        for (i, T) in [1, 5, 13].enumerated() {
            for withState in [false, true] {
                let p = Self.makeProblem(T: T, dphi: 6, dv: 5, normalizeKeys: false, withState: withState,
                                         withDState: withState, seed: 100 + UInt64(i))
                let ref = Self.reference(p), fd = Self.finiteDifferences(p)
                for (name, a, b) in [("dq", ref.dq, fd.dq), ("dk", ref.dk, fd.dk), ("dv", ref.dv, fd.dv),
                                     ("dbeta", ref.dbeta, fd.dbeta), ("dstate0", ref.dstate0, fd.dstate0)] {
                    let scale = max(1, b.reduce(0) { max($0, abs($1)) })
                    var err = 0.0
                    for j in 0..<a.count { err = max(err, abs(a[j] - b[j])) }
                    worst = max(worst, err / scale)
                    XCTAssertLessThan(err, 1e-6 * scale, "reference \(name) vs FD, T=\(T) state=\(withState)")
                }
            }
        }
        print("DeltaRuleTests reference vs FD: max relative error \(String(format: "%.1e", worst))")
    }

    /// Both forms, forward and backward, against central finite differences
    /// of the Float64 reference on small shapes (raw N(0,1) keys, T <= 16;
    /// normalised keys at T = 20).
    func testKernelsMatchFiniteDifferences() {
        let log = ErrorLog()
        let cases: [(T: Int, normalize: Bool)] = [(1, false), (5, false), (16, false), (20, true)]
        for (i, c) in cases.enumerated() {
            for withState in [false, true] {
                let p = Self.makeProblem(T: c.T, dphi: 7, dv: 5, normalizeKeys: c.normalize,
                                         withState: withState, withDState: !withState, seed: 200 + UInt64(i))
                let fd = Self.finiteDifferences(p)
                let forms: [Form] = [.recurrent] + Self.chunks.map { .chunked($0) }
                for form in forms {
                    check(Self.run(form, p), fd, "\(form) T=\(c.T) state=\(withState) vs FD",
                          backward: true, log: log)
                }
            }
        }
        log.print("kernels vs FD (T<=20)")
    }

    /// Recurrent and chunked forms against the Float64 reference (forward and
    /// reverse-mode gradients) for T in {1, 5, 63, 100, 130} and chunk sizes
    /// {1, 7, 16, 64}, dphi != dv, with and without S_0 and dL/dS_T.
    func testKernelsMatchReference() {
        let log = ErrorLog()
        var seed: UInt64 = 300
        for T in [1, 5, 63, 100, 130] {
            for (withState, withDState) in [(false, false), (true, true), (false, true), (true, false)] {
                seed += 1
                let p = Self.makeProblem(T: T, dphi: 12, dv: 9, normalizeKeys: T > 16,
                                         withState: withState, withDState: withDState, seed: seed)
                let ref = Self.reference(p)
                let label = "T=\(T) state=\(withState) dstate=\(withDState)"
                let rec = Self.run(.recurrent, p)
                check(rec, ref, "recurrent \(label)", backward: true, log: log)
                for c in Self.chunks {
                    let ch = Self.run(.chunked(c), p)
                    check(ch, ref, "chunked(C=\(c)) \(label)", backward: true, log: log)
                    // chunked vs recurrent directly (both Float32)
                    for (name, a, b) in [("y", ch.y, rec.y), ("state", ch.state, rec.state),
                                         ("dq", ch.dq, rec.dq), ("dk", ch.dk, rec.dk), ("dv", ch.dv, rec.dv),
                                         ("dbeta", ch.dbeta, rec.dbeta), ("dstate0", ch.dstate0, rec.dstate0)] {
                        assertSpecClose(a, b, "chunked(C=\(c)) vs recurrent \(label) \(name)")
                    }
                }
            }
        }
        log.print("kernels vs Float64 reference (T up to 130)")
    }

    /// Wide values (dphi < dv), a chunk that does not divide T, and the contract's
    /// longest sequence (T = 2048, normalised keys) against the reference.
    func testWideValuesAndLongSequence() {
        let log = ErrorLog()
        for (T, dphi, dv, chunk) in [(37, 4, 11, 8), (300, 16, 24, 128), (2048, 16, 16, 64)] {
            let p = Self.makeProblem(T: T, dphi: dphi, dv: dv, normalizeKeys: true, withState: true,
                                     withDState: true, seed: UInt64(400 + T + dv))
            let ref = Self.reference(p)
            check(Self.run(.recurrent, p), ref, "recurrent T=\(T) \(dphi)x\(dv)", backward: true, log: log)
            check(Self.run(.chunked(chunk), p), ref, "chunked(C=\(chunk)) T=\(T) \(dphi)x\(dv)",
                  backward: true, log: log)
        }
        log.print("wide values / T up to 2048")
    }

    /// The forward without `saved` computes the same outputs as with it.
    func testForwardWithoutSaved() {
        let p = Self.makeProblem(T: 50, dphi: 8, dv: 6, normalizeKeys: true, withState: true,
                                 withDState: false, seed: 500)
        let withSaved = Self.run(.chunked(16), p)
        var y = [Float](repeating: .nan, count: p.T * p.dv)
        var state = p.state0!
        DeltaRule.chunkedForward(y: &y, state: &state, saved: nil, q: p.q, k: p.k, v: p.v, beta: p.beta,
                                 shape: p.shape, chunk: 16)
        XCTAssertEqual(y, withSaved.y)
        XCTAssertEqual(state, withSaved.state)
        let rec = Self.run(.recurrent, p)
        var y2 = [Float](repeating: .nan, count: p.T * p.dv)
        var state2 = p.state0!
        DeltaRule.recurrentForward(y: &y2, state: &state2, saved: nil, q: p.q, k: p.k, v: p.v, beta: p.beta,
                                   shape: p.shape)
        XCTAssertEqual(y2, rec.y)
        XCTAssertEqual(state2, rec.state)
    }

    /// Saved counts and flop counts are consistent with the shapes.
    func testCounts() {
        let s = SequenceShape(T: 100, dphi: 12, dv: 9)
        XCTAssertEqual(DeltaRule.recurrentSavedCount(s), 10 * 108 + 900)  // sqrt(100) checkpoints of 12 x 9, vbar [100, 9]
        XCTAssertEqual(DeltaRule.chunkedSavedCount(s, chunk: 16), 7 * 108 + 900)
        XCTAssertEqual(DeltaRule.chunkedSavedCount(s, chunk: 128), 108 + 900)
        XCTAssertEqual(DeltaRule.recurrentFlops(s, backward: false), 100 * (6 * 108 + 18))
        XCTAssertGreaterThan(DeltaRule.recurrentFlops(s, backward: true), DeltaRule.recurrentFlops(s, backward: false))
        // The chunked count is a sum over chunks: a partial last chunk counts its own rows.
        let full = DeltaRule.chunkedFlops(SequenceShape(T: 96, dphi: 12, dv: 9), chunk: 16, backward: true)
        let one = DeltaRule.chunkedFlops(SequenceShape(T: 4, dphi: 12, dv: 9), chunk: 16, backward: true)
        XCTAssertEqual(DeltaRule.chunkedFlops(s, chunk: 16, backward: true), full + one, accuracy: 1e-6)
        // Leading terms at d = 64, C = 64: forward 6 C d^2 + 8 C^2 d per chunk.
        let big = SequenceShape(T: 64, dphi: 64, dv: 64)
        let lead = 6.0 * 64 * 64 * 64 + 8.0 * 64 * 64 * 64
        XCTAssertEqual(DeltaRule.chunkedFlops(big, chunk: 64, backward: false) / lead, 1, accuracy: 0.05)
    }
}
