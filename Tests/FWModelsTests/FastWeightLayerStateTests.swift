// FastWeightLayer with a carried state: a sequence cut into two segments,
// the second starting from the first's final fast weights, gives the same
// y, final state, dx, dS_0 and parameter gradients as one pass over the
// whole (the backward chains dL/dS through the cut); plus the errors.
import XCTest
import FWTestSupport

final class FastWeightLayerStateTests: XCTestCase {
    private let (B, T, D, H, dk) = (2, 7, 6, 2, 3)
    private let cut = 3

    private func layer(_ rule: FastWeightRule, _ map: FeatureMap, _ norm: FeatureNormalization,
                       denominator: Bool = false, algorithm: FWPAlgorithm?,
                       store: inout ParameterStore, rng: inout SeededRNG) throws -> FastWeightLayer {
        let c = FastWeightLayerConfig(modelSize: D, heads: H, headSize: dk, rule: rule, featureMap: map,
                                      normalization: norm, denominator: denominator, algorithm: algorithm)
        let l = try FastWeightLayer(c, name: "fw", store: &store, rng: &rng)
        try store.setTensor("fw.qkv.weight", rng.normalTensor(l.qkv.weight.shape, std: 0.4))
        return l
    }

    /// Steps [from, to) of a [B, t, D] tensor.
    private func steps(_ x: Tensor, _ from: Int, _ to: Int) -> Tensor {
        let t = x.shape[1]
        var out = Tensor(shape: [B, to - from, D])
        for b in 0..<B {
            for s in from..<to {
                for j in 0..<D { out.storage[(b * (to - from) + s - from) * D + j] = x.storage[(b * t + s) * D + j] }
            }
        }
        return out
    }

    /// Two [B, t, D] tensors one after the other along t.
    private func joined(_ a: Tensor, _ b: Tensor) -> [Float] {
        let (ta, tb) = (a.shape[1], b.shape[1])
        var out: [Float] = []
        for i in 0..<B {
            out += a.storage[(i * ta * D)..<((i + 1) * ta * D)]
            out += b.storage[(i * tb * D)..<((i + 1) * tb * D)]
        }
        return out
    }

    private func checkSegments(_ rule: FastWeightRule, _ map: FeatureMap, _ norm: FeatureNormalization,
                               algorithm: FWPAlgorithm?, seed: UInt64,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        var rng = SeededRNG(seed: seed)
        var whole = ParameterStore()
        let l = try layer(rule, map, norm, algorithm: algorithm, store: &whole, rng: &rng)
        var parts = whole
        let x = rng.normalTensor([B, T, D]), gy = rng.normalTensor([B, T, D])
        let stateShape = [B, H, l.config.valueSize, map.outputSize(inputSize: dk)]
        let gS = rng.normalTensor(stateShape)

        // One pass over T steps vs [0, cut) then [cut, T) from its final state.
        let one = try l.forward(x, store: whole, omega: nil, initialState: nil)
        let first = try l.forward(steps(x, 0, cut), store: parts, omega: nil, initialState: nil)
        let second = try l.forward(steps(x, cut, T), store: parts, omega: nil, initialState: first.state)
        XCTAssertEqual(one.state.shape, stateShape, file: file, line: line)
        assertSpecClose(joined(first.y, second.y), one.y.storage, "y in segments", file: file, line: line)
        assertSpecClose(second.state.storage, one.state.storage, "final state in segments", file: file, line: line)

        // Backward of L = <gy, y> + <gS, S_T>: the second segment first, its dL/dS_0 into the first.
        let dOne = try l.backward(gy, dstate: gS, cache: one.cache, store: &whole)
        let dSecond = try l.backward(steps(gy, cut, T), dstate: gS, cache: second.cache, store: &parts)
        let dFirst = try l.backward(steps(gy, 0, cut), dstate: dSecond.dinitialState, cache: first.cache, store: &parts)
        XCTAssertEqual(dOne.dinitialState.shape, stateShape, file: file, line: line)
        assertSpecClose(joined(dFirst.dx, dSecond.dx), dOne.dx.storage, "dx in segments", file: file, line: line)
        assertSpecClose(dFirst.dinitialState.storage, dOne.dinitialState.storage, "dS_0 in segments", file: file, line: line)
        for name in ["fw.qkv.weight", "fw.out.weight"] {
            assertSpecClose(try parts.gradientTensor(name).storage, try whole.gradientTensor(name).storage,
                            "d\(name) in segments", file: file, line: line)
        }
        print("  \(rule) \(map) \(algorithm.map { "\($0)" } ?? "auto"): max|segments - one pass|: y \(maxAbsDifference(joined(first.y, second.y), one.y.storage.asDouble)), dx \(maxAbsDifference(joined(dFirst.dx, dSecond.dx), dOne.dx.storage.asDouble)), dS_0 \(maxAbsDifference(dFirst.dinitialState.storage, dOne.dinitialState.storage.asDouble))")
    }

    func testDeltaRuleSegmentsEqualOnePass() throws {
        try checkSegments(.delta, .elu1, .sum, algorithm: .recurrent, seed: 11)
        try checkSegments(.delta, .dpfp(order: 1), .sum, algorithm: .chunked(size: 2), seed: 12)
    }

    func testSumRuleWithoutDenominatorSegmentsEqualOnePass() throws {
        try checkSegments(.sum, .elu1, .none, algorithm: .recurrent, seed: 13)
        try checkSegments(.sum, .dpfp(order: 1), .sum, algorithm: .chunked(size: 2), seed: 14)
    }

    /// T = 0: S_T = S_0 and dL/dS_0 = dL/dS_T.
    func testEmptySequencePassesTheStateThrough() throws {
        var rng = SeededRNG(seed: 15)
        var store = ParameterStore()
        let l = try layer(.delta, .elu1, .sum, algorithm: nil, store: &store, rng: &rng)
        let s0 = rng.normalTensor([B, H, dk, dk])   // elu1: Dphi = dk
        let r = try l.forward(Tensor(shape: [B, 0, D]), store: store, omega: nil, initialState: s0)
        XCTAssertEqual(r.state.storage, s0.storage)
        let g = try l.backward(Tensor(shape: [B, 0, D]), dstate: s0, cache: r.cache, store: &store)
        XCTAssertEqual(g.dinitialState.storage, s0.storage)
    }

    func testStateErrors() throws {
        var rng = SeededRNG(seed: 16)
        var store = ParameterStore()
        let x = rng.normalTensor([B, T, D])
        let delta = try layer(.delta, .elu1, .sum, algorithm: nil, store: &store, rng: &rng)
        XCTAssertThrowsError(try delta.forward(x, store: store, omega: nil, initialState: Tensor(shape: [B, H, dk, 2 * dk]))) {
            XCTAssertTrue("\($0)".contains("initial state") && "\($0)".contains("[2, 2, 3, 3]"), "\($0)")
        }
        let r = try delta.forward(x, store: store, omega: nil, initialState: nil)
        XCTAssertThrowsError(try delta.backward(x, dstate: Tensor(shape: [B, H, dk]), cache: r.cache, store: &store)) {
            XCTAssertTrue("\($0)".contains("dstate"), "\($0)")
        }
        var other = ParameterStore()
        let withDenominator = try layer(.sum, .elu1, .sum, denominator: true, algorithm: nil, store: &other, rng: &rng)
        XCTAssertThrowsError(try withDenominator.forward(x, store: other, omega: nil,
                                                         initialState: Tensor(shape: [B, H, dk, dk]))) {
            XCTAssertTrue("\($0)".contains("denominator"), "\($0)")
        }
    }
}
