import XCTest
import FWCore
import FWTestSupport
@testable import FWOps

/// The team form of the chunked rules (`Rules/TeamChunked.swift`) against
/// each part run alone through the rule's own chunked kernel: the same
/// outputs, states and `saved`, and the same gradients (the team's dq, dk
/// and gate gradients are the parts' sums), for every rule, for teams of
/// 1-3 threads and 2-3 parts, over several segments with a partial last chunk.
final class TeamChunkedTests: XCTestCase {
    func testTeamEqualsThePartsRunAlone() {
        let (chunk, dphi, w) = (4, 6, 5)
        var rng = SeededRNG(seed: 11)
        func random(_ n: Int, _ low: Float = -1, _ high: Float = 1) -> [Float] {
            (0..<n).map { _ in low + (high - low) * rng.uniform() }
        }
        for rule in FastWeightRule.allCases {
            guard let kernel = rule.kernel as? any TeamChunkedRuleKernel.Type else {
                XCTAssertFalse([.sum, .delta, .gatedSum, .gatedDelta].contains(rule), "\(rule) has the team form")
                continue
            }
            for (teamSize, P) in [(1, 2), (2, 2), (3, 3), (2, 3)] {
                let team = WorkerTeam(size: teamSize)
                // More chunks than one segment holds, the last one partial.
                let T = TeamChunked.segmentChunks(team) * chunk + 2 * chunk + 3
                let shape = SequenceShape(T: T, dphi: dphi, dv: w)
                let algorithm = FWPAlgorithm.chunked(size: chunk)
                let savedCount = kernel.savedCount(algorithm, shape)
                let q = random(T * dphi, -0.5, 0.5), k = random(T * dphi, -0.5, 0.5), v = random(P * T * w)
                let beta = random(T, 0.1, 0.9), g = random(T, -0.6, 0)
                let state0 = random(P * dphi * w, -0.3, 0.3), dy = random(P * T * w), dstateT = random(P * dphi * w)
                let label = "\(rule) team \(teamSize) parts \(P)"

                // The parts alone.
                let empty = Outputs(parts: P, T: T, dphi: dphi, w: w, savedCount: savedCount, state: state0, dstate: dstateT)
                var (y1, s1, saved1, dq1, dk1, dv1, ds1, dbeta1, dg1) = empty.all
                q.withUnsafeBufferPointer { q in k.withUnsafeBufferPointer { k in v.withUnsafeBufferPointer { v in
                beta.withUnsafeBufferPointer { beta in g.withUnsafeBufferPointer { g in dy.withUnsafeBufferPointer { dy in
                    let gates = GatePointers(beta: rule.needs(.beta) ? beta.baseAddress : nil, g: rule.needs(.g) ? g.baseAddress : nil)
                    var pq = [Float](repeating: 0, count: T * dphi), pk = pq
                    var pb = [Float](repeating: 0, count: T), pg = pb
                    for p in 0..<P {
                        y1.withUnsafeMutableBufferPointer { y in s1.withUnsafeMutableBufferPointer { s in
                        saved1.withUnsafeMutableBufferPointer { saved in
                            kernel.forward(algorithm, y: y.baseAddress! + p * T * w, state: s.baseAddress! + p * dphi * w,
                                           saved: saved.baseAddress! + p * savedCount, q: q.baseAddress!, k: k.baseAddress!,
                                           v: v.baseAddress! + p * T * w, gates: gates, shape: shape)
                        }}}
                        pq.withUnsafeMutableBufferPointer { pq in pk.withUnsafeMutableBufferPointer { pk in
                        pb.withUnsafeMutableBufferPointer { pb in pg.withUnsafeMutableBufferPointer { pg in
                        dv1.withUnsafeMutableBufferPointer { dv in ds1.withUnsafeMutableBufferPointer { ds in
                        saved1.withUnsafeBufferPointer { saved in
                            let dgates = GateGradientPointers(beta: rule.needs(.beta) ? pb.baseAddress : nil,
                                                              g: rule.needs(.g) ? pg.baseAddress : nil)
                            kernel.backward(algorithm, dq: pq.baseAddress!, dk: pk.baseAddress!, dv: dv.baseAddress! + p * T * w,
                                            dgates: dgates, dstate: ds.baseAddress! + p * dphi * w,
                                            dy: dy.baseAddress! + p * T * w, q: q.baseAddress!, k: k.baseAddress!,
                                            v: v.baseAddress! + p * T * w, gates: gates,
                                            saved: saved.baseAddress! + p * savedCount, shape: shape)
                        }}}}}}}
                        for i in 0..<(T * dphi) { dq1[i] += pq[i]; dk1[i] += pk[i] }
                        for i in 0..<T { dbeta1[i] += pb[i]; dg1[i] += pg[i] }
                    }
                }}}}}}

                // The team.
                var (y2, s2, saved2, dq2, dk2, dv2, ds2, dbeta2, dg2) = empty.all
                q.withUnsafeBufferPointer { q in k.withUnsafeBufferPointer { k in v.withUnsafeBufferPointer { v in
                beta.withUnsafeBufferPointer { beta in g.withUnsafeBufferPointer { g in dy.withUnsafeBufferPointer { dy in
                y2.withUnsafeMutableBufferPointer { y in s2.withUnsafeMutableBufferPointer { s in
                saved2.withUnsafeMutableBufferPointer { saved in
                    let gates = GatePointers(beta: rule.needs(.beta) ? beta.baseAddress : nil, g: rule.needs(.g) ? g.baseAddress : nil)
                    kernel.teamForward(team, chunk: chunk, parts: P, y: y.baseAddress!, state: s.baseAddress!,
                                       saved: saved.baseAddress!, q: q.baseAddress!, k: k.baseAddress!, v: v.baseAddress!,
                                       gates: gates, shape: shape)
                    dq2.withUnsafeMutableBufferPointer { dq in dk2.withUnsafeMutableBufferPointer { dk in
                    dv2.withUnsafeMutableBufferPointer { dv in ds2.withUnsafeMutableBufferPointer { ds in
                    dbeta2.withUnsafeMutableBufferPointer { db in dg2.withUnsafeMutableBufferPointer { dg in
                        let dgates = GateGradientPointers(beta: rule.needs(.beta) ? db.baseAddress : nil,
                                                          g: rule.needs(.g) ? dg.baseAddress : nil)
                        kernel.teamBackward(team, chunk: chunk, parts: P, dq: dq.baseAddress!, dk: dk.baseAddress!,
                                            dv: dv.baseAddress!, dgates: dgates, dstate: ds.baseAddress!, dy: dy.baseAddress!,
                                            q: q.baseAddress!, k: k.baseAddress!, v: v.baseAddress!, gates: gates,
                                            saved: UnsafePointer(saved.baseAddress!), shape: shape)
                    }}}}}}
                }}}}}}}}}

                assertSpecClose(y2, y1.map(Double.init), "\(label) y")
                assertSpecClose(s2, s1.map(Double.init), "\(label) S_T")
                assertSpecClose(saved2, saved1.map(Double.init), "\(label) saved")
                assertSpecClose(dq2, dq1.map(Double.init), "\(label) dq")
                assertSpecClose(dk2, dk1.map(Double.init), "\(label) dk")
                assertSpecClose(dv2, dv1.map(Double.init), "\(label) dv")
                assertSpecClose(ds2, ds1.map(Double.init), "\(label) dS_0")
                if rule.needs(.beta) { assertSpecClose(dbeta2, dbeta1.map(Double.init), "\(label) dbeta") }
                if rule.needs(.g) { assertSpecClose(dg2, dg1.map(Double.init), "\(label) dg") }
                XCTAssertGreaterThan(dk2.map(abs).max()!, 0, "\(label): gradients are not all zero")
            }
        }
    }
}

/// One run's outputs before it writes them: y, the state (in: S_0), saved,
/// dq, dk, dv, dstate (in: dL/dS_T), dbeta, dg.
private struct Outputs {
    let all: ([Float], [Float], [Float], [Float], [Float], [Float], [Float], [Float], [Float])

    init(parts P: Int, T: Int, dphi: Int, w: Int, savedCount: Int, state: [Float], dstate: [Float]) {
        let values = [Float](repeating: 0, count: P * T * w), keys = [Float](repeating: 0, count: T * dphi)
        let steps = [Float](repeating: 0, count: T)
        all = (values, state, [Float](repeating: 0, count: P * savedCount), keys, keys, values, dstate, steps, steps)
    }
}
