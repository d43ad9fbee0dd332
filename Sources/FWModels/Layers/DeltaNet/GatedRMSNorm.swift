import FWCore
import FWOps

/// RMS normalisation of each row of width c (one head's output, c = dv),
/// optionally times a silu output gate (FLA's `FusedRMSNormGated` with the
/// default swish activation; without the gate, FLA's `RMSNorm`):
///
/// ```
/// r   = 1 / sqrt(mean_j o_j^2 + eps)              per row  (eps = 1e-5, FLA's norm_eps)
/// n   = o r
/// out = n * w * silu(z)        (gated)            w [c] shared by all heads, init 1
/// out = n * w                  (plain)
/// ```
///
/// Backward, with e = silu(z) (1 when plain):
///
/// ```
/// dn  = dout * w * e
/// dw += sum_rows dout * n * e
/// dz  = dout * n * w * silu'(z)                  (gated)
/// do  = r (dn - n mean_j(dn_j n_j))
/// ```
///
/// The weight is `<name>.weight [c]` (ones).
public struct GatedRMSNorm: Sendable {
    /// c, the width of a row.
    public let dimensions: Int
    /// eps under the square root.
    public let epsilon: Float
    /// `w [c]`, named `<name>.weight`.
    public let weight: ParameterSlice

    /// Registers `<name>.weight [c]` (ones).
    public init(_ dimensions: Int, epsilon: Float, name: String, store: inout ParameterStore) {
        precondition(dimensions > 0, "GatedRMSNorm: dimensions must be positive, got \(dimensions)")
        self.dimensions = dimensions
        self.epsilon = epsilon
        self.weight = store.register("\(name).weight", shape: [dimensions], initializer: .ones)
    }

    /// `out [rows, c]` and the saved `rstd [rows]` (r) from `inp [rows, c]` and the gate
    /// logits `gate [rows, c]` (nil: plain RMSNorm).
    public static func forward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                               inp: UnsafePointer<Float>, gate: UnsafePointer<Float>?,
                               weight w: UnsafePointer<Float>, rows: Int, c: Int, epsilon: Float) {
        if let gate {
            FeatureMap.silu.forward(out: out, x: gate, rows: rows, d: c, omega: nil, normalization: .none)
        } else {
            out.update(repeating: 1, count: rows * c)
        }
        for i in 0..<rows {
            let o = inp + i * c, y = out + i * c
            // The mean square in Float64 (cheap; c is a head's width).
            var ms = 0.0
            for j in 0..<c { ms += Double(o[j]) * Double(o[j]) }
            let r = Float(1 / (ms / Double(c) + Double(epsilon)).squareRoot())
            rstd[i] = r
            for j in 0..<c { y[j] *= o[j] * r * w[j] }
        }
    }

    /// `dinp [rows, c]` and `dgate [rows, c]` (gated only) overwritten; `dweight [c]`
    /// accumulated. `inp`, `gate` and `rstd` are the forward's.
    public static func backward(dinp: UnsafeMutablePointer<Float>, dgate: UnsafeMutablePointer<Float>?,
                                dweight: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                inp: UnsafePointer<Float>, gate: UnsafePointer<Float>?, rstd: UnsafePointer<Float>,
                                weight w: UnsafePointer<Float>, rows: Int, c: Int) {
        // e = silu(z), and dL/de = dout * n * w (gated).
        var e = [Float](repeating: 1, count: gate == nil ? 0 : rows * c)
        var de = [Float](repeating: 0, count: e.count)
        if let gate { FeatureMap.silu.forward(out: &e, x: gate, rows: rows, d: c, omega: nil, normalization: .none) }
        var dn = [Float](repeating: 0, count: c)
        for i in 0..<rows {
            let o = inp + i * c, dy = dout + i * c, dx = dinp + i * c
            let r = rstd[i]
            var dot: Float = 0          // sum_j dn_j n_j
            for j in 0..<c {
                let n = o[j] * r
                let ej = gate == nil ? 1 : e[i * c + j]
                dn[j] = dy[j] * w[j] * ej
                dweight[j] += dy[j] * n * ej
                if gate != nil { de[i * c + j] = dy[j] * n * w[j] }
                dot += dn[j] * n
            }
            let mean = dot / Float(c)
            for j in 0..<c { dx[j] = r * (dn[j] - o[j] * r * mean) }
        }
        if let gate, let dgate {
            FeatureMap.silu.backward(dx: dgate, dout: de, x: gate, out: e, rows: rows, d: c, omega: nil, normalization: .none)
        }
    }
}
