import FWCore
import FWOps

/// The per-token pieces of the DeltaNet mixers in `LanguageModelStream`:
/// one step of the short convolutions over their carried window, and one
/// step of the gated delta rule (the plain delta rule is `deltaStep`).
extension StreamKernels {
    /// One step of a causal depthwise convolution of n channels, K taps,
    /// from the carried window `W [K-1, ldw]` (oldest first; its columns
    /// 0..<n are these channels):
    ///
    /// ```
    /// u[c] = sum_{j < K-1} w[c, j] W[j, c] + w[c, K-1] x[c]     (ShortConvolution's sum, same order)
    /// W    = [W[1...]; x]                                        (the window moves on by one)
    /// ```
    ///
    /// writes the pre-activations u into `out` (silu comes after, over all channels).
    static func convolutionStep(out u: UnsafeMutablePointer<Float>, window W: UnsafeMutablePointer<Float>, ldw: Int,
                                x: UnsafePointer<Float>, weight w: UnsafePointer<Float>, channels n: Int, taps K: Int) {
        let h = K - 1
        for c in 0..<n {
            let wc = w + c * K
            var acc: Float = 0
            for j in 0..<h { acc += wc[j] * W[j * ldw + c] }
            acc += wc[h] * x[c]
            u[c] = acc
            if h > 0 {
                for j in 0..<(h - 1) { W[j * ldw + c] = W[(j + 1) * ldw + c] }
                W[(h - 1) * ldw + c] = x[c]
            }
        }
    }

    /// The gated delta rule (docs/contract.md 4b), per row of S `[dv, dk]`
    /// one read pass and one write pass, with the decay a = exp(g):
    ///
    /// ```
    /// vbar_i, r_i = S_i . k',  S_i . q'            (read: the old row against both)
    /// u_i         = beta (v_i - a vbar_i)           vbar_t = a_t S_{t-1} k'_t
    /// S_i         = a S_i + u_i k'                  S_t = a_t S_{t-1} + beta_t (v_t - vbar_t) k'_t^T
    /// o_i         = a r_i + u_i (k' . q')           = S_t,i . q'
    /// ```
    static func gatedDeltaStep(state S: UnsafeMutablePointer<Float>, rows dv: Int, features n: Int,
                               k: UnsafePointer<Float>, q: UnsafePointer<Float>, v: UnsafePointer<Float>,
                               beta: Float, decay a: Float, out o: UnsafeMutablePointer<Float>) {
        let kq = dot(k, q, n)
        let av = SIMD8<Float>(repeating: a)
        for i in 0..<dv {
            let row = S + i * n
            var ak = SIMD8<Float>(), aq = SIMD8<Float>()
            var j = 0
            while j + 8 <= n {
                let s = load8(row + j)
                ak += s * load8(k + j)
                aq += s * load8(q + j)
                j += 8
            }
            var vbar = ak.sum(), r = aq.sum()
            while j < n { vbar += row[j] * k[j]; r += row[j] * q[j]; j += 1 }
            let u = beta * (v[i] - a * vbar)
            let uv = SIMD8<Float>(repeating: u)
            j = 0
            while j + 8 <= n {
                store8(av * load8(row + j) + uv * load8(k + j), row + j)
                j += 8
            }
            while j < n { row[j] = a * row[j] + u * k[j]; j += 1 }
            o[i] = a * r + u * kq
        }
    }
}
