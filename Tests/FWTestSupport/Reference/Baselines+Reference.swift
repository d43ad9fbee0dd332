// Float64 references ("oracles") of the recurrent baselines: IRNN, LSTM and the
// associative LSTM, written from the formulas with naive loops, one sequence
// and one step at a time, independent of the engine's batched kernels.
// All arrays are flat row-major: x [B, T, Din], h [B, T, N], W [G, N], U [G, Din], b [G].
import Foundation
import XCTest
import FastWeights

/// Float64 reference evaluations of the recurrent baselines.
public enum BaselinesReference {
    /// `sum_k M[row, k] v[k]` for a row-major matrix with `cols` columns.
    static func rowDot(_ M: [Double], _ row: Int, _ cols: Int, _ v: ArraySlice<Double>) -> Double {
        var s = 0.0
        var k = 0
        for value in v {
            s += M[row * cols + k] * value
            k += 1
        }
        return s
    }

    static func sigmoid(_ z: Double) -> Double { 1 / (1 + exp(-z)) }

    /// Pre-activations `W h_prev + U x_t + b` of one step (`rows` of them).
    static func preactivation(_ W: [Double], _ U: [Double], _ b: [Double], rows: Int, hidden: Int, input: Int,
                              hPrev: [Double], x: ArraySlice<Double>) -> [Double] {
        (0..<rows).map { g in
            b[g] + rowDot(W, g, hidden, hPrev[...]) + rowDot(U, g, input, x)
        }
    }

    // MARK: IRNN

    /// IRNN: `h_t = relu(W h_{t-1} + U x_t + b)`, h_{-1} = 0. Returns h `[B, T, N]`
    /// and the pre-activations z `[B, T, N]` (to check the distance to relu's kink).
    public static func irnn(x: [Double], W: [Double], U: [Double], b: [Double],
                            batch: Int, time: Int, hidden n: Int, input: Int) -> (h: [Double], z: [Double]) {
        var h = [Double](repeating: 0, count: batch * time * n)
        var zs = h
        for s in 0..<batch {
            var hPrev = [Double](repeating: 0, count: n)
            for t in 0..<time {
                let o = (s * time + t)
                let z = preactivation(W, U, b, rows: n, hidden: n, input: input, hPrev: hPrev,
                                      x: x[(o * input)..<((o + 1) * input)])
                for j in 0..<n {
                    zs[o * n + j] = z[j]
                    hPrev[j] = max(0, z[j])
                    h[o * n + j] = hPrev[j]
                }
            }
        }
        return (h, zs)
    }

    // MARK: LSTM

    /// LSTM with gate blocks i, f, g, o in W, U, b (`4N` rows):
    /// `c_t = f c_{t-1} + i g`, `h_t = o tanh(c_t)`, h_{-1} = c_{-1} = 0.
    /// Returns h `[B, T, N]`.
    public static func lstm(x: [Double], W: [Double], U: [Double], b: [Double],
                            batch: Int, time: Int, hidden n: Int, input: Int) -> [Double] {
        var h = [Double](repeating: 0, count: batch * time * n)
        for s in 0..<batch {
            var hPrev = [Double](repeating: 0, count: n)
            var c = [Double](repeating: 0, count: n)
            for t in 0..<time {
                let o = (s * time + t)
                let a = preactivation(W, U, b, rows: 4 * n, hidden: n, input: input, hPrev: hPrev,
                                      x: x[(o * input)..<((o + 1) * input)])
                for j in 0..<n {
                    let i = sigmoid(a[j])
                    let f = sigmoid(a[n + j])
                    let g = tanh(a[2 * n + j])
                    let og = sigmoid(a[3 * n + j])
                    c[j] = f * c[j] + i * g
                    hPrev[j] = og * tanh(c[j])
                    h[o * n + j] = hPrev[j]
                }
            }
        }
        return h
    }

    // MARK: Associative LSTM

    struct Complex {
        var re: Double
        var im: Double
        static func + (a: Complex, b: Complex) -> Complex { Complex(re: a.re + b.re, im: a.im + b.im) }
        static func * (a: Complex, b: Complex) -> Complex {
            Complex(re: a.re * b.re - a.im * b.im, im: a.re * b.im + a.im * b.re)
        }
        static func * (s: Double, a: Complex) -> Complex { Complex(re: s * a.re, im: s * a.im) }
        var modulus: Double { (re * re + im * im).squareRoot() }
        static let zero = Complex(re: 0, im: 0)
    }

    /// bound(z) = z / max(1, |z|), recording |z| in `moduli`.
    static func bound(_ z: Complex, _ moduli: inout [Double]) -> Complex {
        let r = z.modulus
        moduli.append(r)
        return (1 / max(1, r)) * z
    }

    /// Associative LSTM (Danihelka et al. 2016), H = N/2 complex units, rows of
    /// W, U, b in blocks i, f, o [H each], r_i, r_o, u [2H each: re then im]:
    ///
    ///     c_{s,t} = g_f c_{s,t-1} + (P_s r_i) * (g_i u)
    ///     h_t = g_o bound( (1/K) sum_s (P_s r_o) * c_{s,t} )
    ///
    /// with `(P_s r)[j] = r[permutations[s][j]]`. Returns h `[B, T, N]` and the
    /// modulus of every number `bound` was applied to (to check the distance to
    /// its kink at |z| = 1): the keys and values (`inputModuli`) and the read
    /// (`readModuli`).
    public static func associativeLSTM(x: [Double], W: [Double], U: [Double], b: [Double],
                                       permutations: [[Int]],
                                       batch: Int, time: Int, hidden n: Int, input: Int)
        -> (h: [Double], inputModuli: [Double], readModuli: [Double])
    {
        let H = n / 2
        let K = permutations.count
        var moduli: [Double] = []
        var readModuli: [Double] = []
        var out = [Double](repeating: 0, count: batch * time * n)
        for s in 0..<batch {
            var hPrev = [Double](repeating: 0, count: n)
            var cells = [[Complex]](repeating: [Complex](repeating: .zero, count: H), count: K)
            for t in 0..<time {
                let o = (s * time + t)
                let a = preactivation(W, U, b, rows: 9 * H, hidden: n, input: input, hPrev: hPrev,
                                      x: x[(o * input)..<((o + 1) * input)])
                let gi = (0..<H).map { sigmoid(a[$0]) }
                let gf = (0..<H).map { sigmoid(a[H + $0]) }
                let go = (0..<H).map { sigmoid(a[2 * H + $0]) }
                let ri = (0..<H).map { bound(Complex(re: a[3 * H + $0], im: a[4 * H + $0]), &moduli) }
                let ro = (0..<H).map { bound(Complex(re: a[5 * H + $0], im: a[6 * H + $0]), &moduli) }
                let u = (0..<H).map { bound(Complex(re: a[7 * H + $0], im: a[8 * H + $0]), &moduli) }
                var read = [Complex](repeating: .zero, count: H)
                for k in 0..<K {
                    for j in 0..<H {
                        let key = ri[permutations[k][j]]
                        cells[k][j] = gf[j] * cells[k][j] + key * (gi[j] * u[j])
                        read[j] = read[j] + ro[permutations[k][j]] * cells[k][j]
                    }
                }
                for j in 0..<H {
                    let y = bound((1 / Double(K)) * read[j], &readModuli)
                    hPrev[j] = go[j] * y.re
                    hPrev[H + j] = go[j] * y.im
                }
                for j in 0..<n { out[o * n + j] = hPrev[j] }
            }
        }
        return (out, moduli, readModuli)
    }
}

// MARK: Gradient checks shared by the baseline tests

/// Checks analytic gradients against central finite differences of a Float64
/// reference under the loss `L = <dh, h>`.
///
/// `inputs[i]` are the Float64 values of the i-th differentiated array (x, W,
/// U, b, ...), `analytic[i]` the op's Float32 gradient of the same array,
/// `reference(inputs)` returns h. Asserts docs/contract.md's bound per array and
/// returns `max|analytic - fd|` per name.
@discardableResult
public func assertGradientsMatchFiniteDifferences(
    names: [String], inputs: [[Double]], analytic: [[Float]], dh: [Double],
    h: Double = 1e-6, label: String,
    reference: ([[Double]]) -> [Double],
    file: StaticString = #filePath, line: UInt = #line
) -> [String: Double] {
    precondition(names.count == inputs.count && inputs.count == analytic.count)
    var errors: [String: Double] = [:]
    for i in 0..<inputs.count {
        let fd = centralDifferences(at: inputs[i], h: h) { v in
            var all = inputs
            all[i] = v
            return dot(dh, reference(all))
        }
        assertSpecClose(analytic[i], fd, "\(label) \(names[i])", file: file, line: line)
        errors[names[i]] = maxAbsDifference(analytic[i], fd)
    }
    return errors
}

/// Asserts that `body` throws `FWError.shapeMismatch` naming `tensor`.
public func assertShapeMismatch(_ tensor: String, file: StaticString = #filePath, line: UInt = #line,
                                _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected a shape mismatch naming \(tensor), nothing thrown", file: file, line: line)
    } catch let FWError.shapeMismatch(name, expected, got) {
        XCTAssertEqual(name, tensor, "shape mismatch names \(name) (expected \(expected), got \(got))",
                       file: file, line: line)
    } catch {
        XCTFail("expected a shape mismatch naming \(tensor), got \(error)", file: file, line: line)
    }
}
