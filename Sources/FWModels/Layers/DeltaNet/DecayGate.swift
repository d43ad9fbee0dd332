#if canImport(Glibc)
import Glibc
#endif
import FWCore

/// Gated DeltaNet's log-decay per head and step (FLA's `use_gate_in_kernel`,
/// after Mamba2), from a logit z = w_a . x (FLA's `a_proj`):
///
/// ```
/// g[b, h, t] = -exp(A_log[h]) * softplus(z[b, h, t] + dt_bias[h])        g <= 0, a_t = exp(g) in (0, 1]
/// softplus(u) = log(1 + e^u) = max(u, 0) + log1p(e^{-|u|})
///
/// dz        = dg * (-exp(A_log[h])) * sigmoid(z + dt_bias[h])
/// dA_log[h] += sum_{b,t} dg * g                  (d g / d A_log = g)
/// ddt_bias[h] += sum_{b,t} dz
/// ```
///
/// Parameters `<name>.A_log [H]`, `<name>.dt_bias [H]`, drawn by
/// `initialValues(heads:rng:)` as FLA does.
public struct DecayGate: Sendable {
    /// H, the number of heads.
    public let heads: Int
    /// `A_log [H]`: the decay rate's log, named `<name>.A_log`.
    public let aLog: ParameterSlice
    /// `dt_bias [H]`: the softplus' shift, named `<name>.dt_bias`.
    public let dtBias: ParameterSlice

    /// Registers `<name>.A_log` and `<name>.dt_bias` (`initialValues`, drawn from `rng` in that order).
    public init(heads: Int, name: String, store: inout ParameterStore, rng: inout SeededRNG) {
        precondition(heads > 0, "DecayGate: heads must be positive, got \(heads)")
        self.heads = heads
        let (a, dt) = Self.initialValues(heads: heads, rng: &rng)
        self.aLog = store.register("\(name).A_log", shape: [heads], initializer: .values(a))
        self.dtBias = store.register("\(name).dt_bias", shape: [heads], initializer: .values(dt))
    }

    /// FLA's initialisation (fla/layers/gated_deltanet.py):
    ///
    /// ```
    /// A_log   = log(A),  A ~ U(0, 16)         (drawn as 16 (1 - u), u in [0, 1): never log 0)
    /// dt      = exp(u' (log 0.1 - log 0.001) + log 0.001), clamped below at 1e-4   (dt in [0.001, 0.1))
    /// dt_bias = dt + log(-expm1(-dt))         (softplus^-1(dt): softplus(dt_bias) = dt)
    /// ```
    /// All A's are drawn first, then all dt's.
    public static func initialValues(heads: Int, rng: inout SeededRNG) -> (aLog: [Float], dtBias: [Float]) {
        let aLog = (0..<heads).map { _ in Float(log(16 * (1 - Double(rng.uniform())))) }
        let (dtMin, dtMax, floor) = (0.001, 0.1, 1e-4)
        let dtBias = (0..<heads).map { _ -> Float in
            let u = Double(rng.uniform())
            let dt = max(exp(u * (log(dtMax) - log(dtMin)) + log(dtMin)), floor)
            return Float(dt + log(-expm1(-dt)))
        }
        return (aLog, dtBias)
    }

    /// softplus(u) = log(1 + e^u), without overflow.
    @inlinable
    public static func softplus(_ u: Float) -> Float { max(u, 0) + log1pf(expf(-abs(u))) }

    /// `g[b, h, t]` for logits `z [B, H, T]` (head h of row `i` is `(i / T) % H`).
    public static func forward(g: UnsafeMutablePointer<Float>, logits z: UnsafePointer<Float>,
                               aLog: UnsafePointer<Float>, dtBias: UnsafePointer<Float>, B: Int, H: Int, T: Int) {
        for b in 0..<B {
            for h in 0..<H {
                let rate = expf(aLog[h]), row = (b * H + h) * T
                for t in 0..<T { g[row + t] = -rate * softplus(z[row + t] + dtBias[h]) }
            }
        }
    }

    /// `dlogits [B, H, T]` (overwritten) from `dg`; accumulates `daLog [H]`
    /// and `ddtBias [H]`. `g` is the forward's output.
    public static func backward(dlogits: UnsafeMutablePointer<Float>, daLog: UnsafeMutablePointer<Float>,
                                ddtBias: UnsafeMutablePointer<Float>, dg: UnsafePointer<Float>,
                                logits z: UnsafePointer<Float>, g: UnsafePointer<Float>,
                                aLog: UnsafePointer<Float>, dtBias: UnsafePointer<Float>, B: Int, H: Int, T: Int) {
        for b in 0..<B {
            for h in 0..<H {
                let rate = expf(aLog[h]), row = (b * H + h) * T
                var dA: Float = 0, dBias: Float = 0
                for t in 0..<T {
                    let i = row + t
                    let dz = -dg[i] * rate * ActivationFunction.logistic(z[i] + dtBias[h])
                    dlogits[i] = dz
                    dA += dg[i] * g[i]
                    dBias += dz
                }
                daLog[h] += dA
                ddtBias[h] += dBias
            }
        }
    }
}
