import FWCore

/// Parameters of an IRNN (Le, Jaitly & Hinton 2015): a ReLU RNN whose recurrent
/// matrix starts as the identity. A baseline row of Ba et al. (2016), Table 1.
///
///     h_t = relu(W h_{t-1} + U x_t + b),   h_{-1} = 0
///
/// * `W`: `[N, N]` recurrent weights;
/// * `U`: `[N, Din]` input weights;
/// * `b`: `[N]` bias.
public struct IRNNParameters: Sendable, Equatable {
    /// Recurrent weights W, `[N, N]`.
    public var W: Tensor
    /// Input weights U, `[N, Din]`.
    public var U: Tensor
    /// Bias b, `[N]`.
    public var b: Tensor

    /// Parameters from given tensors (shapes are checked when the op runs).
    public init(W: Tensor, U: Tensor, b: Tensor) {
        self.W = W
        self.U = U
        self.b = b
    }

    /// The IRNN initialisation: `W = recurrentScale * I`, `b = 0`,
    /// `U ~ N(0, inputStd^2)` with `inputStd = 1/sqrt(Din)` unless given.
    ///
    /// Le et al. (2015) set the recurrent matrix to the identity (scaled down for
    /// some tasks) and the biases to zero, and draw the non-recurrent weights from
    /// a small zero-mean Gaussian (standard deviation 0.001 in their toy problems,
    /// as we read the paper; check it for per-task values). We default to `W = I` and
    /// `U ~ N(0, 1/Din)`, the same input scaling docs/contract.md section 7 uses for the
    /// fast-weights RNN, so the two are compared at the same input gain; pass
    /// `inputStd: 0.001` for Le et al.'s draw and `recurrentScale` for a scaled
    /// identity.
    ///
    /// - Parameters:
    ///   - hidden: N >= 1.
    ///   - input: Din >= 1.
    ///   - rng: the generator the input weights are drawn from.
    public init(hidden: Int, input: Int, rng: inout SeededRNG,
                recurrentScale: Float = 1, inputStd: Float? = nil) {
        precondition(hidden >= 1 && input >= 1, "IRNNParameters: hidden \(hidden) and input \(input) must be >= 1")
        var w = Tensor(shape: [hidden, hidden])
        for i in 0..<hidden { w.storage[i * hidden + i] = recurrentScale }
        W = w
        U = rng.normalTensor([hidden, input], std: inputStd ?? 1 / Float(input).squareRoot())
        b = Tensor(shape: [hidden])
    }

    /// N, the hidden size (W's rows).
    public var hidden: Int { W.shape.first ?? 0 }

    /// Din, the input size (U's columns).
    public var input: Int { U.shape.count == 2 ? U.shape[1] : 0 }

    /// Checks W `[N, N]`, U `[N, Din]`, b `[N]` and returns (N, Din).
    func validate() throws -> (hidden: Int, input: Int) {
        try W.checkRank("W", 2, pattern: "[N, N]")
        let n = W.shape[0]
        guard n >= 1 else { throw FWError.shapeMismatch(tensor: "W", expected: "[N, N] with N >= 1", got: W.shape) }
        let din = try RecurrentBaseline.checkWeights(W: W, U: U, b: b, rows: n, hidden: n, rowsName: "N")
        return (n, din)
    }
}

/// What `IRNN.backward` needs from the forward pass: the input, the hidden
/// states (relu'(z) = 1 exactly where h > 0) and the parameters.
public struct IRNNCache: Sendable {
    /// The input x, `[B, T, Din]`.
    public let x: Tensor
    /// The hidden states h, `[B, T, N]`.
    public let h: Tensor
    /// The parameters the forward pass used.
    public let parameters: IRNNParameters
}

/// Gradients of an IRNN: dL/dx per example, parameter gradients summed over the batch.
public struct IRNNGradients: Sendable {
    /// dL/dx, `[B, T, Din]`.
    public var dx: Tensor
    /// dL/dW, `[N, N]`.
    public var dW: Tensor
    /// dL/dU, `[N, Din]`.
    public var dU: Tensor
    /// dL/db, `[N]`.
    public var db: Tensor
}

/// The IRNN op (Le et al. 2015) over a batch of B sequences: explicit forward
/// and backward-through-time, the per-step products as sgemm over the batch.
///
///     z_t = W h_{t-1} + U x_t + b        (h_{-1} = 0)
///     h_t = relu(z_t)
public enum IRNN {
    /// Runs the IRNN over `x [B, T, Din]` and returns every hidden state
    /// `h [B, T, N]` with the cache `backward` needs.
    ///
    /// `U x_t + b` for all B*T rows is one sgemm; then per step one
    /// `[B, N] x [N, N]` sgemm adds `h_{t-1} W^T`.
    ///
    /// - Throws: `FWError.shapeMismatch` naming `x`, `W`, `U` or `b`.
    public static func forward(x: Tensor, parameters: IRNNParameters) throws -> (h: Tensor, cache: IRNNCache) {
        let (n, din) = try parameters.validate()
        let (batch, time) = try RecurrentBaseline.checkInput(x, input: din)
        var h = Tensor(shape: [batch, time, n])
        if batch * time > 0 {
            withBaselinePointers(x.storage, parameters.W.storage, parameters.U.storage, parameters.b.storage) {
                px, pW, pU, pb in
                h.withUnsafeMutableBufferPointer { ph in
                    forwardKernel(x: px, W: pW, U: pU, b: pb, h: ph.baseAddress!,
                                  batch: batch, time: time, hidden: n, input: din)
                }
            }
        }
        return (h, IRNNCache(x: x, h: h, parameters: parameters))
    }

    /// Backpropagation through time from `dh [B, T, N]` (dL/dh_t for every step).
    ///
    /// Returns dL/dx `[B, T, Din]` and dL/dW, dL/dU, dL/db summed over the batch
    /// (fresh tensors, not accumulated into anything).
    ///
    /// - Throws: `FWError.shapeMismatch` naming `dh`.
    public static func backward(dh: Tensor, cache: IRNNCache) throws -> IRNNGradients {
        let p = cache.parameters
        let (n, din) = try p.validate()
        let (batch, time) = (cache.h.shape[0], cache.h.shape[1])
        try dh.checkShape("dh", cache.h.shape)
        var g = IRNNGradients(dx: Tensor(shape: [batch, time, din]), dW: Tensor(shape: [n, n]),
                              dU: Tensor(shape: [n, din]), db: Tensor(shape: [n]))
        if batch * time == 0 { return g }
        var dz = dh.storage
        withBaselinePointers(cache.x.storage, cache.h.storage, p.W.storage, p.U.storage) { px, ph, pW, pU in
            dz.withUnsafeMutableBufferPointer { pdz in
                backwardKernel(x: px, h: ph, W: pW, U: pU, dz: pdz.baseAddress!, gradients: &g,
                               batch: batch, time: time, hidden: n, input: din)
            }
        }
        return g
    }

    /// Floating-point operations of the forward pass (or forward + backward):
    /// a multiply-add counts 2, an elementwise operation 1.
    ///
    /// Forward: `2BT N Din` (input projection) + `2B(T-1) N^2` (recurrence) +
    /// `2BTN` (bias, relu). Backward: `2B(T-1) N^2` twice (dh recurrence, dW) +
    /// `2BT N Din` twice (dU, dx) + `2BTN` (mask, db).
    public static func flops(batch: Int, time: Int, hidden: Int, input: Int, backward: Bool) -> Double {
        let (b, t, n, d) = (Double(batch), Double(time), Double(hidden), Double(input))
        let rec = 2 * b * max(t - 1, 0) * n * n
        let inp = 2 * b * t * n * d
        let forward = inp + rec + 2 * b * t * n
        return backward ? forward + 2 * rec + 2 * inp + 2 * b * t * n : forward
    }
}
