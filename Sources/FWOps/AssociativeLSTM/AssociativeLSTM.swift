import FWCore

/// Parameters of an associative LSTM (Danihelka, Wayne, Uria, Kalchbrenner &
/// Graves 2016, arXiv:1602.03032): an LSTM whose cell is a holographic reduced
/// representation with complex-valued keys, kept in several redundant copies
/// whose keys are permuted by fixed random permutations.
///
/// Sizes: hidden N (even), H = N/2 complex units. A complex vector of H entries
/// is stored as N reals, `[re_0 .. re_{H-1}, im_0 .. im_{H-1}]`; h_t is real,
/// `[N]`, and read the same way where a complex view is needed.
///
/// The pre-activation rows (9H = 4.5N of them) are stacked in this order:
///
/// | rows          | block | meaning                                   |
/// |---------------|-------|-------------------------------------------|
/// | `0..<H`       | i     | input gate (real, sigmoid)                 |
/// | `H..<2H`      | f     | forget gate (real, sigmoid)                |
/// | `2H..<3H`     | o     | output gate (real, sigmoid)                |
/// | `3H..<5H`     | r_i   | input key (complex: re rows, then im rows) |
/// | `5H..<7H`     | r_o   | output key (complex)                       |
/// | `7H..<9H`     | u     | value (complex)                            |
///
/// * `W`: `[9H, N]` recurrent weights; `U`: `[9H, Din]` input weights; `b`: `[9H]`.
/// * `permutations`: `copies` fixed permutations of `0..<H` (not trained).
public struct AssociativeLSTMParameters: Sendable, Equatable {
    /// Recurrent weights W, `[9N/2, N]`, blocks i, f, o, r_i, r_o, u.
    public var W: Tensor
    /// Input weights U, `[9N/2, Din]`, blocks i, f, o, r_i, r_o, u.
    public var U: Tensor
    /// Bias b, `[9N/2]`, blocks i, f, o, r_i, r_o, u.
    public var b: Tensor
    /// `copies` fixed permutations P_s of the H complex units: copy s uses
    /// the keys `(P_s r)[j] = r[permutations[s][j]]`.
    public var permutations: [[Int]]

    /// Parameters from given tensors and permutations (checked when the op runs).
    public init(W: Tensor, U: Tensor, b: Tensor, permutations: [[Int]]) {
        self.W = W
        self.U = U
        self.b = b
        self.permutations = permutations
    }

    /// An initialisation in the LSTM's manner: W and U from
    /// `U(-1/sqrt(N), 1/sqrt(N))`, biases 0 except the forget gate's
    /// (`forgetBias`, 1 by default), and `copies` permutations drawn uniformly
    /// at random (every copy, the first included, gets a random one).
    /// Danihelka et al. do not state their weight initialisation; this is ours.
    ///
    /// - Parameters:
    ///   - hidden: N, even, >= 2.
    ///   - input: Din >= 1.
    ///   - copies: number of redundant memory copies, >= 1 (the paper uses up to 8).
    ///   - rng: the generator (W, then U, then the permutations).
    public init(hidden: Int, input: Int, copies: Int, rng: inout SeededRNG, forgetBias: Float = 1) {
        precondition(hidden >= 2 && hidden % 2 == 0, "AssociativeLSTMParameters: hidden \(hidden) must be even and >= 2")
        precondition(input >= 1 && copies >= 1, "AssociativeLSTMParameters: input \(input) and copies \(copies) must be >= 1")
        let h = hidden / 2
        let r = 1 / Float(hidden).squareRoot()
        W = rng.uniformTensor([9 * h, hidden], low: -r, high: r)
        U = rng.uniformTensor([9 * h, input], low: -r, high: r)
        var bias = Tensor(shape: [9 * h])
        for j in h..<(2 * h) { bias.storage[j] = forgetBias }
        b = bias
        permutations = (0..<copies).map { _ in RecurrentBaseline.permutation(h, rng: &rng) }
    }

    /// N, the hidden size (W's columns).
    public var hidden: Int { W.shape.count == 2 ? W.shape[1] : 0 }

    /// Din, the input size (U's columns).
    public var input: Int { U.shape.count == 2 ? U.shape[1] : 0 }

    /// Number of redundant memory copies.
    public var copies: Int { permutations.count }

    /// Checks the shapes and the permutations; returns (N, Din).
    func validate() throws -> (hidden: Int, input: Int) {
        try W.checkRank("W", 2, pattern: "[9N/2, N]")
        let n = W.shape[1]
        guard n >= 2 && n % 2 == 0 else {
            throw FWError.shapeMismatch(tensor: "W", expected: "[9N/2, N] with N even and >= 2", got: W.shape)
        }
        let din = try RecurrentBaseline.checkWeights(W: W, U: U, b: b, rows: 9 * n / 2, hidden: n, rowsName: "9N/2")
        guard !permutations.isEmpty else {
            throw FWError.invalidArgument("permutations: need at least one copy")
        }
        for (s, p) in permutations.enumerated() {
            guard p.count == n / 2, Set(p) == Set(0..<(n / 2)) else {
                throw FWError.invalidArgument("permutations[\(s)]: not a permutation of 0..<\(n / 2) (N/2)")
            }
        }
        return (n, din)
    }
}

/// What `AssociativeLSTM.backward` needs from the forward pass.
public struct AssociativeLSTMCache: Sendable {
    /// The input x, `[B, T, Din]`.
    public let x: Tensor
    /// The raw pre-activations `[B, T, 9N/2]` (gates and the bound's inputs are
    /// recomputed from them).
    public let preactivations: Tensor
    /// Every copy of the complex cell after every step, `[B, T, copies, N]`.
    public let cells: Tensor
    /// The hidden states h_t, `[B, T, N]`.
    public let h: Tensor
    /// The parameters the forward pass used.
    public let parameters: AssociativeLSTMParameters
}

/// Gradients of an associative LSTM: dL/dx per example, parameter gradients
/// summed over the batch (the permutations are fixed and get none).
public struct AssociativeLSTMGradients: Sendable {
    /// dL/dx, `[B, T, Din]`.
    public var dx: Tensor
    /// dL/dW, `[9N/2, N]`.
    public var dW: Tensor
    /// dL/dU, `[9N/2, Din]`.
    public var dU: Tensor
    /// dL/db, `[9N/2]`.
    public var db: Tensor
}

/// The associative LSTM op (Danihelka et al. 2016) over a batch of B sequences:
/// explicit forward and backward-through-time, the per-step products as sgemm
/// over the batch.
///
/// With `a = U x_t + W h_{t-1} + b` split into the blocks of
/// `AssociativeLSTMParameters`, `*` the elementwise complex product, a real gate
/// scaling real and imaginary parts alike, and
/// `bound(z)_j = z_j / max(1, |z_j|)` (complex modulus):
///
///     g_i, g_f, g_o = sigmoid(a_i, a_f, a_o)                  [H] real
///     r_i = bound(a_ri), r_o = bound(a_ro), u = bound(a_u)    [H] complex
///     c_{s,t} = g_f c_{s,t-1} + (P_s r_i) * (g_i u)            s = 1..copies, c_{s,-1} = 0
///     h_t = g_o bound( (1/copies) sum_s (P_s r_o) * c_{s,t} )  (re and im halves of h_t)
///
/// h_{-1} = 0. The cell copies are the paper's redundant associative memories:
/// each stores the same (key, value) pairs under differently permuted keys, so
/// the interference noise averages out over the copies when reading.
public enum AssociativeLSTM {
    /// Runs the associative LSTM over `x [B, T, Din]` and returns every hidden
    /// state `h [B, T, N]` with the cache `backward` needs (it stores every cell
    /// copy at every step: `B*T*copies*N` floats, plus `4.5 BTN` pre-activations).
    ///
    /// - Throws: `FWError.shapeMismatch` naming `x`, `W`, `U` or `b`;
    ///   `FWError.invalidArgument` for malformed permutations.
    public static func forward(x: Tensor, parameters: AssociativeLSTMParameters) throws
        -> (h: Tensor, cache: AssociativeLSTMCache)
    {
        let (n, din) = try parameters.validate()
        let copies = parameters.copies
        let (batch, time) = try RecurrentBaseline.checkInput(x, input: din)
        var pre = Tensor(shape: [batch, time, 9 * n / 2])
        var cells = Tensor(shape: [batch, time, copies, n])
        var h = Tensor(shape: [batch, time, n])
        if batch * time > 0 {
            let perm = parameters.permutations.flatMap { $0 }
            withBaselinePointers(x.storage, parameters.W.storage, parameters.U.storage, parameters.b.storage) {
                px, pW, pU, pb in
                perm.withUnsafeBufferPointer { pp in
                    pre.withUnsafeMutableBufferPointer { pa in
                        cells.withUnsafeMutableBufferPointer { pc in
                            h.withUnsafeMutableBufferPointer { ph in
                                forwardKernel(x: px, W: pW, U: pU, b: pb, permutations: pp.baseAddress!,
                                              preactivations: pa.baseAddress!, cells: pc.baseAddress!,
                                              h: ph.baseAddress!,
                                              batch: batch, time: time, hidden: n, input: din, copies: copies)
                            }
                        }
                    }
                }
            }
        }
        return (h, AssociativeLSTMCache(x: x, preactivations: pre, cells: cells, h: h, parameters: parameters))
    }

    /// Backpropagation through time from `dh [B, T, N]` (dL/dh_t for every step;
    /// no outside gradient on the final cells).
    ///
    /// Returns dL/dx `[B, T, Din]` and dL/dW, dL/dU, dL/db summed over the batch.
    /// `bound` is differentiated as `z` inside the unit disc (|z| <= 1) and
    /// `z/|z|` outside it.
    ///
    /// - Throws: `FWError.shapeMismatch` naming `dh`.
    public static func backward(dh: Tensor, cache: AssociativeLSTMCache) throws -> AssociativeLSTMGradients {
        let p = cache.parameters
        let (n, din) = try p.validate()
        let copies = p.copies
        let (batch, time) = (cache.h.shape[0], cache.h.shape[1])
        try dh.checkShape("dh", cache.h.shape)
        let rows = 9 * n / 2
        var g = AssociativeLSTMGradients(dx: Tensor(shape: [batch, time, din]), dW: Tensor(shape: [rows, n]),
                                         dU: Tensor(shape: [rows, din]), db: Tensor(shape: [rows]))
        if batch * time == 0 { return g }
        let perm = p.permutations.flatMap { $0 }
        var dhTotal = dh.storage
        var dA = [Float](repeating: 0, count: batch * time * rows)
        withBaselinePointers(cache.x.storage, cache.h.storage, p.W.storage, p.U.storage) { px, ph, pW, pU in
            withBaselinePointers(cache.preactivations.storage, cache.cells.storage) { pa, pc in
                perm.withUnsafeBufferPointer { pp in
                    dhTotal.withUnsafeMutableBufferPointer { pdh in
                        dA.withUnsafeMutableBufferPointer { pdA in
                            backwardKernel(x: px, h: ph, W: pW, U: pU, permutations: pp.baseAddress!,
                                           preactivations: pa, cells: pc,
                                           dh: pdh.baseAddress!, dA: pdA.baseAddress!, gradients: &g,
                                           batch: batch, time: time, hidden: n, input: din, copies: copies)
                        }
                    }
                }
            }
        }
        return g
    }

    /// Floating-point operations of the forward pass (or forward + backward):
    /// a multiply-add counts 2, an elementwise operation (a transcendental or a
    /// square root included) 1; the elementwise counts are estimates.
    ///
    /// With H = N/2: forward `18BT H Din` (input projection) + `18B(T-1) H N`
    /// (recurrence) + about `BTH (30 + 18 copies)` elementwise. Backward: the
    /// two products twice each + about `BTH (60 + 40 copies)` elementwise.
    public static func flops(batch: Int, time: Int, hidden: Int, input: Int, copies: Int,
                             backward: Bool) -> Double {
        let (b, t, n, d, k) = (Double(batch), Double(time), Double(hidden), Double(input), Double(copies))
        let h = n / 2
        let rec = 18 * b * max(t - 1, 0) * h * n
        let inp = 18 * b * t * h * d
        let forward = inp + rec + b * t * h * (30 + 18 * k)
        return backward ? forward + 2 * rec + 2 * inp + b * t * h * (60 + 40 * k) : forward
    }
}
