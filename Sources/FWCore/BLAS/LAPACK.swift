import CLAPACKE

/// Typed wrappers over the LAPACKE calls the engine uses (row-major entry
/// points). LAPACKE's row-major calls copy to column-major temporaries, so
/// these belong to initialisation (drawing random orthogonal matrices), not
/// to a hot path.
public enum LAPACK {
    /// QR factorisation of `A[m, n]` (row-major, `lda >= n`) in place;
    /// `tau` receives `min(m, n)` reflector scales. Throws on a LAPACK error.
    public static func sgeqrf(m: Int, n: Int, a: UnsafeMutablePointer<Float>, lda: Int,
                              tau: UnsafeMutablePointer<Float>) throws {
        BLAS.require(m >= 0 && n >= 0 && lda >= max(1, n), "sgeqrf", "m=\(m) n=\(n) lda=\(lda)")
        let info = LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, Int32(m), Int32(n), a, Int32(lda), tau)
        if info != 0 { throw FWError.invalidArgument("LAPACKE_sgeqrf failed with info \(info)") }
    }

    /// Forms the `m x n` matrix Q with orthonormal columns from the first `k`
    /// reflectors left in `a` by `sgeqrf` (row-major, `lda >= n`).
    public static func sorgqr(m: Int, n: Int, k: Int, a: UnsafeMutablePointer<Float>, lda: Int,
                              tau: UnsafePointer<Float>) throws {
        BLAS.require(m >= n && n >= k && k >= 0 && lda >= max(1, n), "sorgqr", "m=\(m) n=\(n) k=\(k) lda=\(lda)")
        let info = LAPACKE_sorgqr(LAPACK_ROW_MAJOR, Int32(m), Int32(n), Int32(k), a, Int32(lda), tau)
        if info != 0 { throw FWError.invalidArgument("LAPACKE_sorgqr failed with info \(info)") }
    }
}
