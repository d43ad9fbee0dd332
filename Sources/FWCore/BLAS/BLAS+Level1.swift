import CBLAS

extension BLAS {
    /// `y += alpha * x` over `count` entries.
    @inlinable
    public static func saxpy(count: Int, alpha: Float,
                             x: UnsafePointer<Float>, incx: Int = 1,
                             y: UnsafeMutablePointer<Float>, incy: Int = 1) {
        require(count >= 0 && incx != 0 && incy != 0, "saxpy", "count=\(count) incx=\(incx) incy=\(incy)")
        if count == 0 { return }
        cblas_saxpy(Int32(count), alpha, x, Int32(incx), y, Int32(incy))
    }

    /// `x . y` over `count` entries.
    @inlinable
    public static func sdot(count: Int, x: UnsafePointer<Float>, incx: Int = 1,
                            y: UnsafePointer<Float>, incy: Int = 1) -> Float {
        require(count >= 0 && incx != 0 && incy != 0, "sdot", "count=\(count) incx=\(incx) incy=\(incy)")
        if count == 0 { return 0 }
        return cblas_sdot(Int32(count), x, Int32(incx), y, Int32(incy))
    }

    /// `x *= alpha` over `count` entries (`alpha == 0` writes exact zeros,
    /// also over NaN, as BLAS's beta = 0 convention does).
    @inlinable
    public static func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by alpha: Float, increment: Int = 1) {
        require(count >= 0 && increment > 0, "scale", "count=\(count) increment=\(increment)")
        if alpha == 1 { return }
        if alpha == 0 {
            for i in 0..<count { x[i * increment] = 0 }
            return
        }
        cblas_sscal(Int32(count), alpha, x, Int32(increment))
    }
}
