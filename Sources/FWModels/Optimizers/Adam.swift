#if canImport(Glibc)
import Glibc
#endif
import FWCore

/// Adam (Kingma & Ba) with bias correction, optionally with decoupled
/// weight decay (AdamW), as one loop over the store's flat arrays.
///
/// `m` and `v` are flat, with the `ParameterStore`'s layout (a parameter's
/// moments sit at its slice's offset). For update number `t = step + 1`:
///
/// ```
/// m = beta1 m + (1 - beta1) g
/// v = beta2 v + (1 - beta2) g^2
/// mhat = m / (1 - beta1^t),  vhat = v / (1 - beta2^t)
/// p   -= lr * (mhat / (sqrt(vhat) + eps) + weightDecay * p)
/// ```
public struct Adam: Sendable {
    /// The step size used when `update` is not given another one.
    public var learningRate: Float
    /// Decay of the first moment.
    public var beta1: Float
    /// Decay of the second moment.
    public var beta2: Float
    /// Added to `sqrt(vhat)`.
    public var eps: Float
    /// Decoupled weight decay (0: plain Adam).
    public var weightDecay: Float
    /// First moments, laid out like `ParameterStore.values` (empty until the first update).
    public internal(set) var m: [Float] = []
    /// Second moments, same layout.
    public internal(set) var v: [Float] = []
    /// Number of updates taken (the `t` of the bias correction is `step + 1` at the next).
    public internal(set) var step: Int = 0

    /// An optimiser with `betas = (beta1, beta2)`; moments are allocated at the first update.
    public init(learningRate: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8,
                weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.beta1 = betas.0
        self.beta2 = betas.1
        self.eps = eps
        self.weightDecay = weightDecay
    }

    /// Takes one step on `store.values` from `store.gradients` (the
    /// gradients are left as they are: zero them before the next backward).
    /// `learningRate` overrides `self.learningRate` for this step (schedules).
    public mutating func update(_ store: inout ParameterStore, learningRate lr: Float? = nil) {
        let n = store.count
        if m.count != n {
            precondition(m.isEmpty, "Adam: moments for \(m.count) numbers, store has \(n)")
            m = [Float](repeating: 0, count: n)
            v = [Float](repeating: 0, count: n)
        }
        step += 1
        let lr = lr ?? learningRate
        let b1 = beta1, b2 = beta2, eps = eps, wd = weightDecay
        // Bias corrections in Float64: 1 - 0.999^t is tiny for small t.
        let c1 = Float(1 - pow(Double(b1), Double(step)))
        let c2 = Float(1 - pow(Double(b2), Double(step)))
        if n == 0 { return }
        store.withPointers { p in
            m.withUnsafeMutableBufferPointer { mb in
                v.withUnsafeMutableBufferPointer { vb in
                    let params = p.values, grads = p.gradients
                    let mm = mb.baseAddress!, vv = vb.baseAddress!
                    for i in 0..<n {
                        let g = grads[i]
                        let mi = b1 * mm[i] + (1 - b1) * g
                        let vi = b2 * vv[i] + (1 - b2) * g * g
                        mm[i] = mi
                        vv[i] = vi
                        let mhat = mi / c1
                        let vhat = vi / c2
                        params[i] -= lr * (mhat / (vhat.squareRoot() + eps) + wd * params[i])
                    }
                }
            }
        }
    }

    /// Replaces the moments and step count (checkpoint restore). `m` and `v`
    /// must have the same count (the store's).
    public mutating func restore(m: [Float], v: [Float], step: Int) {
        precondition(m.count == v.count && step >= 0, "Adam.restore: m \(m.count), v \(v.count), step \(step)")
        self.m = m
        self.v = v
        self.step = step
    }

    /// The moments of one parameter, as tensors of its shape (zeros before the first update).
    public func moments(of slice: ParameterSlice) -> (m: Tensor, v: Tensor) {
        if m.isEmpty { return (Tensor(shape: slice.shape), Tensor(shape: slice.shape)) }
        return (Tensor(shape: slice.shape, storage: Array(m[slice.range])),
                Tensor(shape: slice.shape, storage: Array(v[slice.range])))
    }
}
