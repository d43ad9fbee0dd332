import CBLAS

extension BLAS {
    /// `y = alpha * op(A) x + beta * y` with `A` stored `m x n` (`lda >= n`).
    /// `x` has `n` entries (`m` when transposed) and `y` the other count.
    @inlinable
    public static func sgemv(
        _ transA: Transpose, m: Int, n: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        x: UnsafePointer<Float>, incx: Int = 1,
        beta: Float, y: UnsafeMutablePointer<Float>, incy: Int = 1
    ) {
        ThreadOwnership.claimBLASThreads()
        require(m >= 0 && n >= 0, "sgemv", "negative size m=\(m) n=\(n)")
        require(lda >= max(1, n), "sgemv", "lda=\(lda) < n=\(n)")
        require(incx != 0 && incy != 0, "sgemv", "zero increment")
        let outCount = transA == .none ? m : n
        if outCount == 0 { return }
        if (transA == .none ? n : m) == 0 {
            scale(y, count: outCount, by: beta, increment: incy)
            return
        }
        cblas_sgemv(CblasRowMajor, transA.cblas, Int32(m), Int32(n), alpha, a, Int32(lda),
                    x, Int32(incx), beta, y, Int32(incy))
    }

    /// Rank-1 update `A[m, n] += alpha * x y^T` (`lda >= n`).
    @inlinable
    public static func sger(
        m: Int, n: Int, alpha: Float,
        x: UnsafePointer<Float>, incx: Int = 1,
        y: UnsafePointer<Float>, incy: Int = 1,
        a: UnsafeMutablePointer<Float>, lda: Int
    ) {
        ThreadOwnership.claimBLASThreads()
        require(m >= 0 && n >= 0, "sger", "negative size m=\(m) n=\(n)")
        require(lda >= max(1, n), "sger", "lda=\(lda) < n=\(n)")
        require(incx != 0 && incy != 0, "sger", "zero increment")
        if m == 0 || n == 0 { return }
        cblas_sger(CblasRowMajor, Int32(m), Int32(n), alpha, x, Int32(incx), y, Int32(incy), a, Int32(lda))
    }
}
