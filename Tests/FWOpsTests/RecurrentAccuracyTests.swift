import XCTest
import FWTestSupport

/// The recurrent form's accuracy where it is hardest (issue 11 item 4):
///
/// * the unstable regime of docs/contract.md section 7: elu1 features without
///   normalisation, so |k'|^2 is about Dphi and every delta-rule step
///   multiplies the state by I - beta k' k'^T with eigenvalues near
///   1 - beta Dphi; states reach 1e5 and more by T = 7. The contract's bound
///   holds there for T <= 16, and a backward that undoes the writes in reverse
///   (S_{t-1} from S_t) misses it: the rounding of the forward is amplified
///   by every later step. Checkpoints plus recomputation give every state
///   exactly as the forward had it.
/// * a long stable run (T = 8192, l2-normalised keys, small d), forward and
///   backward, against the Float64 reference.
final class RecurrentAccuracyTests: XCTestCase {
    /// elu(x) + 1 (docs/contract.md section 2) on every entry.
    static func elu1(_ x: [Float]) -> [Float] { x.map { $0 > 0 ? $0 + 1 : Float(Foundation.exp(Double($0))) } }

    /// Largest error relative to `max(1, max|b|)`.
    static func relativeError(_ a: [Float], _ b: [Double]) -> Double {
        maxAbsDifference(a, b) / max(1, b.reduce(0) { max($0, abs($1)) })
    }

    /// The delta rule kernel, recurrent, on elu1 features with no
    /// normalisation, T = 2...16, four seeds, two shapes, with and without
    /// S_0 and dL/dS_T: every output and gradient against the Float64
    /// reverse-mode reference (itself checked against finite differences in
    /// `DeltaRuleTests`).
    func testDeltaRecurrentUnstableRegimeMatchesFloat64() {
        var worst: [String: Double] = [:]
        var largestState = 0.0
        for (dphi, dv) in [(16, 16), (12, 9)] {
            for T in 2...16 {
                for seed in 0..<4 {
                    var p = DeltaRuleTests.makeProblem(T: T, dphi: dphi, dv: dv, normalizeKeys: false,
                                                       withState: seed % 2 == 1, withDState: seed >= 2,
                                                       seed: UInt64(9000 + 100 * T + 10 * dphi + seed))
                    p.q = Self.elu1(p.q)
                    p.k = Self.elu1(p.k)
                    let ref = DeltaRuleTests.reference(p)
                    let r = DeltaRuleTests.run(.recurrent, p)
                    largestState = max(largestState, ref.state.reduce(0) { max($0, abs($1)) })
                    let label = "delta recurrent elu1/none \(dphi)x\(dv) T=\(T) seed=\(seed)"
                    for (name, a, b) in [("y", r.y, ref.y), ("state", r.state, ref.state), ("dq", r.dq, ref.dq),
                                         ("dk", r.dk, ref.dk), ("dv", r.dv, ref.dv), ("dbeta", r.dbeta, ref.dbeta),
                                         ("dstate0", r.dstate0, ref.dstate0)] {
                        assertSpecClose(a, b, "\(label) \(name)")
                        worst[name] = max(worst[name] ?? 0, Self.relativeError(a, b))
                    }
                }
            }
        }
        print("RecurrentAccuracyTests delta elu1/none T<=16 (states up to \(String(format: "%.1e", largestState))): "
              + worst.keys.sorted().map { "\($0) \(String(format: "%.1e", worst[$0]!))" }.joined(separator: ", ")
              + " (bound \(specTolerance))")
    }

    /// The batched op, recurrent, elu1 without normalisation, for both delta
    /// rules (the gated one with weak decays, where it is as unstable):
    /// every gradient against central finite differences of the Float64
    /// evaluation of the whole op, T in {7, 12, 16}.
    func testDeltaRulesThroughTheOpInTheUnstableRegime() throws {
        var worst: [String: Double] = [:]
        for rule in [FastWeightRule.delta, .gatedDelta] {
            for (i, T) in [7, 12, 16].enumerated() {
                let (B, H, dk, dv) = (1, 1, 8, 6)
                var rng = SeededRNG(seed: 7100 + UInt64(i) + (rule == .delta ? 0 : 50))
                let q = rng.normalTensor([B, H, T, dk]), k = rng.normalTensor([B, H, T, dk])
                let v = rng.normalTensor([B, H, T, dv]), dy = rng.normalTensor([B, H, T, dv])
                let beta = rng.uniformTensor([B, H, T])
                var gates = FWPGates(beta: beta)
                if rule.needs(.g) {
                    var g = rng.uniformTensor([B, H, T])
                    for j in 0..<g.count { g.storage[j] *= -0.05 }
                    gates.g = g
                }
                let op = try FastWeightProgrammer(rule: rule, featureMap: .elu1, normalization: .none,
                                                  algorithm: .recurrent)
                let r = try op.forward(q: q, k: k, v: v, gates: gates)
                let grads = try FastWeightProgrammer.backward(dy: dy, cache: r.cache!)
                let ref = ReferenceFWP(rule: rule, map: .elu1, norm: .none, denominator: false,
                                       B: B, H: H, T: T, dk: dk, dv: dv)
                let qd = q.storage.asDouble, kd = k.storage.asDouble, vd = v.storage.asDouble
                let bd = beta.storage.asDouble, gd = gates.g?.storage.asDouble ?? [], dyd = dy.storage.asDouble
                func loss(_ q: [Double], _ k: [Double], _ v: [Double], _ b: [Double], _ g: [Double]) -> Double {
                    ref.loss(q: q, k: k, v: v, beta: b, g: g, omega: [], initialState: nil, dy: dyd, dstate: nil)
                }
                var pairs: [(String, [Float], [Double])] = [
                    ("dq", grads.dq.storage, centralDifferences(at: qd) { loss($0, kd, vd, bd, gd) }),
                    ("dk", grads.dk.storage, centralDifferences(at: kd) { loss(qd, $0, vd, bd, gd) }),
                    ("dv", grads.dv.storage, centralDifferences(at: vd) { loss(qd, kd, $0, bd, gd) }),
                    ("dbeta", grads.dbeta!.storage, centralDifferences(at: bd) { loss(qd, kd, vd, $0, gd) }),
                ]
                if rule.needs(.g) {
                    pairs.append(("dg", grads.dg!.storage, centralDifferences(at: gd) { loss(qd, kd, vd, bd, $0) }))
                }
                for (name, a, b) in pairs {
                    assertSpecClose(a, b, "\(rule) recurrent elu1/none T=\(T) \(name) vs FD")
                    worst["\(rule) \(name)"] = max(worst["\(rule) \(name)"] ?? 0, Self.relativeError(a, b))
                }
            }
        }
        print("RecurrentAccuracyTests op elu1/none T<=16 vs FD: "
              + worst.keys.sorted().map { "\($0) \(String(format: "%.1e", worst[$0]!))" }.joined(separator: ", "))
    }

    /// T = 8192, l2-normalised keys, 8 x 8 states, with S_0 and dL/dS_T:
    /// the recurrent delta and sum rule kernels, forward and backward,
    /// against the Float64 references.
    func testLongStableRunMatchesFloat64() {
        let T = 8192
        var p = DeltaRuleTests.makeProblem(T: T, dphi: 8, dv: 8, normalizeKeys: true, withState: true,
                                           withDState: true, seed: 8192)
        // l2 queries too, as the op would give them.
        for t in 0..<T {
            var ss: Float = 0
            for j in 0..<8 { ss += p.q[t * 8 + j] * p.q[t * 8 + j] }
            let r = 1 / (ss + 1e-6).squareRoot()
            for j in 0..<8 { p.q[t * 8 + j] *= r }
        }
        let ref = DeltaRuleTests.reference(p)
        let r = DeltaRuleTests.run(.recurrent, p)
        var line: [String] = []
        for (name, a, b) in [("y", r.y, ref.y), ("state", r.state, ref.state), ("dq", r.dq, ref.dq),
                             ("dk", r.dk, ref.dk), ("dv", r.dv, ref.dv), ("dbeta", r.dbeta, ref.dbeta),
                             ("dstate0", r.dstate0, ref.dstate0)] {
            assertSpecClose(a, b, "delta recurrent T=\(T) \(name)")
            line.append("\(name) \(String(format: "%.1e", Self.relativeError(a, b)))")
        }
        // The sum rule on the same inputs (S_0 and dS_T in its [dv, dphi] file layout).
        let shape = p.shape
        let s0 = SumRuleReference.transposed(p.state0!, rows: 8, cols: 8)   // S_0 [dv, dphi]
        let dsT = SumRuleReference.transposed(p.dstateT!, rows: 8, cols: 8)
        let (yRef, sRef) = SumRuleReference.forward(q: p.q.asDouble, k: p.k.asDouble, v: p.v.asDouble,
                                                    s0: s0.asDouble, T: T, dphi: 8, dv: 8)
        let gRef = SumRuleReference.backward(q: p.q.asDouble, k: p.k.asDouble, v: p.v.asDouble, s0: s0.asDouble,
                                             dy: p.dy.asDouble, dsT: dsT.asDouble, T: T, dphi: 8, dv: 8)
        var y = [Float](repeating: .nan, count: T * 8), state = p.state0!
        var saved = [Float](repeating: .nan, count: SumRule.recurrentSavedCount(shape))
        SumRule.recurrentForward(y: &y, state: &state, saved: &saved, q: p.q, k: p.k, v: p.v, shape: shape)
        var dq = [Float](repeating: .nan, count: T * 8), dk = dq, dv = dq
        var dstate = p.dstateT!
        SumRule.recurrentBackward(dq: &dq, dk: &dk, dv: &dv, dstate: &dstate, dy: p.dy, q: p.q, k: p.k, v: p.v,
                                  saved: saved, shape: shape)
        let stateFile = SumRuleReference.transposed(state, rows: 8, cols: 8)
        let ds0File = SumRuleReference.transposed(dstate, rows: 8, cols: 8)
        for (name, a, b) in [("y", y, yRef), ("state", stateFile, sRef), ("dq", dq, gRef.dq), ("dk", dk, gRef.dk),
                             ("dv", dv, gRef.dv), ("dstate0", ds0File, gRef.ds0)] {
            assertSpecClose(a, b, "sum recurrent T=\(T) \(name)")
            line.append("sum \(name) \(String(format: "%.1e", Self.relativeError(a, b)))")
        }
        print("RecurrentAccuracyTests T=\(T) l2 8x8 recurrent vs Float64: " + line.joined(separator: ", "))
    }

    /// Both kinds of recurrent step (`FusedStep` up to 512 state entries,
    /// `BLASStep` above) for every rule, with the denominator where the rule
    /// allows it: y and S_T against the Float64 op, every gradient against
    /// the chunked form (itself held to Float64 and finite differences by
    /// the rule tests), T = 45 (not a multiple of the segment), with S_0.
    func testFusedAndBLASStepsAgreeForEveryRule() throws {
        var worst = 0.0
        for rule in FastWeightRule.allCases {
            for (dk, dv) in [(8, 8), (16, 16), (24, 24), (12, 40)] {
                for denominator in rule.allowsDenominator ? [false, true] : [false] {
                    let (B, H, T) = (1, 2, 45)
                    var rng = SeededRNG(seed: UInt64(600 + dk * 7 + dv + (denominator ? 1 : 0)))
                    let q = rng.normalTensor([B, H, T, dk]), k = rng.normalTensor([B, H, T, dk])
                    let v = rng.normalTensor([B, H, T, dv]), dy = rng.normalTensor([B, H, T, dv])
                    var gates = FWPGates()
                    if rule.needs(.beta) { gates.beta = rng.uniformTensor([B, H, T]) }
                    if rule.needs(.g) {
                        var g = rng.uniformTensor([B, H, T])
                        for j in 0..<g.count { g.storage[j] *= -0.3 }
                        gates.g = g
                    }
                    let s0 = denominator ? nil : rng.normalTensor([B, H, dv, dk], std: 0.5)
                    let dsT = rng.normalTensor([B, H, dv, dk])
                    let label = "\(rule) \(dk)x\(dv)\(denominator ? " denominator" : "")"
                    var out: [(FWPResult, FWPGradients)] = []
                    for algorithm in [FWPAlgorithm.recurrent, .chunked(size: 16)] {
                        let op = try FastWeightProgrammer(rule: rule, featureMap: .elu1, normalization: .l2,
                                                          denominator: denominator, algorithm: algorithm)
                        let r = try op.forward(q: q, k: k, v: v, gates: gates, initialState: s0)
                        out.append((r, try FastWeightProgrammer.backward(dy: dy, dstate: dsT, cache: r.cache!)))
                    }
                    let ref = ReferenceFWP(rule: rule, map: .elu1, norm: .l2, denominator: denominator,
                                           B: B, H: H, T: T, dk: dk, dv: dv)
                    let (y, s) = ref.evaluate(q: q.storage.asDouble, k: k.storage.asDouble, v: v.storage.asDouble,
                                              beta: gates.beta?.storage.asDouble ?? [], g: gates.g?.storage.asDouble ?? [],
                                              omega: [], initialState: s0?.storage.asDouble)
                    let (r, gr) = out[0], (_, gc) = out[1]
                    assertSpecClose(r.y.storage, y, "\(label) recurrent y vs Float64")
                    assertSpecClose(r.state.storage, s, "\(label) recurrent state vs Float64")
                    worst = max(worst, Self.relativeError(r.y.storage, y), Self.relativeError(r.state.storage, s))
                    var pairs = [("dq", gr.dq, gc.dq), ("dk", gr.dk, gc.dk), ("dv", gr.dv, gc.dv),
                                 ("dS0", gr.dstate, gc.dstate)]
                    if let a = gr.dbeta, let b = gc.dbeta { pairs.append(("dbeta", a, b)) }
                    if let a = gr.dg, let b = gc.dg { pairs.append(("dg", a, b)) }
                    for (name, a, b) in pairs {
                        assertSpecClose(a.storage, b.storage, "\(label) \(name) recurrent vs chunked")
                        worst = max(worst, Self.relativeError(a.storage, b.storage.asDouble))
                    }
                }
            }
        }
        print("RecurrentAccuracyTests fused and BLAS steps, every rule: worst relative error \(String(format: "%.1e", worst))")
    }
}
