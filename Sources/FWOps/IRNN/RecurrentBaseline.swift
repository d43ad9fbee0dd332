import FWCore
#if canImport(Glibc)
import Glibc
#endif

/// Pieces shared by the recurrent baselines (`IRNN`, `LSTM`, `AssociativeLSTM`).
///
/// All three have the same skeleton: pre-activations `A [B, T, G]` (G = N for the
/// IRNN, 4N for the LSTM, 9N/2 for the associative LSTM) are
///
///     A[b, t] = x[b, t] U^T + b + h[b, t-1] W^T        (h[b, -1] = 0)
///
/// The input part for all B*T rows is one sgemm up front; the recurrent part is
/// one sgemm per step over the batch. Row-major `[B, T, D]` means that the B rows
/// of step t are `base + t*D` with leading dimension `T*D`: a strided BLAS operand,
/// no copy. The backward mirrors it: `dh[b, t-1] += dA[b, t] W` per step, then
/// `dU = dA^T X`, `dx = dA U`, `db = sum of dA's rows` over all B*T rows at once,
/// and `dW = sum_b dA[b, 1..T-1]^T h[b, 0..T-2]` (a shifted product per sequence).
///
/// Threads: these ops batch over B inside each sgemm and start no threads; OpenBLAS
/// uses the thread count `ThreadOwnership` last set (call them inside
/// `ThreadOwnership.withBLASThreads(_:)` to choose it).
enum RecurrentBaseline {
    /// Checks `x` is `[B, T, input]` and returns B and T.
    static func checkInput(_ x: Tensor, input: Int) throws -> (batch: Int, time: Int) {
        try x.checkRank("x", 3, pattern: "[B, T, \(input)]")
        try x.checkShape("x", [x.shape[0], x.shape[1], input])
        return (x.shape[0], x.shape[1])
    }

    /// Checks the weights of a cell with `rows` pre-activations per step and
    /// hidden size `hidden`: W `[rows, hidden]`, U `[rows, Din]`, b `[rows]`.
    /// Returns Din. Sizes must be positive.
    static func checkWeights(W: Tensor, U: Tensor, b: Tensor, rows: Int, hidden: Int,
                             rowsName: String) throws -> Int {
        try W.checkShape("W", [rows, hidden])
        try U.checkRank("U", 2, pattern: "[\(rowsName), Din]")
        try U.checkShape("U", [rows, U.shape[1]])
        try b.checkShape("b", [rows])
        guard U.shape[1] >= 1 else {
            throw FWError.shapeMismatch(tensor: "U", expected: "[\(rowsName), Din] with Din >= 1", got: U.shape)
        }
        return U.shape[1]
    }

    /// `A[count, rows] = X[count, input] U[rows, input]^T + 1 b^T`: the input
    /// projection of every time step of every sequence in one sgemm.
    static func inputProjection(
        x: UnsafePointer<Float>, U: UnsafePointer<Float>, b: UnsafePointer<Float>,
        A: UnsafeMutablePointer<Float>, count: Int, rows: Int, input: Int
    ) {
        for r in 0..<count {
            (A + r * rows).update(from: b, count: rows)
        }
        BLAS.sgemm(.none, .transpose, m: count, n: rows, k: input,
                   alpha: 1, a: x, lda: input, b: U, ldb: input,
                   beta: 1, c: A, ldc: rows)
    }

    /// The recurrent term of step t > 0 for all B sequences:
    /// `A[:, t] += h[:, t-1] W^T` with `A [B, T, rows]`, `h [B, T, hidden]`,
    /// `W [rows, hidden]`.
    static func addRecurrent(
        h: UnsafePointer<Float>, W: UnsafePointer<Float>, A: UnsafeMutablePointer<Float>,
        t: Int, batch: Int, time: Int, rows: Int, hidden: Int
    ) {
        BLAS.sgemm(.none, .transpose, m: batch, n: rows, k: hidden,
                   alpha: 1, a: h + (t - 1) * hidden, lda: time * hidden,
                   b: W, ldb: hidden,
                   beta: 1, c: A + t * rows, ldc: time * rows)
    }

    /// The backward of `addRecurrent` into h: `dh[:, t-1] += dA[:, t] W`.
    static func backRecurrent(
        dA: UnsafePointer<Float>, W: UnsafePointer<Float>, dh: UnsafeMutablePointer<Float>,
        t: Int, batch: Int, time: Int, rows: Int, hidden: Int
    ) {
        BLAS.sgemm(.none, .none, m: batch, n: hidden, k: rows,
                   alpha: 1, a: dA + t * rows, lda: time * rows,
                   b: W, ldb: hidden,
                   beta: 1, c: dh + (t - 1) * hidden, ldc: time * hidden)
    }

    /// Parameter and input gradients from all pre-activation gradients `dA [B, T, rows]`:
    ///
    ///     dW[rows, hidden] = sum_b sum_{t>=1} dA[b, t]^T h[b, t-1]   (per sequence, k = T-1)
    ///     dU[rows, input]  = dA^T X                                  (k = B*T)
    ///     db[rows]         = sum over the B*T rows of dA
    ///     dx[B*T, input]   = dA U
    /// `parameterGradients` writing into gradient tensors (dx `[B, T, Din]`,
    /// dW `[rows, N]`, dU `[rows, Din]`, db `[rows]`): the one place that
    /// opens their storage, shared by the IRNN, LSTM and A-LSTM backward.
    static func parameterGradients(
        dA: UnsafePointer<Float>, h: UnsafePointer<Float>, x: UnsafePointer<Float>,
        U: UnsafePointer<Float>,
        dx: inout Tensor, dW: inout Tensor, dU: inout Tensor, db: inout Tensor,
        batch: Int, time: Int, rows: Int, hidden: Int, input: Int
    ) {
        dx.withUnsafeMutableBufferPointer { dxp in
            dW.withUnsafeMutableBufferPointer { dWp in
                dU.withUnsafeMutableBufferPointer { dUp in
                    db.withUnsafeMutableBufferPointer { dbp in
                        parameterGradients(
                            dA: dA, h: h, x: x, U: U,
                            dW: dWp.baseAddress!, dU: dUp.baseAddress!, db: dbp.baseAddress!, dx: dxp.baseAddress!,
                            batch: batch, time: time, rows: rows, hidden: hidden, input: input)
                    }
                }
            }
        }
    }

    static func parameterGradients(
        dA: UnsafePointer<Float>, h: UnsafePointer<Float>, x: UnsafePointer<Float>,
        U: UnsafePointer<Float>,
        dW: UnsafeMutablePointer<Float>, dU: UnsafeMutablePointer<Float>,
        db: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>,
        batch: Int, time: Int, rows: Int, hidden: Int, input: Int
    ) {
        let count = batch * time
        dW.initialize(repeating: 0, count: rows * hidden)
        if time > 1 {
            for s in 0..<batch {
                BLAS.sgemm(.transpose, .none, m: rows, n: hidden, k: time - 1,
                           alpha: 1, a: dA + (s * time + 1) * rows, lda: rows,
                           b: h + s * time * hidden, ldb: hidden,
                           beta: 1, c: dW, ldc: hidden)
            }
        }
        BLAS.sgemm(.transpose, .none, m: rows, n: input, k: count,
                   alpha: 1, a: dA, lda: rows, b: x, ldb: input,
                   beta: 0, c: dU, ldc: input)
        db.initialize(repeating: 0, count: rows)
        for r in 0..<count {
            let row = dA + r * rows
            for j in 0..<rows { db[j] += row[j] }
        }
        BLAS.sgemm(.none, .none, m: count, n: input, k: rows,
                   alpha: 1, a: dA, lda: rows, b: U, ldb: input,
                   beta: 0, c: dx, ldc: input)
    }

    /// The logistic function 1 / (1 + e^-z) (saturates to exact 0 or 1, never NaN).
    @inline(__always)
    static func sigmoid(_ z: Float) -> Float { 1 / (1 + expf(-z)) }

    /// tanh in Float32.
    @inline(__always)
    static func tanh(_ z: Float) -> Float { tanhf(z) }

    /// A uniformly random permutation of `0..<n` (Fisher-Yates).
    static func permutation(_ n: Int, rng: inout SeededRNG) -> [Int] {
        var p = Array(0..<n)
        if n < 2 { return p }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            p.swapAt(i, j)
        }
        return p
    }
}

/// Runs `body` with base pointers of several read-only arrays at once.
@inline(__always)
func withBaselinePointers<R>(
    _ a: [Float], _ b: [Float], _ c: [Float], _ d: [Float],
    _ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>) throws -> R
) rethrows -> R {
    try a.withUnsafeBufferPointer { pa in
        try b.withUnsafeBufferPointer { pb in
            try c.withUnsafeBufferPointer { pc in
                try d.withUnsafeBufferPointer { pd in
                    try body(pa.baseAddress!, pb.baseAddress!, pc.baseAddress!, pd.baseAddress!)
                }
            }
        }
    }
}

/// Runs `body` with base pointers of two read-only arrays at once.
@inline(__always)
func withBaselinePointers<R>(
    _ a: [Float], _ b: [Float],
    _ body: (UnsafePointer<Float>, UnsafePointer<Float>) throws -> R
) rethrows -> R {
    try a.withUnsafeBufferPointer { pa in
        try b.withUnsafeBufferPointer { pb in try body(pa.baseAddress!, pb.baseAddress!) }
    }
}
