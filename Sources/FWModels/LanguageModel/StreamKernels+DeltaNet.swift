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
}
