import XCTest
import FWTestSupport

/// Feature maps phi and normalisations n (docs/contract.md sections 2, 3 and 7):
/// forward against the Float64 reference, backward against central finite
/// differences of the reference with loss <dout, n(phi(x))>, parsing, the
/// forbidden pair, the zero vector under `sum`, favor's max-subtraction, and
/// FavorProjection.
final class FeatureMapTests: XCTestCase {
    /// Every map the brief asks for at input size d (favor:5 draws its Omega).
    func maps(d: Int) -> [FeatureMap] {
        var list: [FeatureMap] = [.identity, .silu, .elu1, .dpfp(order: 1), .dpfp(order: 3), .favor(features: 5)]
        if 2 * d - 1 != 3 && 2 * d - 1 != 1 { list.insert(.dpfp(order: 2 * d - 1), at: 5) }
        return list
    }

    /// Every valid (phi, n) pair at input size d.
    func pairs(d: Int) -> [(FeatureMap, FeatureNormalization)] {
        var result: [(FeatureMap, FeatureNormalization)] = []
        for map in maps(d: d) {
            for norm in FeatureNormalization.allCases where !(norm == .sum && !map.isNonNegative) {
                result.append((map, norm))
            }
        }
        return result
    }

    func omega(for map: FeatureMap, d: Int, rng: inout SeededRNG) throws -> Tensor? {
        guard case let .favor(m) = map else { return nil }
        return try FavorProjection.draw(features: m, inputSize: d, rng: &rng)
    }

    // MARK: forward

    func testForwardMatchesFloat64Reference() throws {
        var rng = SeededRNG(seed: 1)
        var worst = 0.0
        for d in [1, 4, 16] {
            for (map, norm) in pairs(d: d) {
                if case .dpfp(3) = map, d == 1 { continue }  // needs N <= 2d - 1
                let rows = 9
                let x = rng.normalTensor([3, rows / 3, d])
                let om = try omega(for: map, d: d, rng: &rng)
                let out = try map.apply(x, omega: om, normalization: norm)
                XCTAssertEqual(out.shape, [3, rows / 3, map.outputSize(inputSize: d)])
                let ref = FeatureMapsReference.apply(map, norm, x: x.storage.asDouble, rows: rows, d: d,
                                                     omega: om?.storage.asDouble)
                let label = "forward \(map)+\(norm) d=\(d)"
                assertSpecClose(out.storage, ref, label)
                worst = max(worst, maxAbsDifference(out.storage, ref) / max(1, ref.map(abs).max() ?? 0))
            }
        }
        print("FeatureMapTests forward: worst relative max error \(worst)")
    }

    // MARK: backward

    /// Float32 backward vs central differences of the Float64 forward, loss <dout, n(phi(x))>.
    func checkGradient(_ map: FeatureMap, _ norm: FeatureNormalization, x: Tensor, omega: Tensor?,
                       rng: inout SeededRNG, label: String) throws -> Double {
        let d = x.shape.last!
        let rows = x.count / d
        let out = try map.apply(x, omega: omega, normalization: norm)
        let dout = rng.normalTensor(out.shape)
        let dx = try map.gradient(dout, x: x, out: out, omega: omega, normalization: norm)
        XCTAssertEqual(dx.shape, x.shape)
        let omegaD = omega?.storage.asDouble
        let doutD = dout.storage.asDouble
        let fd = centralDifferences(at: x.storage.asDouble) { xs in
            dot(doutD, FeatureMapsReference.apply(map, norm, x: xs, rows: rows, d: d, omega: omegaD))
        }
        assertSpecClose(dx.storage, fd, label)
        return maxAbsDifference(dx.storage, fd) / max(1, fd.map(abs).max() ?? 0)
    }

    func testBackwardMatchesFiniteDifferences() throws {
        var rng = SeededRNG(seed: 2)
        var worst = 0.0
        for d in [1, 4] {
            for (map, norm) in pairs(d: d) {
                if case .dpfp(3) = map, d == 1 { continue }
                let x = rng.normalTensor([2, 3, d])
                let om = try omega(for: map, d: d, rng: &rng)
                worst = max(worst, try checkGradient(map, norm, x: x, omega: om, rng: &rng,
                                                     label: "backward \(map)+\(norm) d=\(d)"))
            }
        }
        print("FeatureMapTests backward: worst relative max error vs FD \(worst)")
    }

    /// favor at d = 16 (the contract's bound) and a map at a larger d, forward + backward.
    func testBackwardFavorAtSixteen() throws {
        var rng = SeededRNG(seed: 3)
        let d = 16
        let map = FeatureMap.favor(features: 5)
        let om = try FavorProjection.draw(features: 5, inputSize: d, rng: &rng)
        for norm in FeatureNormalization.allCases {
            let x = rng.normalTensor([2, d])
            _ = try checkGradient(map, norm, x: x, omega: om, rng: &rng, label: "backward favor:5+\(norm) d=16")
        }
        let x = rng.normalTensor([2, d])
        _ = try checkGradient(.dpfp(order: 2 * d - 1), .sum, x: x, omega: nil, rng: &rng,
                              label: "backward dpfp:31+sum d=16")
    }

    // MARK: parsing and validation

    func testParseRoundTrips() throws {
        for map: FeatureMap in [.identity, .silu, .elu1, .dpfp(order: 1), .dpfp(order: 7), .favor(features: 64)] {
            XCTAssertEqual(try FeatureMap(parsing: map.description), map)
        }
        XCTAssertEqual(try FeatureMap(parsing: "dpfp:3"), .dpfp(order: 3))
        XCTAssertEqual(try FeatureMap(parsing: "favor:64").outputSize(inputSize: 16), 128)
        XCTAssertEqual(FeatureMap.dpfp(order: 3).outputSize(inputSize: 4), 24)
        XCTAssertEqual(FeatureMap.elu1.outputSize(inputSize: 4), 4)
        XCTAssertFalse(FeatureMap.identity.isNonNegative)
        XCTAssertFalse(FeatureMap.silu.isNonNegative)
        XCTAssertEqual(FeatureMap.silu.outputSize(inputSize: 4), 4)
        XCTAssertThrowsError(try FeatureNormalization.validate(map: .silu, normalization: .sum))
        XCTAssertThrowsError(try FastWeightProgrammer(rule: .sum, featureMap: .silu, denominator: true))
        XCTAssertTrue(FeatureMap.elu1.isNonNegative && FeatureMap.dpfp(order: 1).isNonNegative
                      && FeatureMap.favor(features: 1).isNonNegative)
        for norm in FeatureNormalization.allCases {
            XCTAssertEqual(try FeatureNormalization(parsing: norm.description), norm)
        }
        XCTAssertEqual(FeatureNormalization.l2.description, "l2")
    }

    func testParseErrorsListValidForms() {
        for bad in ["foo", "", "Identity", "dpfp", "dpfp:", "dpfp:x", "dpfp:0", "favor:-1", "favor:+3",
                    "dpfp:3:4", "favor: 4", "elu1:2"] {
            XCTAssertThrowsError(try FeatureMap(parsing: bad), "'\(bad)'") { error in
                guard case let FWError.invalidArgument(message) = error else {
                    return XCTFail("'\(bad)': \(error)")
                }
                XCTAssertTrue(message.contains("identity, silu, elu1, dpfp:N (N >= 1) or favor:M (M >= 1)"), message)
                XCTAssertTrue(message.contains("'\(bad)'"), message)
            }
        }
        for bad in ["", "L2", "softmax"] {
            XCTAssertThrowsError(try FeatureNormalization(parsing: bad)) { error in
                XCTAssertEqual("\(error)", "unknown normalisation '\(bad)': expected none, sum or l2")
            }
        }
    }

    func testValidateInputSize() throws {
        XCTAssertNoThrow(try FeatureMap.dpfp(order: 7).validate(inputSize: 4))
        XCTAssertNoThrow(try FeatureMap.dpfp(order: 1).validate(inputSize: 1))
        XCTAssertThrowsError(try FeatureMap.dpfp(order: 8).validate(inputSize: 4)) { error in
            XCTAssertTrue("\(error)".contains("1 <= N <= 2d - 1 for input size d = 4"), "\(error)")
        }
        // Sizes that would overflow 2 d N are an error, not a trap.
        XCTAssertThrowsError(try FeatureMap.dpfp(order: 3).validate(inputSize: 1 << 62))
        XCTAssertThrowsError(try FeatureMap.favor(features: 1 << 62).validate(inputSize: 4))
        XCTAssertThrowsError(try FeatureMap.dpfp(order: 1 << 30).validate(inputSize: 1 << 30)) { error in
            XCTAssertTrue("\(error)".contains("exceeds"), "\(error)")
        }
        XCTAssertThrowsError(try FeatureMap.dpfp(order: 0).validate(inputSize: 4))
        XCTAssertThrowsError(try FeatureMap.favor(features: 0).validate(inputSize: 4))
        XCTAssertThrowsError(try FeatureMap.elu1.validate(inputSize: 0))
        XCTAssertThrowsError(try FeatureMap.dpfp(order: 8).apply(Tensor(shape: [2, 4]), omega: nil,
                                                                 normalization: .none))
    }

    func testIdentityWithSumIsRejected() {
        XCTAssertThrowsError(try FeatureNormalization.validate(map: .identity, normalization: .sum)) { error in
            guard case let FWError.invalidArgument(message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("identity") && message.contains("sum"), message)
        }
        XCTAssertThrowsError(try FeatureMap.identity.apply(Tensor(shape: [2, 3]), omega: nil, normalization: .sum))
        XCTAssertThrowsError(try FeatureMap.identity.gradient(Tensor(shape: [2, 3]), x: Tensor(shape: [2, 3]),
                                                             out: Tensor(shape: [2, 3]), omega: nil,
                                                             normalization: .sum))
        for map: FeatureMap in [.elu1, .dpfp(order: 2), .favor(features: 3)] {
            XCTAssertNoThrow(try FeatureNormalization.validate(map: map, normalization: .sum))
        }
        XCTAssertNoThrow(try FeatureNormalization.validate(map: .identity, normalization: .l2))
    }

    func testShapeErrorsNameTheTensor() throws {
        var rng = SeededRNG(seed: 4)
        let x = rng.normalTensor([2, 3, 4])
        let favor = FeatureMap.favor(features: 5)
        let om = try FavorProjection.draw(features: 5, inputSize: 4, rng: &rng)
        XCTAssertThrowsError(try favor.apply(x, omega: Tensor(shape: [5, 3]), normalization: .none)) { error in
            XCTAssertEqual(error as? FWError, .shapeMismatch(tensor: "omega", expected: "[5, 4]", got: [5, 3]))
        }
        XCTAssertThrowsError(try favor.apply(x, omega: nil, normalization: .none)) { error in
            XCTAssertTrue("\(error)".contains("needs omega"), "\(error)")
        }
        XCTAssertThrowsError(try FeatureMap.elu1.apply(x, omega: om, normalization: .none)) { error in
            XCTAssertTrue("\(error)".contains("takes no omega"), "\(error)")
        }
        let out = try favor.apply(x, omega: om, normalization: .sum)
        XCTAssertEqual(out.shape, [2, 3, 10])
        XCTAssertThrowsError(try favor.gradient(Tensor(shape: [2, 3, 9]), x: x, out: out, omega: om,
                                                normalization: .sum)) { error in
            XCTAssertEqual(error as? FWError, .shapeMismatch(tensor: "dout", expected: "[2, 3, 10]", got: [2, 3, 9]))
        }
        XCTAssertThrowsError(try favor.gradient(out, x: x, out: Tensor(shape: [6, 10]), omega: om,
                                                normalization: .sum)) { error in
            XCTAssertEqual(error as? FWError, .shapeMismatch(tensor: "out", expected: "[2, 3, 10]", got: [6, 10]))
        }
        XCTAssertThrowsError(try FeatureMap.elu1.apply(Tensor(shape: []), omega: nil, normalization: .none)) { error in
            guard case FWError.shapeMismatch(tensor: "x", _, _) = error else { return XCTFail("\(error)") }
        }
    }

    // MARK: sum normalisation of a zero vector

    func testZeroVectorUnderSumGivesZeroAndZeroGradient() throws {
        var rng = SeededRNG(seed: 5)
        // dpfp of x = 0 is the zero vector; row 1 is an ordinary vector.
        var x = rng.normalTensor([2, 4])
        for t in 0..<4 { x[0, t] = 0 }
        let map = FeatureMap.dpfp(order: 3)
        let out = try map.apply(x, omega: nil, normalization: .sum)
        XCTAssertEqual(Array(out.storage[0..<24]), [Float](repeating: 0, count: 24))
        XCTAssertEqual(out.storage[24..<48].reduce(0, +), 1, accuracy: 1e-5)
        let dout = rng.normalTensor(out.shape)
        let dx = try map.gradient(dout, x: x, out: out, omega: nil, normalization: .sum)
        XCTAssertEqual(Array(dx.storage[0..<4]), [0, 0, 0, 0])
        XCTAssertTrue(dx.storage[4..<8].contains { $0 != 0 })
        // dpfp:1 at d = 1 is identically zero (relu(x) relu(-x)): output and gradient 0.
        let x1 = rng.normalTensor([5, 1])
        let o1 = try FeatureMap.dpfp(order: 1).apply(x1, omega: nil, normalization: .sum)
        XCTAssertEqual(o1.storage, [Float](repeating: 0, count: 10))
        let g1 = try FeatureMap.dpfp(order: 1).gradient(rng.normalTensor([5, 2]), x: x1, out: o1, omega: nil,
                                                        normalization: .sum)
        XCTAssertEqual(g1.storage, [Float](repeating: 0, count: 5))
        XCTAssertTrue(g1.isFinite && o1.isFinite)
        // The normalisation on its own: a zero row stays zero and passes zero gradient.
        let u: [Float] = [0, 0, 0, 1, 2, 1]
        var o = [Float](repeating: .nan, count: 6)
        var du = [Float](repeating: .nan, count: 6)
        let dy: [Float] = [1, -2, 3, 1, 1, 1]
        FeatureNormalization.sum.forward(out: &o, u: u, rows: 2, size: 3)
        XCTAssertEqual(o, [0, 0, 0, 0.25, 0.5, 0.25])
        FeatureNormalization.sum.backward(du: &du, dout: dy, u: u, out: o, rows: 2, size: 3)
        XCTAssertEqual(du, [0, 0, 0, 0, 0, 0])  // second row: dout constant -> zero gradient too
    }

    // MARK: favor's max-subtraction

    func testFavorMaxSubtractionMatchesPlainFormulaUnderSum() throws {
        var rng = SeededRNG(seed: 6)
        let d = 8, m = 5
        let map = FeatureMap.favor(features: m)
        let om = try FavorProjection.draw(features: m, inputSize: d, rng: &rng)
        // Ordinary inputs: the shifted sum-normalised features equal the plain
        // Float32 features (the `none` path) divided by their sum.
        let x = rng.normalTensor([6, d])
        let shifted = try map.apply(x, omega: om, normalization: .sum)
        let plain = try map.apply(x, omega: om, normalization: .none)
        var plainNormalised = [Float]()
        for row in 0..<6 {
            let p = plain.storage[(row * 2 * m)..<((row + 1) * 2 * m)]
            let s = p.reduce(0, +)
            plainNormalised += p.map { $0 / s }
        }
        assertSpecClose(shifted.storage, plainNormalised, "favor sum: shifted vs plain Float32")
        XCTAssertLessThan(maxAbsDifference(shifted.storage, plainNormalised.asDouble), 1e-6)
        // Large inputs (|x|^2/2 ~ 130): the plain Float32 exps underflow to 0
        // (or overflow); the shifted form still matches the Float64 plain
        // formula, forward and backward.
        let big = Tensor(shape: x.shape, storage: x.storage.map { $0 * 6 })
        let plainBig = try map.apply(big, omega: om, normalization: .none)
        XCTAssertTrue(plainBig.storage.contains { $0 == 0 || !$0.isFinite },
                      "expected the plain Float32 formula to underflow or overflow here")
        let shiftedBig = try map.apply(big, omega: om, normalization: .sum)
        XCTAssertTrue(shiftedBig.isFinite)
        let ref = FeatureMapsReference.apply(map, .sum, x: big.storage.asDouble, rows: 6, d: d,
                                             omega: om.storage.asDouble)
        assertSpecClose(shiftedBig.storage, ref, "favor sum, large inputs")
        let gradErr = try checkGradient(map, .sum, x: Tensor(shape: [2, d], storage: Array(big.storage[0..<(2 * d)])),
                              omega: om, rng: &rng, label: "favor sum backward, large inputs")
        print("FeatureMapTests favor max-subtraction: forward error \(maxAbsDifference(shiftedBig.storage, ref)), "
              + "relative gradient error \(gradErr)")
    }

    // MARK: FavorProjection

    func testFavorProjectionReproducibleAndShaped() throws {
        var a = SeededRNG(seed: 7), b = SeededRNG(seed: 7), c = SeededRNG(seed: 8)
        let wa = try FavorProjection.draw(features: 11, inputSize: 4, rng: &a)
        let wb = try FavorProjection.draw(features: 11, inputSize: 4, rng: &b)
        let wc = try FavorProjection.draw(features: 11, inputSize: 4, rng: &c)
        XCTAssertEqual(wa, wb)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(wa, wc)
        XCTAssertEqual(wa.shape, [11, 4])  // 11 = 2 full blocks of 4 + 3 rows
        for (m, d) in [(5, 4), (1, 3), (3, 1), (64, 16), (7, 16)] {
            var rng = SeededRNG(seed: UInt64(m * 100 + d))
            let w = try FavorProjection.draw(features: m, inputSize: d, rng: &rng)
            XCTAssertEqual(w.shape, [m, d])
            XCTAssertTrue(w.isFinite)
        }
        var r = SeededRNG(seed: 1)
        XCTAssertThrowsError(try FavorProjection.draw(features: 0, inputSize: 4, rng: &r))
        XCTAssertThrowsError(try FavorProjection.draw(features: 4, inputSize: 0, rng: &r))
    }

    func testFavorProjectionRowsOrthogonalWithinBlocks() throws {
        var rng = SeededRNG(seed: 9)
        let m = 37, d = 16  // blocks of 16, 16, 5
        let w = try FavorProjection.draw(features: m, inputSize: d, rng: &rng)
        func row(_ i: Int) -> [Double] { Array(w.storage[(i * d)..<((i + 1) * d)]).asDouble }
        func norm(_ v: [Double]) -> Double { dot(v, v).squareRoot() }
        var worstCos = 0.0, largestCrossBlock = 0.0
        var norms: [Double] = []
        for i in 0..<m {
            norms.append(norm(row(i)))
            for j in 0..<i {
                let cosine = abs(dot(row(i), row(j))) / (norm(row(i)) * norm(row(j)))
                if i / d == j / d { worstCos = max(worstCos, cosine) } else { largestCrossBlock = max(largestCrossBlock, cosine) }
            }
        }
        XCTAssertLessThan(worstCos, 1e-5, "rows within a block must be orthogonal")
        XCTAssertGreaterThan(largestCrossBlock, 0.1, "blocks are independent, not mutually orthogonal")
        // Rescaled: norms are chi(16)-like (mean ~ 3.9), not all 1 and not all equal.
        let mean = norms.reduce(0, +) / Double(m)
        XCTAssertGreaterThan(mean, 3.0)
        XCTAssertLessThan(mean, 5.0)
        XCTAssertGreaterThan(norms.max()! - norms.min()!, 0.5)
        print("FeatureMapTests FavorProjection: worst |cos| within blocks \(worstCos), mean row norm \(mean)")
    }
}
