import FWCore

/// Parameters of a standard LSTM (Hochreiter & Schmidhuber 1997, with a forget
/// gate, no peepholes): a baseline row of Ba et al. (2016), Table 1.
///
/// The four gates are stacked in the order **i, f, g, o** (input, forget, cell
/// candidate, output): rows `0..<N` of W, U and b belong to i, `N..<2N` to f,
/// `2N..<3N` to g and `3N..<4N` to o (PyTorch's order).
///
/// * `W`: `[4N, N]` recurrent weights;
/// * `U`: `[4N, Din]` input weights;
/// * `b`: `[4N]` bias.
public struct LSTMParameters: Sendable, Equatable {
    /// Recurrent weights W, `[4N, N]`, gate blocks i, f, g, o.
    public var W: Tensor
    /// Input weights U, `[4N, Din]`, gate blocks i, f, g, o.
    public var U: Tensor
    /// Bias b, `[4N]`, gate blocks i, f, g, o.
    public var b: Tensor

    /// Parameters from given tensors (shapes are checked when the op runs).
    public init(W: Tensor, U: Tensor, b: Tensor) {
        self.W = W
        self.U = U
        self.b = b
    }

    /// The usual initialisation: every weight of W and U from
    /// `U(-1/sqrt(N), 1/sqrt(N))` (PyTorch's `nn.LSTM` default), biases 0
    /// except the forget gate's, which is `forgetBias` (1 by default, as
    /// Gers et al. 2000 and Jozefowicz et al. 2015 recommend), so that the cell
    /// starts by remembering.
    ///
    /// - Parameters:
    ///   - hidden: N >= 1.
    ///   - input: Din >= 1.
    ///   - rng: the generator the weights are drawn from (W first, then U).
    public init(hidden: Int, input: Int, rng: inout SeededRNG, forgetBias: Float = 1) {
        precondition(hidden >= 1 && input >= 1, "LSTMParameters: hidden \(hidden) and input \(input) must be >= 1")
        let r = 1 / Float(hidden).squareRoot()
        W = rng.uniformTensor([4 * hidden, hidden], low: -r, high: r)
        U = rng.uniformTensor([4 * hidden, input], low: -r, high: r)
        var bias = Tensor(shape: [4 * hidden])
        for j in hidden..<(2 * hidden) { bias.storage[j] = forgetBias }
        b = bias
    }

    /// N, the hidden size (W's columns).
    public var hidden: Int { W.shape.count == 2 ? W.shape[1] : 0 }

    /// Din, the input size (U's columns).
    public var input: Int { U.shape.count == 2 ? U.shape[1] : 0 }

    /// Checks W `[4N, N]`, U `[4N, Din]`, b `[4N]` and returns (N, Din).
    func validate() throws -> (hidden: Int, input: Int) {
        try W.checkRank("W", 2, pattern: "[4N, N]")
        let n = W.shape[1]
        guard n >= 1 else { throw FWError.shapeMismatch(tensor: "W", expected: "[4N, N] with N >= 1", got: W.shape) }
        let din = try RecurrentBaseline.checkWeights(W: W, U: U, b: b, rows: 4 * n, hidden: n, rowsName: "4N")
        return (n, din)
    }
}

/// What `LSTM.backward` needs from the forward pass.
public struct LSTMCache: Sendable {
    /// The input x, `[B, T, Din]`.
    public let x: Tensor
    /// The gate activations `[B, T, 4N]`: sigmoid(i), sigmoid(f), tanh(g), sigmoid(o).
    public let gates: Tensor
    /// The cell states c_t, `[B, T, N]`.
    public let c: Tensor
    /// The hidden states h_t, `[B, T, N]`.
    public let h: Tensor
    /// The parameters the forward pass used.
    public let parameters: LSTMParameters
}

/// Gradients of an LSTM: dL/dx per example, parameter gradients summed over the batch.
public struct LSTMGradients: Sendable {
    /// dL/dx, `[B, T, Din]`.
    public var dx: Tensor
    /// dL/dW, `[4N, N]`.
    public var dW: Tensor
    /// dL/dU, `[4N, Din]`.
    public var dU: Tensor
    /// dL/db, `[4N]`.
    public var db: Tensor
}

/// The LSTM op over a batch of B sequences: explicit forward and
/// backward-through-time, the per-step products as sgemm over the batch.
///
///     [a_i, a_f, a_g, a_o] = U x_t + W h_{t-1} + b        (h_{-1} = c_{-1} = 0)
///     i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
///     c_t = f * c_{t-1} + i * g
///     h_t = o * tanh(c_t)
public enum LSTM {
    /// Runs the LSTM over `x [B, T, Din]` and returns every hidden state
    /// `h [B, T, N]` with the cache `backward` needs (gates, cells: 6 BTN floats).
    ///
    /// `U x_t + b` for all B*T rows is one sgemm `[BT, Din] x [Din, 4N]`; then
    /// per step one `[B, N] x [N, 4N]` sgemm adds `h_{t-1} W^T`.
    ///
    /// - Throws: `FWError.shapeMismatch` naming `x`, `W`, `U` or `b`.
    public static func forward(x: Tensor, parameters: LSTMParameters) throws -> (h: Tensor, cache: LSTMCache) {
        let (n, din) = try parameters.validate()
        let (batch, time) = try RecurrentBaseline.checkInput(x, input: din)
        var gates = Tensor(shape: [batch, time, 4 * n])
        var c = Tensor(shape: [batch, time, n])
        var h = Tensor(shape: [batch, time, n])
        if batch * time > 0 {
            withBaselinePointers(x.storage, parameters.W.storage, parameters.U.storage, parameters.b.storage) {
                px, pW, pU, pb in
                gates.withUnsafeMutableBufferPointer { pg in
                    c.withUnsafeMutableBufferPointer { pc in
                        h.withUnsafeMutableBufferPointer { ph in
                            forwardKernel(x: px, W: pW, U: pU, b: pb,
                                          gates: pg.baseAddress!, c: pc.baseAddress!, h: ph.baseAddress!,
                                          batch: batch, time: time, hidden: n, input: din)
                        }
                    }
                }
            }
        }
        return (h, LSTMCache(x: x, gates: gates, c: c, h: h, parameters: parameters))
    }

    /// Backpropagation through time from `dh [B, T, N]` (dL/dh_t for every step;
    /// no gradient flows into the final cell state from outside).
    ///
    /// Returns dL/dx `[B, T, Din]` and dL/dW, dL/dU, dL/db summed over the batch.
    ///
    /// - Throws: `FWError.shapeMismatch` naming `dh`.
    public static func backward(dh: Tensor, cache: LSTMCache) throws -> LSTMGradients {
        let p = cache.parameters
        let (n, din) = try p.validate()
        let (batch, time) = (cache.h.shape[0], cache.h.shape[1])
        try dh.checkShape("dh", cache.h.shape)
        var g = LSTMGradients(dx: Tensor(shape: [batch, time, din]), dW: Tensor(shape: [4 * n, n]),
                              dU: Tensor(shape: [4 * n, din]), db: Tensor(shape: [4 * n]))
        if batch * time == 0 { return g }
        var dhTotal = dh.storage
        var dA = [Float](repeating: 0, count: batch * time * 4 * n)
        withBaselinePointers(cache.x.storage, cache.h.storage, p.W.storage, p.U.storage) { px, ph, pW, pU in
            withBaselinePointers(cache.gates.storage, cache.c.storage) { pg, pc in
                dhTotal.withUnsafeMutableBufferPointer { pdh in
                    dA.withUnsafeMutableBufferPointer { pdA in
                        backwardKernel(x: px, h: ph, W: pW, U: pU, gates: pg, c: pc,
                                       dh: pdh.baseAddress!, dA: pdA.baseAddress!, gradients: &g,
                                       batch: batch, time: time, hidden: n, input: din)
                    }
                }
            }
        }
        return g
    }

    /// Floating-point operations of the forward pass (or forward + backward):
    /// a multiply-add counts 2, an elementwise operation (a transcendental
    /// included) 1.
    ///
    /// Forward: `8BT N Din` (input projection) + `8B(T-1) N^2` (recurrence) +
    /// about `13 BTN` elementwise. Backward: `8B(T-1) N^2` twice (dh recurrence,
    /// dW) + `8BT N Din` twice (dU, dx) + about `24 BTN` elementwise and db.
    public static func flops(batch: Int, time: Int, hidden: Int, input: Int, backward: Bool) -> Double {
        let (b, t, n, d) = (Double(batch), Double(time), Double(hidden), Double(input))
        let rec = 8 * b * max(t - 1, 0) * n * n
        let inp = 8 * b * t * n * d
        let forward = inp + rec + 13 * b * t * n
        return backward ? forward + 2 * rec + 2 * inp + 24 * b * t * n : forward
    }
}
