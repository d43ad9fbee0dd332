#if canImport(Glibc)
import Glibc
#endif

/// A small, fast, seeded pseudo-random generator (xoshiro256**, seeded by
/// SplitMix64): reproducible across runs and machines, and its whole state is
/// four words, so checkpoints can save and restore it exactly.
public struct SeededRNG: RandomNumberGenerator, Equatable, Sendable {
    /// The four state words (saved by checkpoints).
    public var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator seeded from `seed` through SplitMix64.
    public init(seed: UInt64) {
        var z = seed
        func splitmix() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        state = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    /// A generator resumed from saved state words.
    public init(state: (UInt64, UInt64, UInt64, UInt64)) { self.state = state }

    public static func == (a: SeededRNG, b: SeededRNG) -> Bool {
        a.state.0 == b.state.0 && a.state.1 == b.state.1 && a.state.2 == b.state.2 && a.state.3 == b.state.3
    }

    @inlinable
    public mutating func next() -> UInt64 {
        @inline(__always) func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    @inlinable
    public mutating func uniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in [0, 1) with 53 random bits.
    @inlinable
    public mutating func uniformDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// A standard normal draw (Box-Muller in Double).
    @inlinable
    public mutating func normal() -> Float {
        let u1 = max(uniformDouble(), 0x1p-60)
        let u2 = uniformDouble()
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }

    /// A tensor of `shape` with independent N(0, std^2) entries.
    public mutating func normalTensor(_ shape: [Int], std: Float = 1) -> Tensor {
        var t = Tensor(shape: shape)
        for i in 0..<t.count { t.storage[i] = std * normal() }
        return t
    }

    /// A tensor of `shape` with independent U(low, high) entries.
    public mutating func uniformTensor(_ shape: [Int], low: Float = 0, high: Float = 1) -> Tensor {
        var t = Tensor(shape: shape)
        for i in 0..<t.count { t.storage[i] = low + (high - low) * uniform() }
        return t
    }
}

@usableFromInline func _log(_ x: Double) -> Double { log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { cos(x) }
