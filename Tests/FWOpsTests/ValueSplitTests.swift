import XCTest
import FWTestSupport
@testable import FWOps

/// Both cores on one sequence (`FastWeightProgrammer+ValueSplit.swift`): with
/// fewer sequences than workers the op splits the value columns into virtual
/// heads. The split run (B = H = 1) must equal the unsplit one (the same
/// sequence twice, B = 2, which fills the workers and is not split) in every
/// output and gradient, for every rule and both algorithms, and its forward
/// the Float64 evaluation.
final class ValueSplitTests: XCTestCase {
    func testTheSplitIsChosenOnlyWhenItHelps() {
        XCTAssertEqual(FastWeightProgrammer.valueSplit(sequences: 1, dv: 64, denominator: false, workers: 2), 2)
        XCTAssertEqual(FastWeightProgrammer.valueSplit(sequences: 1, dv: 64, denominator: false, workers: 4), 4)
        XCTAssertEqual(FastWeightProgrammer.valueSplit(sequences: 3, dv: 64, denominator: false, workers: 4), 2)
        XCTAssertEqual(FastWeightProgrammer.valueSplit(sequences: 2, dv: 64, denominator: false, workers: 2), 1)
        XCTAssertEqual(FastWeightProgrammer.valueSplit(sequences: 1, dv: 64, denominator: true, workers: 2), 1)
        XCTAssertEqual(FastWeightProgrammer.valueSplit(sequences: 1, dv: 8, denominator: false, workers: 2), 1, "parts narrower than 8")
        XCTAssertEqual(FastWeightProgrammer.valueSplit(sequences: 1, dv: 17, denominator: false, workers: 2), 1, "no divisor")
        XCTAssertEqual(FastWeightProgrammer.valueSplit(sequences: 1, dv: 48, denominator: false, workers: 2), 2)
    }

    func testSplitEqualsUnsplitForEveryRule() throws {
        guard ThreadOwnership.workers >= 2 else { throw XCTSkip("one worker: the op never splits") }
        let (T, dk, dv) = (37, 8, 16)
        var rng = SeededRNG(seed: 5)
        func random(_ shape: [Int], _ low: Float = -1, _ high: Float = 1) -> Tensor {
            Tensor(shape: shape, storage: (0..<shape.reduce(1, *)).map { _ in low + (high - low) * rng.uniform() })
        }
        for rule in [FastWeightRule.sum, .delta, .gatedSum, .gatedDelta] {
            for algorithm in [FWPAlgorithm.recurrent, .chunked(size: 16)] {
                let op = try FastWeightProgrammer(rule: rule, featureMap: .elu1, normalization: .sum, algorithm: algorithm)
                let q = random([1, 1, T, dk]), k = random([1, 1, T, dk]), v = random([1, 1, T, dv])
                let beta = random([1, 1, T], 0.1, 0.9), g = random([1, 1, T], -1, 0)
                let s0 = random([1, 1, dv, dk], -0.3, 0.3), dy = random([1, 1, T, dv]), dsT = random([1, 1, dv, dk])
                let gates = FWPGates(beta: rule.needs(.beta) ? beta : nil, g: rule.needs(.g) ? g : nil)
                let split = try op.forward(q: q, k: k, v: v, gates: gates, initialState: s0)
                XCTAssertEqual(split.cache?.valueParts, 2, "\(rule) \(algorithm): B = H = 1 on 2 workers splits")
                let gs = try FastWeightProgrammer.backward(dy: dy, dstate: dsT, cache: split.cache!)

                let wide = try op.forward(q: twice(q), k: twice(k), v: twice(v),
                                          gates: FWPGates(beta: gates.beta.map(twice), g: gates.g.map(twice)),
                                          initialState: twice(s0))
                XCTAssertEqual(wide.cache?.valueParts, 1)
                let gw = try FastWeightProgrammer.backward(dy: twice(dy), dstate: twice(dsT), cache: wide.cache!)
                let label = "\(rule) \(algorithm)"
                assertSpecClose(split.y.storage, first(wide.y), "\(label) y")
                assertSpecClose(split.state.storage, first(wide.state), "\(label) S_T")
                assertSpecClose(gs.dq.storage, first(gw.dq), "\(label) dq")
                assertSpecClose(gs.dk.storage, first(gw.dk), "\(label) dk")
                assertSpecClose(gs.dv.storage, first(gw.dv), "\(label) dv")
                assertSpecClose(gs.dstate.storage, first(gw.dstate), "\(label) dS_0")
                for gate in rule.gates {
                    assertSpecClose(gs.dgates[gate]!.storage, first(gw.dgates[gate]!), "\(label) d\(gate)")
                }
                XCTAssertEqual(gs.dq.shape, q.shape)
                XCTAssertEqual(gs.dv.shape, v.shape)
                XCTAssertEqual(gs.dstate.shape, s0.shape)

                let reference = ReferenceFWP(rule: rule, map: .elu1, norm: .sum, denominator: false, B: 1, H: 1, T: T, dk: dk, dv: dv)
                let (y, state) = reference.evaluate(q: q.storage.map(Double.init), k: k.storage.map(Double.init),
                                                    v: v.storage.map(Double.init), beta: beta.storage.map(Double.init),
                                                    g: rule.needs(.g) ? g.storage.map(Double.init) : [], omega: [],
                                                    initialState: s0.storage.map(Double.init))
                assertSpecClose(split.y.storage, y, "\(label) y vs Float64")
                assertSpecClose(split.state.storage, state, "\(label) S_T vs Float64")
            }
        }
        // Long enough (T >= 256) that phi and n also run in row blocks on the workers,
        // for every kind of map (row-wise ones, with Omega, with wider features).
        XCTAssertEqual(FastWeightProgrammer.rowBlocks(sequences: 1, rows: 300, workers: 2), 2)
        XCTAssertEqual(FastWeightProgrammer.rowBlocks(sequences: 2, rows: 300, workers: 2), 1)
        XCTAssertEqual(FastWeightProgrammer.rowBlocks(sequences: 1, rows: 100, workers: 2), 1)
        for map in [FeatureMap.elu1, .dpfp(order: 2), .favor(features: 8)] {
            let T2 = 301
            let op = try FastWeightProgrammer(rule: .delta, featureMap: map, normalization: .sum, algorithm: .chunked(size: 32))
            let q = random([1, 1, T2, dk], -0.5, 0.5), k = random([1, 1, T2, dk], -0.5, 0.5), v = random([1, 1, T2, dv])
            let beta = random([1, 1, T2], 0.1, 0.9), dy = random([1, 1, T2, dv])
            var omega: Tensor? = nil
            if case let .favor(m) = map { omega = try FavorProjection.draw(features: m, inputSize: dk, rng: &rng) }
            let a = try op.forward(q: q, k: k, v: v, beta: beta, omega: omega)
            let ga = try FastWeightProgrammer.backward(dy: dy, cache: a.cache!)
            let b = try op.forward(q: twice(q), k: twice(k), v: twice(v), beta: twice(beta), omega: omega)
            let gb = try FastWeightProgrammer.backward(dy: twice(dy), cache: b.cache!)
            assertSpecClose(a.y.storage, first(b.y), "\(map) row blocks y")
            assertSpecClose(ga.dq.storage, first(gb.dq), "\(map) row blocks dq")
            assertSpecClose(ga.dk.storage, first(gb.dk), "\(map) row blocks dk")
            assertSpecClose(ga.dbeta!.storage, first(gb.dbeta!), "\(map) row blocks dbeta")
        }
        // Shape errors still name the caller's shapes.
        let op = try FastWeightProgrammer(rule: .delta, featureMap: .elu1, normalization: .sum)
        let r = try op.forward(q: random([1, 1, 5, dk]), k: random([1, 1, 5, dk]), v: random([1, 1, 5, dv]), beta: random([1, 1, 5], 0.1, 0.9))
        XCTAssertThrowsError(try FastWeightProgrammer.backward(dy: random([1, 1, 5, dv - 1]), cache: r.cache!)) {
            XCTAssertEqual("\($0)", "dy: expected shape [1, 1, 5, 16], got [1, 1, 5, 15]")
        }
    }
}

/// The batch `[1, ...]` twice, `[2, ...]` (two sequences fill two workers: no split).
private func twice(_ x: Tensor) -> Tensor { Tensor(shape: [2] + x.shape.dropFirst(), storage: x.storage + x.storage) }

/// The first of two equal halves of a `[2, ...]` result.
private func first(_ x: Tensor) -> [Float] { Array(x.storage.prefix(x.count / 2)) }
