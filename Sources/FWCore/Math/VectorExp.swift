/// `exp` on eight Float lanes at once, and over buffers: the element-wise
/// exponentials of the model layer (softmax rows of attention and of the
/// cross-entropy, elu+1, sigmoid, silu) without a libm call per element.
///
/// The method (Cephes' `expf`): write `x = n ln 2 + r` with integer
/// `n = floor(x log2(e) + 1/2)` and `|r| <= ln(2)/2`, where `n ln 2` is
/// subtracted in two parts (`C1 + C2 = ln 2`, `C1` exact in a few bits) so
/// `r` keeps its accuracy; then
///
/// ```
/// exp(r) ~ 1 + r + r^2 (p0 + p1 r + ... + p5 r^5)    (minimax on |r| <= ln2/2)
/// exp(x) = exp(r) * 2^n                                (2^n built in the exponent bits)
/// ```
///
/// Measured against Double `exp` (VectorExpTests): at most 2 ulp over the
/// normal range. Outside it the result is what `expf` gives in kind:
/// `x > 88.72` is `+Inf`, `x < -87.33` is `0` (no subnormals: `expf`
/// would give up to 1.2e-38 there), NaN stays NaN, `-Inf` gives 0.
public enum VectorExp {
    /// Eight lanes of Float.
    public typealias Lanes = SIMD8<Float>

    /// Above this, exp overflows Float.
    @usableFromInline static let overflow: Float = 88.72283
    /// Below this, exp is below the smallest normal Float; the result is 0.
    @usableFromInline static let underflow: Float = -87.33654
    /// 1.5 * 2^23: adding it rounds a Float of magnitude below 2^22 to an integer.
    @usableFromInline static let magic: Float = 12_582_912
    /// The bit pattern of `magic`.
    @usableFromInline static let magicBits: Int32 = 0x4B40_0000

    /// `exp` of every lane (see the type's doc for the method and accuracy).
    @inlinable @inline(__always)
    public static func exp(_ x: Lanes) -> Lanes {
        // Clamp into the range where 2^n is a normal Float; the ends are fixed below.
        // (Selects, not `clamped`: that one is a generic call per vector.)
        var xc = x.replacing(with: underflow, where: x .< underflow)
        xc.replace(with: overflow, where: x .> overflow)
        // n = floor(x log2 e + 1/2), |n| <= 128: rounded to nearest by adding and
        // subtracting 1.5 * 2^23 (plain arithmetic: the generic SIMD rounding and
        // Int32 conversions are library calls per lane), then stepped down where
        // that rounded up.
        let h = xc * 1.44269504088896341 + 0.5
        let t = (h + magic) - magic
        let n = t.replacing(with: t - 1, where: t .> h)
        // r = x - n ln2, in two parts.
        var r = xc - n * 0.693359375
        r = r - n * -2.12194440e-4
        // exp(r) = 1 + r + r^2 P(r)
        var p: Lanes = Lanes(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let er = (p * (r * r) + r) + 1
        // 2^n: n + 127 in the exponent field. n is in [-126, 128]; 128 (x near
        // the overflow bound) is built as 2^127 * 2.
        // (Compared and selected as Floats: integer lane compares compile lane by lane.)
        let top = n .== 128
        let nc = n.replacing(with: 127, where: top)
        // n + 1.5 * 2^23 is exact, and its bits are those of 1.5 * 2^23 plus n.
        let e = unsafeBitCast(nc + magic, to: SIMD8<Int32>.self) &- magicBits
        let pow2 = unsafeBitCast((e &+ 127) &<< 23, to: Lanes.self)
        var y = er * pow2
        y.replace(with: y * 2, where: top)
        y.replace(with: .infinity, where: x .> overflow)
        y.replace(with: 0, where: x .< underflow)
        y.replace(with: x, where: x .!= x)                        // NaN in, NaN out
        return y
    }

    /// `exp` of one Float by the same method (the same bits as the lane
    /// form, so a scalar tail matches the vector body).
    @inlinable @inline(__always)
    public static func exp(_ x: Float) -> Float { exp(Lanes(repeating: x))[0] }

    /// Loads up to eight floats from `p` (`count` of them, `1...8`), the rest of the lanes `fill`.
    /// (A tail is copied into the vector's memory and read once: writing lane by
    /// lane would reload the vector after every lane, a store-forwarding stall each.)
    @inlinable @inline(__always)
    public static func load(_ p: UnsafePointer<Float>, count: Int, fill: Float = 0) -> Lanes {
        if count >= 8 { return UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }
        var v = Lanes(repeating: fill)
        withUnsafeMutableBytes(of: &v) { raw in
            raw.baseAddress!.assumingMemoryBound(to: Float.self).update(from: p, count: count)
        }
        return v
    }

    /// Stores the first `count` lanes (`1...8`) of `v` at `p`.
    @inlinable @inline(__always)
    public static func store(_ v: Lanes, _ p: UnsafeMutablePointer<Float>, count: Int) {
        if count >= 8 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self); return }
        withUnsafeBytes(of: v) { raw in
            p.update(from: raw.baseAddress!.assumingMemoryBound(to: Float.self), count: count)
        }
    }

    /// `out[i] = exp(x[i] - shift)` for `i < count`, returning the sum of
    /// the outputs (Float, accumulated per lane): one pass of a softmax
    /// row. `out` may be `x`.
    @inlinable
    public static func expSum(_ x: UnsafePointer<Float>, minus shift: Float, into out: UnsafeMutablePointer<Float>,
                              count: Int) -> Float {
        var acc = Lanes(repeating: 0)
        var i = 0
        while i < count {
            let m = min(8, count - i)
            // Lanes past `count` load -Inf, whose exp is 0: nothing to mask.
            let e = exp(load(x + i, count: m, fill: -.infinity) - shift)
            store(e, out + i, count: m)
            acc += e
            i += 8
        }
        return acc.sum()
    }

    /// The maximum of `x[0..<count]`, `count >= 1`.
    @inlinable
    public static func max(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var m = Lanes(repeating: x[0])
        var i = 0
        while i < count {
            let c = min(8, count - i)
            let v = load(x + i, count: c, fill: x[0])
            m.replace(with: v, where: v .> m)
            i += 8
        }
        return m.max()
    }
}
