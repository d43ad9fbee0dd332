#if canImport(Glibc)
import Glibc
#endif
import FWCore

/// The sinusoidal positional encoding of Vaswani et al. (2017), added to a
/// batch of sequences `x [B, T, D]` (no parameters):
///
/// ```
/// PE[t, 2i]     = sin(t / 10000^(2i / D))
/// PE[t, 2i + 1] = cos(t / 10000^(2i / D))        t = 0..T-1, i = 0..ceil(D/2)-1
/// y[b, t, :]    = x[b, t, :] + PE[t, :]
/// ```
///
/// (With an odd D the last column is a sine.) The angles are computed in
/// Float64 and rounded once. The backward is the identity: `dx = dy`.
public enum PositionalEncoding {
    /// The wavelength base, 10000.
    public static let base: Double = 10_000

    /// The table `PE [length, dimensions]`.
    public static func table(length: Int, dimensions: Int) -> Tensor {
        precondition(length >= 0 && dimensions >= 0, "PositionalEncoding: negative size \(length) x \(dimensions)")
        var pe = Tensor(shape: [length, dimensions])
        for j in 0..<dimensions {
            // Columns 2i and 2i + 1 share the frequency 10000^(-2i / D).
            let frequency = Glibc.pow(base, -Double(j - j % 2) / Double(dimensions))
            for t in 0..<length {
                let angle = Double(t) * frequency
                pe.storage[t * dimensions + j] = Float(j % 2 == 0 ? Glibc.sin(angle) : Glibc.cos(angle))
            }
        }
        return pe
    }

    /// Adds `PE` to every sequence of `x [B, T, D]` in place.
    ///
    /// - Throws: `FWError.shapeMismatch` naming `PositionalEncoding x` unless `x` has rank 3.
    public static func add(to x: inout Tensor) throws {
        try x.checkRank("PositionalEncoding x", 3, pattern: "[B, T, D]")
        let (B, T, D) = (x.shape[0], x.shape[1], x.shape[2])
        let pe = table(length: T, dimensions: D)
        for b in 0..<B {
            let base = b * T * D
            for i in 0..<(T * D) { x.storage[base + i] += pe.storage[i] }
        }
    }

    /// `y = x + PE` for `x [B, T, D]`.
    public static func forward(_ x: Tensor) throws -> Tensor {
        var y = x
        try add(to: &y)
        return y
    }

    /// `dx = dy`: the encoding does not depend on `x`.
    public static func backward(_ dy: Tensor) -> Tensor { dy }
}
