/// The element-wise maps of the model layer built on `VectorExp.exp`, eight
/// lanes at a time (a scalar tail through the same lanes, so every element
/// gets the same bits wherever it sits in a buffer):
///
/// ```
/// elu1:      out = x > 0 ? x + 1 : exp(x)
/// elu1 back: dx  = x > 0 ? g : g exp(x)
/// logistic:  out = 1 / (1 + exp(-x))     as e / (1 + e) with e = exp(-|x|) for x < 0 (no overflow)
/// silu:      out = x logistic(x)
/// silu back: dx  = g s (1 + x (1 - s)),  s = logistic(x)
/// ```
///
/// Accuracy: `exp` is within 2 ulp of Double's (VectorExpTests); the maps
/// add one rounding per operation.
extension VectorExp {
    /// `out[i] = elu(x[i]) + 1` for `i < count`; `out` may be `x`.
    @inlinable
    public static func elu1(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
        // exp of min(x, 0) only: the positive lanes take x + 1 and never overflow exp.
        map(out: out, x: x, count: count) { v in exp(v.replacing(with: 0, where: v .> 0)).replacing(with: v + 1, where: v .> 0) }
    }

    /// `dx[i] = g[i] * elu1'(x[i])` (1 for x > 0, exp(x) otherwise); `dx` may be `g`.
    @inlinable
    public static func elu1Backward(dx: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                    count: Int) {
        map(out: dx, x: x, g: g, count: count) { v, gv in
            (gv * exp(v.replacing(with: 0, where: v .> 0))).replacing(with: gv, where: v .> 0)
        }
    }

    /// The logistic function of every lane, without overflow for large |x|.
    @inlinable @inline(__always)
    public static func logistic(_ v: Lanes) -> Lanes {
        let e = exp(v.replacing(with: -v, where: v .> 0))   // exp(-|x|), in (0, 1]
        let r = 1 / (1 + e)
        return r.replacing(with: e * r, where: v .< 0)
    }

    /// `out[i] = 1 / (1 + exp(-x[i]))`; `out` may be `x`.
    @inlinable
    public static func logistic(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
        map(out: out, x: x, count: count) { logistic($0) }
    }

    /// `out[i] = x[i] * logistic(x[i])`; `out` may be `x`.
    @inlinable
    public static func silu(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
        map(out: out, x: x, count: count) { $0 * logistic($0) }
    }

    /// `dx[i] = g[i] * silu'(x[i])`, silu' = s (1 + x (1 - s)), s = logistic(x); `dx` may be `g`.
    @inlinable
    public static func siluBackward(dx: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                    count: Int) {
        map(out: dx, x: x, g: g, count: count) { v, gv in
            let s = logistic(v)
            return gv * (s * (1 + v * (1 - s)))
        }
    }

    /// `out[i..<i+8] = f(x[i..<i+8])` over the buffer, the tail in part-filled lanes.
    @inlinable @inline(__always)
    static func map(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int, _ f: (Lanes) -> Lanes) {
        var i = 0
        while i < count {
            let m = Swift.min(8, count - i)
            store(f(load(x + i, count: m)), out + i, count: m)
            i += 8
        }
    }

    /// `out[i..<i+8] = f(x[i..<i+8], g[i..<i+8])` over the buffers, the tail in part-filled lanes.
    @inlinable @inline(__always)
    static func map(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, g: UnsafePointer<Float>, count: Int,
                    _ f: (Lanes, Lanes) -> Lanes) {
        var i = 0
        while i < count {
            let m = Swift.min(8, count - i)
            store(f(load(x + i, count: m), load(g + i, count: m)), out + i, count: m)
            i += 8
        }
    }
}
