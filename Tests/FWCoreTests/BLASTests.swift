import XCTest
import FWTestSupport

/// The BLAS/LAPACK wrappers against naive Float64 loops, with every
/// transpose combination and leading dimensions larger than the width.
final class BLASTests: XCTestCase {
    func testSgemmAllTransposesWithPaddedLeadingDimensions() {
        var rng = SeededRNG(seed: 11)
        let (m, n, k) = (5, 4, 3)
        for ta in [BLAS.Transpose.none, .transpose] {
            for tb in [BLAS.Transpose.none, .transpose] {
                let (ar, ac) = ta == .none ? (m, k) : (k, m)
                let (br, bc) = tb == .none ? (k, n) : (n, k)
                let lda = ac + 2, ldb = bc + 1, ldc = n + 3
                let a = rng.normalTensor([ar * lda]).storage
                let b = rng.normalTensor([br * ldb]).storage
                var c = rng.normalTensor([m * ldc]).storage
                let c0 = c
                BLAS.sgemm(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb, beta: 2, c: &c, ldc: ldc)
                for i in 0..<m {
                    for j in 0..<n {
                        var s = 0.0
                        for p in 0..<k {
                            let av = ta == .none ? a[i * lda + p] : a[p * lda + i]
                            let bv = tb == .none ? b[p * ldb + j] : b[j * ldb + p]
                            s += Double(av) * Double(bv)
                        }
                        XCTAssertEqual(Double(c[i * ldc + j]), 0.5 * s + 2 * Double(c0[i * ldc + j]), accuracy: 1e-5)
                    }
                    // Padding columns untouched.
                    for j in n..<ldc { XCTAssertEqual(c[i * ldc + j], c0[i * ldc + j]) }
                }
            }
        }
    }

    func testSgemvSgerAndTriangularSolve() {
        var rng = SeededRNG(seed: 12)
        let (m, n) = (4, 3)
        let a = rng.normalTensor([m * n]).storage
        let x = rng.normalTensor([n]).storage, xt = rng.normalTensor([m]).storage
        var y = [Float](repeating: 0, count: m), yt = [Float](repeating: 0, count: n)
        BLAS.sgemv(.none, m: m, n: n, alpha: 1, a: a, lda: n, x: x, beta: 0, y: &y)
        BLAS.sgemv(.transpose, m: m, n: n, alpha: 1, a: a, lda: n, x: xt, beta: 0, y: &yt)
        for i in 0..<m {
            XCTAssertEqual(Double(y[i]), (0..<n).reduce(0.0) { $0 + Double(a[i * n + $1] * x[$1]) }, accuracy: 1e-5)
        }
        for j in 0..<n {
            XCTAssertEqual(Double(yt[j]), (0..<m).reduce(0.0) { $0 + Double(a[$1 * n + j] * xt[$1]) }, accuracy: 1e-5)
        }
        var g = a
        BLAS.sger(m: m, n: n, alpha: 2, x: xt, y: x, a: &g, lda: n)
        for i in 0..<m { for j in 0..<n { XCTAssertEqual(g[i * n + j], a[i * n + j] + 2 * xt[i] * x[j], accuracy: 1e-5) } }

        // Unit lower triangular L (4 x 4): solve L X = B and check L X == B.
        var l = rng.normalTensor([16]).storage
        for i in 0..<4 { for j in i..<4 { l[i * 4 + j] = i == j ? 99 : 0 } }  // diagonal ignored (unit)
        let bm = rng.normalTensor([4 * 2]).storage
        var xs = bm
        BLAS.strsm(.left, .lower, .none, .unit, m: 4, n: 2, alpha: 1, a: l, lda: 4, b: &xs, ldb: 2)
        for i in 0..<4 {
            for j in 0..<2 {
                var s = Double(xs[i * 2 + j])
                for p in 0..<i { s += Double(l[i * 4 + p]) * Double(xs[p * 2 + j]) }
                XCTAssertEqual(s, Double(bm[i * 2 + j]), accuracy: 1e-4)
            }
        }
    }

    func testQRGivesOrthonormalColumns() throws {
        var rng = SeededRNG(seed: 13)
        let (m, n) = (6, 4)
        var a = rng.normalTensor([m * n]).storage
        var tau = [Float](repeating: 0, count: n)
        try LAPACK.sgeqrf(m: m, n: n, a: &a, lda: n, tau: &tau)
        try LAPACK.sorgqr(m: m, n: n, k: n, a: &a, lda: n, tau: tau)
        for i in 0..<n {
            for j in 0..<n {
                let d = (0..<m).reduce(0.0) { $0 + Double(a[$1 * n + i]) * Double(a[$1 * n + j]) }
                XCTAssertEqual(d, i == j ? 1 : 0, accuracy: 1e-5)
            }
        }
    }

    func testCoreNameAndLevels() {
        XCTAssertFalse(BLASCore.name.isEmpty)
        XCTAssertEqual(BLASCore.level(ofCore: "Prescott"), 1)
        XCTAssertEqual(BLASCore.level(ofCore: "SkylakeX"), 4)
        XCTAssertEqual(BLASCore.level(ofCore: "Zen"), 3)
        XCTAssertTrue((1...4).contains(BLASCore.cpuLevel))
        XCTAssertEqual(BLASCore.level(ofCore: BLASCore.recommendedCore), BLASCore.cpuLevel)
    }

    func testThreadOwnershipVisitsEverySequenceOnce() {
        for count in [0, 1, 2, 3, 17] {
            var hits = [Int](repeating: 0, count: count)
            hits.withUnsafeMutableBufferPointer { buf in
                let box = UncheckedSendable(buf)
                ThreadOwnership.forEachSequence(count) { i in box.value[i] += 1 }
            }
            XCTAssertEqual(hits, [Int](repeating: 1, count: count))
        }
    }

    func testSeededRNGIsReproducibleAndRoughlyNormal() {
        var a = SeededRNG(seed: 42), b = SeededRNG(seed: 42)
        XCTAssertEqual((0..<5).map { _ in a.next() }, (0..<5).map { _ in b.next() })
        var r = SeededRNG(seed: 1)
        let xs = (0..<20000).map { _ in Double(r.normal()) }
        let mean = xs.reduce(0, +) / Double(xs.count)
        let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count)
        XCTAssertEqual(mean, 0, accuracy: 0.03)
        XCTAssertEqual(variance, 1, accuracy: 0.05)
        let resumed = SeededRNG(state: r.state)
        XCTAssertEqual(resumed, r)
    }
}
