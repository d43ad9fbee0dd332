import CBLAS

extension BLAS {
    /// `C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C` (row-major).
    ///
    /// `A` is stored `m x k` (`lda >= k`) or, transposed, `k x m` (`lda >= m`);
    /// likewise `B`. `ldc >= n`.
    @inlinable
    public static func sgemm(
        _ transA: Transpose, _ transB: Transpose,
        m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        ThreadOwnership.claimBLASThreads()
        require(m >= 0 && n >= 0 && k >= 0, "sgemm", "negative size m=\(m) n=\(n) k=\(k)")
        require(lda >= max(1, transA == .none ? k : m), "sgemm", "lda=\(lda) too small (m=\(m) k=\(k) \(transA))")
        require(ldb >= max(1, transB == .none ? n : k), "sgemm", "ldb=\(ldb) too small (k=\(k) n=\(n) \(transB))")
        require(ldc >= max(1, n), "sgemm", "ldc=\(ldc) < n=\(n)")
        if m == 0 || n == 0 { return }
        if k == 0 {
            // C = beta * C; OpenBLAS would do the same, but be explicit.
            for i in 0..<m { scale(c + i * ldc, count: n, by: beta) }
            return
        }
        cblas_sgemm(CblasRowMajor, transA.cblas, transB.cblas,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }

    /// Solves `op(A) X = alpha * B` (side left) or `X op(A) = alpha * B` (side
    /// right) for X, overwriting `B[m, n]`; `A` is triangular, `m x m` (left)
    /// or `n x n` (right), `lda >= ` its order.
    @inlinable
    public static func strsm(
        _ side: Side, _ triangle: Triangle, _ transA: Transpose, _ diagonal: Diagonal,
        m: Int, n: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafeMutablePointer<Float>, ldb: Int
    ) {
        ThreadOwnership.claimBLASThreads()
        let order = side == .left ? m : n
        require(m >= 0 && n >= 0, "strsm", "negative size m=\(m) n=\(n)")
        require(lda >= max(1, order), "strsm", "lda=\(lda) < order \(order)")
        require(ldb >= max(1, n), "strsm", "ldb=\(ldb) < n=\(n)")
        if m == 0 || n == 0 { return }
        cblas_strsm(CblasRowMajor, side.cblas, triangle.cblas, transA.cblas, diagonal.cblas,
                    Int32(m), Int32(n), alpha, a, Int32(lda), b, Int32(ldb))
    }
}
