/// A short vector of Float lanes for the fused recurrent kernels
/// (`FusedStep`): `SIMD16<Float>` or `SIMD8<Float>` for the bulk of a row, `SIMD4<Float>`
/// and a single `Float` for the tail, so one generic loop body serves every
/// width (`@inline(__always)` callers are specialised per type).
///
/// With the package's default flags (x86-64 baseline, SSE2) a `SIMD16` is
/// four 128-bit registers; no FMA is assumed.
protocol FloatLanes {
    /// Lanes per vector.
    static var width: Int { get }
    /// Every lane `value`.
    init(repeating value: Float)
    /// `width` floats from `p` (any alignment).
    static func load(_ p: UnsafePointer<Float>) -> Self
    /// Writes the lanes to `p` (any alignment).
    func store(_ p: UnsafeMutablePointer<Float>)
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func * (a: Self, b: Self) -> Self
    /// The sum of the lanes.
    var total: Float { get }
}

/// Loads and stores of the SIMD widths, unaligned.
extension FloatLanes where Self: SIMD, Self.Scalar == Float {
    static var width: Int { Self.scalarCount }
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Self { UnsafeRawPointer(p).loadUnaligned(as: Self.self) }
    @inline(__always)
    func store(_ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: self, as: Self.self) }
}

extension SIMD16: FloatLanes where Scalar == Float {
    /// 16 -> 8 -> 4 lanes by halves (vector adds), then four scalar adds.
    @inline(__always)
    var total: Float {
        let h8 = lowHalf + highHalf
        let h4 = h8.lowHalf + h8.highHalf
        return (h4[0] + h4[1]) + (h4[2] + h4[3])
    }
}

extension SIMD8: FloatLanes where Scalar == Float {
    @inline(__always)
    var total: Float {
        let h4 = lowHalf + highHalf
        return (h4[0] + h4[1]) + (h4[2] + h4[3])
    }
}

extension SIMD4: FloatLanes where Scalar == Float {
    @inline(__always)
    var total: Float { (self[0] + self[1]) + (self[2] + self[3]) }
}

extension Float: FloatLanes {
    static var width: Int { 1 }
    @inline(__always)
    init(repeating value: Float) { self = value }
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Float { p.pointee }
    @inline(__always)
    func store(_ p: UnsafeMutablePointer<Float>) { p.pointee = self }
    @inline(__always)
    var total: Float { self }
}
