// FastWeightLayer: forward against a Float64 reference (ReferenceFWP inside
// the layer's projections), every parameter gradient and dx against central
// finite differences of that reference (loss = <dy, y>, random dy), chunked
// vs recurrent, FAVOR+'s Omega policies, configuration and shape errors.
import XCTest
import FWTestSupport

final class FastWeightLayerTests: XCTestCase {
    private let (B, T, D, H, dk) = (2, 7, 6, 2, 3)

    /// What one checked forward/backward produced (for chunked vs recurrent).
    private struct Run {
        var y: [Float], dx: [Float], dWqkv: [Float], dWout: [Float]
    }

    private func config(_ rule: FastWeightRule, _ map: FeatureMap, _ norm: FeatureNormalization,
                        denominator: Bool = false, algorithm: FWPAlgorithm?) -> FastWeightLayerConfig {
        FastWeightLayerConfig(modelSize: D, heads: H, headSize: dk, rule: rule, featureMap: map,
                              normalization: norm, denominator: denominator, algorithm: algorithm)
    }

    private func checkGradient(_ label: String, _ analytic: [Float], at x: [Double], _ f: ([Double]) -> Double,
                               file: StaticString = #filePath, line: UInt = #line) {
        let fd = centralDifferences(at: x, f)
        print("  \(label): max|analytic - fd| = \(maxAbsDifference(analytic, fd))")
        assertSpecClose(analytic, fd, label, file: file, line: line)
    }

    /// Builds the layer from `seed` (weights N(0, weightStd^2) so that the
    /// projections are O(1)), runs forward with an explicit Omega (favor) and
    /// backward, and checks y, dx, dWqkv, dWout against the Float64 reference.
    @discardableResult
    private func checkLayer(_ c: FastWeightLayerConfig, seed: UInt64, weightStd: Float = 0.4,
                            file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        var rng = SeededRNG(seed: seed)
        var store = ParameterStore()
        let layer = try FastWeightLayer(c, name: "fw", store: &store, rng: &rng)
        XCTAssertEqual(store.names, ["fw.qkv.weight", "fw.out.weight"])
        XCTAssertEqual(layer.qkv.weight.shape, [c.projectionSize, D])
        XCTAssertEqual(layer.out.weight.shape, [D, H * c.valueSize])
        try store.setTensor("fw.qkv.weight", rng.normalTensor(layer.qkv.weight.shape, std: weightStd))
        let x = rng.normalTensor([B, T, D]), dy = rng.normalTensor([B, T, D])
        var omega: Tensor?
        if case let .favor(m) = c.featureMap { omega = try FavorProjection.draw(features: m, inputSize: dk, rng: &rng) }
        let wq = try store.tensor("fw.qkv.weight").storage.asDouble
        let wo = try store.tensor("fw.out.weight").storage.asDouble
        let xd = x.storage.asDouble, dyd = dy.storage.asDouble, od = omega?.storage.asDouble ?? []
        func reference(_ x: [Double], _ wq: [Double], _ wo: [Double]) -> [Double] {
            AttentionLayersReference.fastWeightLayer(c, x: x, wqkv: wq, wout: wo, omega: od, B: B, T: T)
        }

        let (y, cache) = try layer.forward(x, store: store, omega: omega)
        XCTAssertEqual(y.shape, [B, T, D])
        let yRef = reference(xd, wq, wo)
        print("  \(c.rule) \(c.featureMap) \(c.normalization) den=\(c.denominator) \(c.algorithm.map { "\($0)" } ?? "auto"): max|y - ref| = \(maxAbsDifference(y.storage, yRef)) (max|ref| = \(yRef.map(abs).max()!))")
        assertSpecClose(y.storage, yRef, "y", file: file, line: line)

        let dx = try layer.backward(dy, cache: cache, store: &store)
        checkGradient("dx", dx.storage, at: xd, { dot(dyd, reference($0, wq, wo)) }, file: file, line: line)
        let dWqkv = try store.gradientTensor("fw.qkv.weight").storage
        let dWout = try store.gradientTensor("fw.out.weight").storage
        checkGradient("dWqkv", dWqkv, at: wq, { dot(dyd, reference(xd, $0, wo)) }, file: file, line: line)
        checkGradient("dWout", dWout, at: wo, { dot(dyd, reference(xd, wq, $0)) }, file: file, line: line)
        return Run(y: y.storage, dx: dx.storage, dWqkv: dWqkv, dWout: dWout)
    }

    /// Both algorithms against the reference and FD, and against each other.
    private func checkBothAlgorithms(_ rule: FastWeightRule, _ map: FeatureMap, _ norm: FeatureNormalization,
                                     denominator: Bool = false, seed: UInt64, weightStd: Float = 0.4,
                                     file: StaticString = #filePath, line: UInt = #line) throws {
        let recurrent = try checkLayer(config(rule, map, norm, denominator: denominator, algorithm: .recurrent),
                                       seed: seed, weightStd: weightStd, file: file, line: line)
        let chunked = try checkLayer(config(rule, map, norm, denominator: denominator, algorithm: .chunked(size: 3)),
                                     seed: seed, weightStd: weightStd, file: file, line: line)
        print("  chunked(3) vs recurrent: y \(maxAbsDifference(chunked.y, recurrent.y.asDouble)), dx \(maxAbsDifference(chunked.dx, recurrent.dx.asDouble)), dWqkv \(maxAbsDifference(chunked.dWqkv, recurrent.dWqkv.asDouble)), dWout \(maxAbsDifference(chunked.dWout, recurrent.dWout.asDouble))")
        assertSpecClose(chunked.y, recurrent.y, "chunked vs recurrent y", file: file, line: line)
        assertSpecClose(chunked.dx, recurrent.dx, "chunked vs recurrent dx", file: file, line: line)
        assertSpecClose(chunked.dWqkv, recurrent.dWqkv, "chunked vs recurrent dWqkv", file: file, line: line)
        assertSpecClose(chunked.dWout, recurrent.dWout, "chunked vs recurrent dWout", file: file, line: line)
    }

    func testSumRuleElu1WithDenominator() throws {
        try checkBothAlgorithms(.sum, .elu1, .none, denominator: true, seed: 101)
    }

    func testSumRuleDpfp1WithDenominator() throws {
        try checkBothAlgorithms(.sum, .dpfp(order: 1), .none, denominator: true, seed: 102)
    }

    func testDeltaRuleElu1SumNormalised() throws {
        try checkBothAlgorithms(.delta, .elu1, .sum, seed: 103)
    }

    func testDeltaRuleDpfp2SumNormalised() throws {
        try checkBothAlgorithms(.delta, .dpfp(order: 2), .sum, seed: 104)
    }

    func testSumRuleFavor8WithDenominatorAndFixedOmega() throws {
        try checkBothAlgorithms(.sum, .favor(features: 8), .none, denominator: true, seed: 105)
    }

    func testDeltaRuleIdentityUnnormalised() throws {
        // Unnormalised keys: the delta rule is unstable by nature (docs/contract.md
        // section 7); the default U(-1/sqrt(D), 1/sqrt(D)) weights keep |k| small.
        try checkBothAlgorithms(.delta, .identity, .none, seed: 106, weightStd: 0.25)
    }

    func testValueSizeDifferentFromHeadSize() throws {
        var c = config(.delta, .elu1, .l2, algorithm: .chunked(size: 3))
        c.valueSize = 2
        XCTAssertEqual(c.projectionSize, H * (2 * dk + 2) + H)
        try checkLayer(c, seed: 107)
    }

    /// Training forwards draw Omega from the rng passed in: the same rng
    /// state gives the same Omega and y, another state another Omega; the
    /// backward uses the cached Omega (same as an explicit forward with it).
    func testFavorTrainingDrawsAFreshOmegaFromTheRNG() throws {
        var rng = SeededRNG(seed: 108)
        var store = ParameterStore()
        let layer = try FastWeightLayer(config(.sum, .favor(features: 8), .sum, algorithm: nil), name: "fw", store: &store, rng: &rng)
        XCTAssertNil(layer.evaluationOmega, ".freshPerForward draws no Omega at init")
        let x = rng.normalTensor([B, T, D]), dy = rng.normalTensor([B, T, D])

        var r1 = SeededRNG(seed: 7), r2 = SeededRNG(seed: 7), r3 = SeededRNG(seed: 8)
        let (y1, c1) = try layer.forward(x, store: store, training: true, rng: &r1)
        let (y2, c2) = try layer.forward(x, store: store, training: true, rng: &r2)
        let (y3, c3) = try layer.forward(x, store: store, training: true, rng: &r3)
        XCTAssertEqual(c1.omega?.shape, [8, dk])
        XCTAssertEqual(c1.omega, c2.omega)
        XCTAssertEqual(y1, y2)
        XCTAssertNotEqual(c1.omega, c3.omega)
        XCTAssertNotEqual(y1, y3)
        // The draw advances the caller's rng: the next forward gets a new Omega.
        XCTAssertNotEqual(r1, SeededRNG(seed: 7))
        let (_, c4) = try layer.forward(x, store: store, training: true, rng: &r1)
        XCTAssertNotEqual(c4.omega, c1.omega)

        // Backward with the cached Omega == backward of an explicit forward with it.
        var s1 = store, s2 = store
        let dx1 = try layer.backward(dy, cache: c1, store: &s1)
        let (yExplicit, cExplicit) = try layer.forward(x, store: store, omega: c1.omega)
        XCTAssertEqual(yExplicit, y1)
        let dx2 = try layer.backward(dy, cache: cExplicit, store: &s2)
        XCTAssertEqual(dx1, dx2)
        XCTAssertEqual(s1.gradients, s2.gradients)
        // And it is the gradient of the reference at that Omega.
        let od = c1.omega!.storage.asDouble, wq = try store.tensor("fw.qkv.weight").storage.asDouble
        let wo = try store.tensor("fw.out.weight").storage.asDouble, dyd = dy.storage.asDouble
        checkGradient("dx (training forward's Omega)", dx1.storage, at: x.storage.asDouble) {
            dot(dyd, AttentionLayersReference.fastWeightLayer(layer.config, x: $0, wqkv: wq, wout: wo, omega: od, B: self.B, T: self.T))
        }
    }

    func testFavorEvaluationPolicies() throws {
        var rng = SeededRNG(seed: 109)
        var store = ParameterStore()
        var c = config(.delta, .favor(features: 4), .sum, algorithm: nil)
        c.favorProjection = .fixedForEvaluation
        let fixed = try FastWeightLayer(c, name: "fixed", store: &store, rng: &rng)
        c.favorProjection = .freshPerForward
        let fresh = try FastWeightLayer(c, name: "fresh", store: &store, rng: &rng)
        XCTAssertEqual(fixed.evaluationOmega?.shape, [4, dk])
        let x = rng.normalTensor([B, T, D])

        // .fixedForEvaluation: evaluation is deterministic and draws nothing.
        var r1 = SeededRNG(seed: 1), r2 = SeededRNG(seed: 2)
        let (e1, ec1) = try fixed.forward(x, store: store, training: false, rng: &r1)
        let (e2, ec2) = try fixed.forward(x, store: store, training: false, rng: &r2)
        XCTAssertEqual(e1, e2)
        XCTAssertEqual(ec1.omega, fixed.evaluationOmega)
        XCTAssertEqual(ec2.omega, fixed.evaluationOmega)
        XCTAssertEqual(r1, SeededRNG(seed: 1), "evaluation with a fixed Omega must not consume the rng")
        // ... while its training forwards still draw fresh ones.
        let (_, tc) = try fixed.forward(x, store: store, training: true, rng: &r1)
        XCTAssertNotEqual(tc.omega, fixed.evaluationOmega)

        // .freshPerForward: evaluation draws too.
        var r3 = SeededRNG(seed: 3)
        let (f1, fc1) = try fresh.forward(x, store: store, training: false, rng: &r3)
        let (f2, fc2) = try fresh.forward(x, store: store, training: false, rng: &r3)
        XCTAssertNotEqual(fc1.omega, fc2.omega)
        XCTAssertNotEqual(f1, f2)
    }

    func testMapsWithoutOmegaDrawNothing() throws {
        var rng = SeededRNG(seed: 110)
        var store = ParameterStore()
        let layer = try FastWeightLayer(config(.delta, .dpfp(order: 1), .sum, algorithm: nil), name: "fw", store: &store, rng: &rng)
        let x = rng.normalTensor([B, T, D])
        var r = SeededRNG(seed: 5)
        let (y1, c1) = try layer.forward(x, store: store, training: true, rng: &r)
        XCTAssertNil(c1.omega)
        XCTAssertEqual(r, SeededRNG(seed: 5))
        let (y2, _) = try layer.forward(x, store: store, training: false, rng: &r)
        XCTAssertEqual(y1, y2)
        XCTAssertEqual(layer.modelSize, D)
    }

    /// An empty batch or sequence gives empty y and dx (the op itself needs T >= 1).
    func testEmptyBatchOrSequence() throws {
        var rng = SeededRNG(seed: 112)
        var store = ParameterStore()
        let layer = try FastWeightLayer(config(.delta, .favor(features: 2), .sum, algorithm: nil), name: "fw", store: &store, rng: &rng)
        for shape in [[1, 0, D], [0, 3, D]] {
            let (y, cache) = try layer.forward(Tensor(shape: shape), store: store, training: true, rng: &rng)
            XCTAssertEqual(y.shape, shape)
            XCTAssertEqual(cache.omega?.shape, [2, dk])
            XCTAssertEqual(try layer.backward(y, cache: cache, store: &store).shape, shape)
        }
        XCTAssertTrue(store.gradients.allSatisfy { $0 == 0 })
    }

    func testShapeErrorsNameTheTensor() throws {
        var rng = SeededRNG(seed: 111)
        var store = ParameterStore()
        let layer = try FastWeightLayer(config(.sum, .favor(features: 4), .sum, algorithm: nil), name: "fw", store: &store, rng: &rng)
        XCTAssertThrowsError(try layer.forward(Tensor(shape: [2, 7, 5]), store: store, training: true, rng: &rng)) { error in
            XCTAssertEqual(error as? FWError, .shapeMismatch(tensor: "x", expected: "[B, T, D] = [B, T, 6]", got: [2, 7, 5]))
            XCTAssertEqual("\(error)", "x: expected shape [B, T, D] = [B, T, 6], got [2, 7, 5]")
        }
        XCTAssertThrowsError(try layer.forward(Tensor(shape: [14, 6]), store: store, training: true, rng: &rng)) { error in
            XCTAssertEqual(error as? FWError, .shapeMismatch(tensor: "x", expected: "[B, T, D] = [B, T, 6]", got: [14, 6]))
        }
        let x = rng.normalTensor([2, 7, 6])
        let (_, cache) = try layer.forward(x, store: store, training: true, rng: &rng)
        XCTAssertThrowsError(try layer.backward(Tensor(shape: [2, 6, 6]), cache: cache, store: &store)) { error in
            XCTAssertEqual("\(error)", "dy: expected shape [2, 7, 6], got [2, 6, 6]")
        }
        XCTAssertThrowsError(try layer.forward(x, store: store, omega: Tensor(shape: [4, 2]))) { error in
            XCTAssertEqual("\(error)", "omega: expected shape [4, 3], got [4, 2]")
        }
        XCTAssertThrowsError(try layer.forward(x, store: store, omega: nil)) { error in
            XCTAssertTrue("\(error)".contains("favor:4 needs omega"), "\(error)")
        }
    }

    func testConfigurationErrors() throws {
        func message(_ c: FastWeightLayerConfig) -> String {
            do { try c.validate(); return "no error" } catch { return "\(error)" }
        }
        var c = config(.delta, .elu1, .none, denominator: true, algorithm: nil)
        XCTAssertEqual(message(c), "FastWeightLayerConfig: the attention denominator is defined for the sum rule only, not the delta rule")
        c = config(.sum, .identity, .sum, algorithm: nil)
        XCTAssertTrue(message(c).hasPrefix("FastWeightLayerConfig: normalisation 'sum' needs a feature map with non-negative outputs"), message(c))
        c = config(.sum, .identity, .none, denominator: true, algorithm: nil)
        XCTAssertTrue(message(c).contains("non-negative feature map"), message(c))
        c = config(.sum, .dpfp(order: 6), .sum, algorithm: nil)   // dk = 3: N <= 5
        XCTAssertTrue(message(c).hasPrefix("FastWeightLayerConfig: feature map dpfp:6: order must satisfy"), message(c))
        c = config(.sum, .elu1, .sum, algorithm: .chunked(size: 0))
        XCTAssertEqual(message(c), "FastWeightLayerConfig: chunk size must be at least 1, got 0")
        c = config(.sum, .elu1, .sum, algorithm: nil)
        c.heads = 0
        XCTAssertEqual(message(c), "FastWeightLayerConfig: heads must be at least 1, got 0")
        var rng = SeededRNG(seed: 1)
        var store = ParameterStore()
        XCTAssertThrowsError(try FastWeightLayer(c, name: "bad", store: &store, rng: &rng))
        XCTAssertEqual(store.count, 0, "a rejected configuration registers nothing")
    }
}
