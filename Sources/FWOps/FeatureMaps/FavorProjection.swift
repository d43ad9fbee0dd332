import FWCore

/// FAVOR+'s random matrix Omega `[M, d]` (Performer, "orthogonal random
/// features" with `scaling = 0`).
///
/// ```
/// for each block b of d rows (ceil(M / d) blocks):
///     G_b = d x d matrix of N(0, 1) draws;  G_b = Q_b R_b  (LAPACK sgeqrf + sorgqr)
///     block rows = the columns of Q_b (orthonormal), i.e. rows of Q_b^T;
///     a last partial block keeps the first M mod d of them
/// then row i *= |g_i|, g_i an independent N(0, I_d) vector
/// ```
/// so rows within a block are orthogonal and each row's norm is chi(d)
/// distributed, like a Gaussian row's. Draw order (for reproducibility): all
/// blocks' Gaussians block by block, row-major; then the M scaling vectors.
public enum FavorProjection {
    /// Draws Omega `[M, d]` from `rng` (seeded, reproducible). Throws
    /// `FWError.invalidArgument` for M < 1 or d < 1, or on a LAPACK failure.
    public static func draw(features M: Int, inputSize d: Int, rng: inout SeededRNG) throws -> Tensor {
        guard M >= 1, d >= 1 else {
            throw FWError.invalidArgument("FavorProjection: need features M >= 1 and input size d >= 1, got M = \(M), d = \(d)")
        }
        var omega = Tensor(shape: [M, d])
        var block = [Float](repeating: 0, count: d * d)
        var tau = [Float](repeating: 0, count: d)
        var row = 0
        while row < M {
            for i in 0..<(d * d) { block[i] = rng.normal() }
            // Q (d x d, orthogonal) overwrites the block.
            try block.withUnsafeMutableBufferPointer { q in
                try tau.withUnsafeMutableBufferPointer { t in
                    try LAPACK.sgeqrf(m: d, n: d, a: q.baseAddress!, lda: d, tau: t.baseAddress!)
                    try LAPACK.sorgqr(m: d, n: d, k: d, a: q.baseAddress!, lda: d, tau: UnsafePointer(t.baseAddress!))
                }
            }
            // Rows of Q^T (= columns of Q), as Performer takes them.
            let take = min(d, M - row)
            for i in 0..<take {
                for j in 0..<d { omega.storage[(row + i) * d + j] = block[j * d + i] }
            }
            row += take
        }
        // Performer's scaling = 0: each row takes the norm of its own Gaussian d-vector.
        for i in 0..<M {
            var s2: Double = 0
            for _ in 0..<d {
                let g = Double(rng.normal())
                s2 += g * g
            }
            let norm = Float(s2.squareRoot())
            for j in 0..<d { omega.storage[i * d + j] *= norm }
        }
        return omega
    }
}
