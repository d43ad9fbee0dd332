#if canImport(Glibc)
import Glibc
#endif
import FWCore

// The fast-weights RNN of Ba et al. 2016 (docs/contract.md section 5): public types,
// argument checks, and the time loop shared by both forms. The two forms
// differ only in how they hold the fast memory A_{t-1}:
//
//   FastWeightsRNN+Explicit.swift   A per sequence (N x N), sgemv reads, sger writes;
//                                   backward from checkpoints of A every ~sqrt(T) steps.
//   FastWeightsRNN+Attention.swift  never forms A: reads over the stored history
//                                   h_0..h_{t-1} (sgemv over a (t-1) x N matrix).
//
// Threads and batching (the one decision, made here): each worker walks whole
// sequences through time (`ThreadOwnership.forEachSequence`, OpenBLAS single-
// threaded inside), so that a sequence's fast memory (A, 64 KB at N = 128, or
// its history) and W stay in the core's cache for all T steps. Sweeping all B
// sequences at every step instead (with W h_{t-1} as one sgemm over B) streams
// B copies of A from memory per step: measured 2x slower at B = 64, N = 128,
// and no faster on two workers than on one. The slow part is batched as sgemm
// where it does not depend on the recurrence: C x_t + b for all B*T rows in one
// call before the walk, and dx, dC, dW, db over all B*T rows after the backward
// walk (OpenBLAS owning the cores). Inside the walk, W h_{t-1} and W^T dz_{t+1}
// are one sgemv per step.

/// The slow parameters of a fast-weights RNN layer with N hidden units and
/// Din inputs.
///
/// - `W` `[N, N]`: recurrent weights, `C` `[N, Din]`: input weights, `b` `[N]`: bias;
/// - `g`, `c` `[N]`: layer-norm gain and bias of the inner loop.
public struct FastWeightsRNNParameters: Sendable, Equatable {
    /// Recurrent weights `[N, N]`.
    public var W: Tensor
    /// Input weights `[N, Din]`.
    public var C: Tensor
    /// Bias `[N]`.
    public var b: Tensor
    /// Layer-norm gain `[N]`.
    public var g: Tensor
    /// Layer-norm bias `[N]`.
    public var c: Tensor

    /// Parameters as given (shapes are checked by `FastWeightsRNN.forward`).
    public init(W: Tensor, C: Tensor, b: Tensor, g: Tensor, c: Tensor) {
        self.W = W
        self.C = C
        self.b = b
        self.g = g
        self.c = c
    }

    /// Fresh parameters (docs/contract.md section 7): W ~ N(0, 1/N), C ~ N(0, 1/Din),
    /// b = 0, g = 1, c = 0. W is drawn first, then C.
    public init(hidden: Int, input: Int, rng: inout SeededRNG) {
        precondition(hidden >= 1 && input >= 0, "FastWeightsRNNParameters: hidden \(hidden), input \(input)")
        W = rng.normalTensor([hidden, hidden], std: 1 / Float(hidden).squareRoot())
        C = rng.normalTensor([hidden, input], std: input > 0 ? 1 / Float(input).squareRoot() : 0)
        b = Tensor(shape: [hidden])
        g = Tensor(shape: [hidden], repeating: 1)
        c = Tensor(shape: [hidden])
    }
}

/// Hyper-parameters of the fast-weights RNN: decay `lambda`, fast learning
/// rate `eta`, `innerSteps` S >= 0 and the activation f.
///
///     A_t = lambda A_{t-1} + eta h_t h_t^T
///     h_t^(s) = f(LN(z_t + A_{t-1} h_t^(s-1)))   s = 1..S
///
/// Defaults are the paper's: lambda = 0.95, eta = 0.5, S = 1, ReLU.
public struct FastWeightsRNNConfig: Sendable, Equatable {
    /// The activation f of every step (`relu` or `tanh`, as the command line spells them).
    public enum Activation: String, Codable, Sendable, CaseIterable {
        case relu, tanh
    }

    /// Decay of the fast memory per step.
    public var lambda: Float
    /// Fast learning rate (scale of each outer-product write).
    public var eta: Float
    /// Inner loop steps S >= 0 (S = 0: h_t = f(z_t), no layer norm, A unused).
    public var innerSteps: Int
    /// The activation f.
    public var activation: Activation

    /// Hyper-parameters; the defaults are the paper's (lambda 0.95, eta 0.5, S = 1, ReLU).
    public init(lambda: Float = 0.95, eta: Float = 0.5, innerSteps: Int = 1, activation: Activation = .relu) {
        self.lambda = lambda
        self.eta = eta
        self.innerSteps = innerSteps
        self.activation = activation
    }
}

/// How the fast memory A is held (both compute the same function, docs/contract.md section 5).
public enum FastWeightsRNNAlgorithm: String, Codable, Sendable, CaseIterable {
    /// A kept as an N x N matrix per sequence: reads O(N^2) per inner step,
    /// memory O(N^2) per sequence (backward: checkpoints, O(sqrt(T) N^2)).
    case explicit
    /// A never formed: A_{t-1} h = eta sum_{tau<t} lambda^(t-1-tau) h_tau (h_tau . h),
    /// reads O(t N) over the stored hidden states, no extra memory.
    case attention
}

/// Gradients of a loss with respect to the inputs and slow parameters,
/// summed over the batch.
public struct FastWeightsRNNGradients: Sendable, Equatable {
    /// dL/dx `[B, T, Din]`.
    public var dx: Tensor
    /// dL/dW `[N, N]`.
    public var dW: Tensor
    /// dL/dC `[N, Din]`.
    public var dC: Tensor
    /// dL/db `[N]`.
    public var db: Tensor
    /// dL/dg `[N]`.
    public var dg: Tensor
    /// dL/dc `[N]`.
    public var dc: Tensor

    /// Gradients as given (memberwise).
    public init(dx: Tensor, dW: Tensor, dC: Tensor, db: Tensor, dg: Tensor, dc: Tensor) {
        self.dx = dx
        self.dW = dW
        self.dC = dC
        self.db = db
        self.dg = dg
        self.dc = dc
    }
}

/// What `FastWeightsRNN.forward` saves for its backward: the inputs and
/// parameters, every hidden state, the inner-loop states h^(0..S-1), the
/// layer-norm statistics (normalised input and 1/std per inner step) and, for
/// the explicit form, A at every checkpoint. Read-only after the forward, so
/// `backward` may be called on it more than once.
public struct FastWeightsRNNCache: Sendable {
    /// Batch size B.
    public let batch: Int
    /// Time steps T.
    public let time: Int
    /// Hidden units N.
    public let hidden: Int
    /// Input size Din.
    public let input: Int
    /// The hyper-parameters of the forward.
    public let config: FastWeightsRNNConfig
    /// The form that ran the forward (the backward uses the same form).
    public let algorithm: FastWeightsRNNAlgorithm

    let x: Tensor
    let W: FastWeightsRNN.Buffer            // [N, N]
    let C: FastWeightsRNN.Buffer            // [N, Din]
    let g: FastWeightsRNN.Buffer            // [N]
    let h: FastWeightsRNN.Buffer            // [B, T, N]
    let hInner: FastWeightsRNN.Buffer       // [B, T, S, N]: h^(0..S-1)
    let xhat: FastWeightsRNN.Buffer         // [B, T, S, N]: (u^(s) - mean) * rstd, s = 1..S
    let rstd: FastWeightsRNN.Buffer         // [B, T, S]
    let checkpoints: FastWeightsRNN.Buffer? // explicit: [B, ceil(T/K), N, N], A_{jK}
    let checkpointInterval: Int             // K
}

/// The fast-weights RNN op (Ba et al. 2016), docs/contract.md section 5.
///
///     z_t     = W h_{t-1} + C x_t + b                       (h_0 = 0, A_0 = 0)
///     h^(0)   = f(z_t)
///     h^(s)   = f(LN(z_t + A_{t-1} h^(s-1)))               s = 1..S
///     h_t     = h^(S)
///     A_t     = lambda A_{t-1} + eta h_t h_t^T
///
/// with LN(u) = g * (u - mean(u)) / sqrt(var(u) + 1e-5) + c over the N units.
/// (The time index above is 1-based as in the paper; arrays are 0-based.)
/// See `FastWeightsRNN.md` for the backward derivation.
public enum FastWeightsRNN {
    /// The epsilon inside the layer norm's square root.
    public static let layerNormEpsilon: Float = 1e-5

    /// h `[B, T, N]` from x `[B, T, Din]`; the returned cache holds what backward needs.
    ///
    /// Throws `FWError.shapeMismatch` naming the tensor when a shape does not
    /// fit (x `[B, T, Din]`, W `[N, N]`, C `[N, Din]`, b, g, c `[N]`),
    /// `FWError.invalidArgument` for a non-finite lambda or eta, S < 0, sizes
    /// beyond `SizeLimits` or the machine's memory, and `FWError.nonFinite`
    /// naming the first NaN/Inf entry of x or a parameter.
    public static func forward(x: Tensor, parameters: FastWeightsRNNParameters,
                               config: FastWeightsRNNConfig,
                               algorithm: FastWeightsRNNAlgorithm) throws -> (h: Tensor, cache: FastWeightsRNNCache) {
        let d = try validate(x: x, parameters: parameters, config: config)
        let st = ForwardStorage(d)
        let W = Buffer(copying: parameters.W.storage)
        let C = Buffer(copying: parameters.C.storage)
        let g = Buffer(copying: parameters.g.storage)
        let K = checkpointInterval(time: d.T)
        var checkpoints: Buffer? = nil
        if d.B > 0 && d.T > 0 {
            let args = ForwardArgs(d: d, config: config, W: W, C: C, b: parameters.b.storage, g: g,
                                   c: Buffer(copying: parameters.c.storage), st: st)
            switch algorithm {
            case .explicit:
                // A_{jK} of every sequence, kept for the backward (nothing when S = 0).
                let perSequence = d.S > 0 ? ExplicitForwardMemory.checkpointCount(d, interval: K) * d.N * d.N : 0
                let saved = Buffer(count: d.B * perSequence)
                runForward(x: x, args) { b in
                    ExplicitForwardMemory(d, config, interval: K, checkpoints: saved.pointer + b * perSequence)
                }
                checkpoints = saved
            case .attention:
                let weights = decayWeights(config, count: d.S > 0 ? d.T : 0)
                runForward(x: x, args) { b in
                    AttentionForwardMemory(d, history: st.h.pointer + b * d.T * d.N, weights: weights)
                }
            }
        }
        let hTensor = Tensor(shape: [d.B, d.T, d.N], storage: st.h.array)
        let cache = FastWeightsRNNCache(
            batch: d.B, time: d.T, hidden: d.N, input: d.Din, config: config, algorithm: algorithm,
            x: x, W: W, C: C, g: g, h: st.h, hInner: st.hInner, xhat: st.xhat, rstd: st.rstd,
            checkpoints: checkpoints, checkpointInterval: K)
        return (hTensor, cache)
    }

    /// Gradients from dh `[B, T, N]` (dL/dh for every hidden state), summed over the batch.
    ///
    /// Throws `FWError.shapeMismatch` when dh is not `[B, T, N]` of the forward,
    /// `FWError.nonFinite` naming its first NaN/Inf entry.
    public static func backward(dh: Tensor, cache: FastWeightsRNNCache) throws -> FastWeightsRNNGradients {
        let d = Dims(B: cache.batch, T: cache.time, N: cache.hidden, Din: cache.input,
                     S: cache.config.innerSteps)
        try dh.checkShape("dh", [d.B, d.T, d.N])
        try dh.checkFinite("dh")
        switch cache.algorithm {
        case .explicit:
            let perSequence = ExplicitForwardMemory.checkpointCount(d, interval: cache.checkpointInterval) * d.N * d.N
            return runBackward(dh: dh, cache: cache) { b, _ in
                ExplicitBackwardMemory(d, cache.config, interval: cache.checkpointInterval,
                                       checkpoints: cache.checkpoints.map { $0.pointer + b * perSequence },
                                       history: cache.h.pointer + b * d.T * d.N)
            }
        case .attention:
            let weights = decayWeights(cache.config, count: d.S > 0 ? d.T : 0)
            return runBackward(dh: dh, cache: cache) { b, dH in
                AttentionBackwardMemory(d, history: cache.h.pointer + b * d.T * d.N,
                                        dHistory: dH + b * d.T * d.N, weights: weights)
            }
        }
    }

    /// Flops each form performs (for the benchmark), forward or forward+backward.
    ///
    /// Counts the BLAS work (a multiply-add is 2 flops, a scaling 1): the slow
    /// part (C x, W h and, backward, dx, dC, dW, W^T dz), the reads and writes
    /// of the fast memory, and for the explicit backward the recomputation of
    /// A within each checkpoint segment. The O(N) layer-norm and activation
    /// work per inner step is left out (it is below 1% at N >= 64).
    public static func flops(batch: Int, time: Int, hidden: Int, input: Int, innerSteps: Int,
                             algorithm: FastWeightsRNNAlgorithm, backward: Bool) -> Double {
        let B = Double(batch), T = Double(time), N = Double(hidden), Din = Double(input)
        let S = Double(max(0, innerSteps))
        let T1 = max(T - 1, 0)
        let pairs = T * T1 / 2                        // sum over steps of the history length t
        var f = 2 * B * T * N * Din + 2 * B * T1 * N * N    // C x, W h
        if innerSteps > 0 {
            switch algorithm {
            case .explicit: f += B * (S * T * 2 * N * N + T1 * 3 * N * N)       // A h; scale + sger
            case .attention: f += B * S * 4 * N * pairs                           // H h, H^T p
            }
        }
        guard backward else { return f }
        f += 2 * 2 * B * T * N * Din + 2 * 2 * B * T1 * N * N        // dx, dC; dW, W^T dz
        if innerSteps > 0 {
            switch algorithm {
            case .explicit:
                let segments = Double((time + checkpointInterval(time: time) - 1) / max(1, checkpointInterval(time: time)))
                f += B * (3 * N * N * max(T - segments, 0)     // recompute A in segments
                          + T1 * 5 * N * N                     // eta (G + G^T) h, G *= lambda
                          + S * T * 4 * N * N)                 // A du, G += du h^T
            case .attention:
                f += B * S * 10 * N * pairs                    // H du, H^T q, H x, 2 rank-1 into dH
            }
        }
        return f
    }

    /// Checkpoint spacing K of the explicit backward: ceil(sqrt(T)), so that
    /// checkpoints and one segment of recomputed A's each hold ~sqrt(T) N^2 floats.
    static func checkpointInterval(time T: Int) -> Int {
        max(1, Int(Double(T).squareRoot().rounded(.up)))
    }
}

// MARK: - Argument checks

extension FastWeightsRNN {
    /// Sizes of one call.
    struct Dims {
        var B: Int, T: Int, N: Int, Din: Int, S: Int
    }

    static func validate(x: Tensor, parameters p: FastWeightsRNNParameters,
                         config: FastWeightsRNNConfig) throws -> Dims {
        guard config.lambda.isFinite else {
            throw FWError.invalidArgument("fast-weights RNN: lambda must be finite, got \(config.lambda)")
        }
        guard config.eta.isFinite else {
            throw FWError.invalidArgument("fast-weights RNN: eta must be finite, got \(config.eta)")
        }
        guard config.innerSteps >= 0 else {
            throw FWError.invalidArgument("fast-weights RNN: inner steps must be >= 0, got \(config.innerSteps)")
        }
        try p.W.checkRank("W", 2, pattern: "[N, N]")
        let N = p.W.shape[0]
        try p.W.checkShape("W", [N, N])
        guard N >= 1 else {
            throw FWError.shapeMismatch(tensor: "W", expected: "[N, N] with N >= 1", got: p.W.shape)
        }
        try p.C.checkRank("C", 2, pattern: "[N, Din]")
        let Din = p.C.shape[1]
        try p.C.checkShape("C", [N, Din])
        try p.b.checkShape("b", [N])
        try p.g.checkShape("g", [N])
        try p.c.checkShape("c", [N])
        try x.checkRank("x", 3, pattern: "[B, T, Din]")
        try x.checkShape("x", [x.shape[0], x.shape[1], Din])
        for (name, t) in [("x", x), ("W", p.W), ("C", p.C)] { try SizeLimits.checkExtents(name, t.shape) }
        let d = Dims(B: x.shape[0], T: x.shape[1], N: N, Din: Din, S: config.innerSteps)
        try MemoryBudget.check(memoryEstimate(d), "the fast-weights RNN on x \(describeShape(x.shape)) with N = \(N), S = \(d.S)")
        for (name, t) in [("x", x), ("W", p.W), ("C", p.C), ("b", p.b), ("g", p.g), ("c", p.c)] {
            try t.checkFinite(name)
        }
        return d
    }

    /// Bytes a forward and backward allocate (either form), in Double so that
    /// forming it cannot overflow: h, the inner states and their layer-norm
    /// statistics (S per step), A's checkpoints every ~sqrt(T) steps and a
    /// segment of recomputed A's, the decay weights, and the gradients.
    static func memoryEstimate(_ d: Dims) -> Double {
        let (b, t, n, s) = (Double(d.B), Double(d.T), Double(d.N), Double(d.S))
        let perStep = b * t * (n * (4 + 3 * s) + s + Double(d.Din))
        let memories = (b * (t.squareRoot() + 1) + 2 * (t.squareRoot() + 3)) * n * n
        return MemoryBudget.floats(perStep + memories + 3 * t)
    }
}

// MARK: - Storage

extension FastWeightsRNN {
    /// A fixed-size Float buffer owned by a class, so that parallel workers can
    /// write disjoint parts through one pointer and the cache can share it
    /// without copying. The buffers a cache holds are written only by the
    /// forward that creates them; the backward writes only its own.
    final class Buffer: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<Float>
        let count: Int

        /// `count` zeros.
        init(count: Int) {
            self.count = count
            pointer = .allocate(capacity: max(count, 1))
            pointer.initialize(repeating: 0, count: max(count, 1))
        }

        /// A copy of `values`.
        convenience init(copying values: [Float]) {
            self.init(count: values.count)
            values.withUnsafeBufferPointer { src in
                if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
            }
        }

        /// The contents as an array.
        var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

        deinit { pointer.deallocate() }
    }

    /// What the forward writes for the backward (see `FastWeightsRNNCache`).
    struct ForwardStorage {
        let h, hInner, xhat, rstd: Buffer
        init(_ d: Dims) {
            h = Buffer(count: d.B * d.T * d.N)
            hInner = Buffer(count: d.B * d.T * d.S * d.N)
            xhat = Buffer(count: d.B * d.T * d.S * d.N)
            rstd = Buffer(count: d.B * d.T * d.S)
        }
    }

    /// Everything the forward time loop reads.
    struct ForwardArgs {
        let d: Dims
        let config: FastWeightsRNNConfig
        let W, C: Buffer
        let b: [Float]
        let g, c: Buffer
        let st: ForwardStorage
    }
}

// MARK: - The fast memory of each form

extension FastWeightsRNN {
    /// The fast memory of one sequence as the forward sees it at step t (0-based).
    protocol ForwardMemory {
        /// y[N] = A_t x[N] (A before step t's write).
        func read(_ t: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>)
        /// Step t is done and h_t is final: A_{t+1} = lambda A_t + eta h_t h_t^T.
        func write(_ t: Int, h: UnsafePointer<Float>)
    }

    /// The fast memory of one sequence as the backward sees it, walking t = T-1 down to 0.
    protocol BackwardMemory {
        /// Start of step t: add the memory's share of dL/dh_t to `dh` (through
        /// A_{t+1} and every later A) and get ready to read A_t.
        func beginStep(_ t: Int, h: UnsafePointer<Float>, dh: UnsafeMutablePointer<Float>)
        /// Backward of the read u = A_t x: dx[N] = A_t^T du (overwritten), and
        /// du x^T added to dL/dA_t, wherever the form keeps it. `firstOfStep`
        /// marks the first read of step t in the backward walk (s = S).
        func read(_ t: Int, firstOfStep: Bool, x: UnsafePointer<Float>, du: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>)
    }
}

// MARK: - Elementwise kernels: activation and layer norm

extension FastWeightsRNN {
    /// y = f(x) over n entries (in place allowed).
    @inline(__always)
    static func activate(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int,
                         _ f: FastWeightsRNNConfig.Activation) {
        switch f {
        case .relu: for i in 0..<n { y[i] = max(x[i], 0) }
        case .tanh: for i in 0..<n { y[i] = tanhf(x[i]) }
        }
    }

    /// dx = dy * f'(.) given the output y = f(.): relu' = [y > 0], tanh' = 1 - y^2.
    @inline(__always)
    static func activationBackward(dy: UnsafePointer<Float>, y: UnsafePointer<Float>,
                                   dx: UnsafeMutablePointer<Float>, _ n: Int,
                                   _ f: FastWeightsRNNConfig.Activation, accumulate: Bool) {
        switch f {
        case .relu:
            if accumulate { for i in 0..<n where y[i] > 0 { dx[i] += dy[i] } }
            else { for i in 0..<n { dx[i] = y[i] > 0 ? dy[i] : 0 } }
        case .tanh:
            if accumulate { for i in 0..<n { dx[i] += dy[i] * (1 - y[i] * y[i]) } }
            else { for i in 0..<n { dx[i] = dy[i] * (1 - y[i] * y[i]) } }
        }
    }

    /// h = f(LN(u)) over n units; saves xhat = (u - mean) * rstd and rstd.
    ///
    ///     mean = sum(u)/n, var = sum((u - mean)^2)/n, rstd = 1/sqrt(var + 1e-5)
    ///     h = f(g * xhat + c)
    @inline(__always)
    static func layerNormActivate(u: UnsafePointer<Float>, g: UnsafePointer<Float>, c: UnsafePointer<Float>,
                                  _ n: Int, xhat: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                                  h: UnsafeMutablePointer<Float>, _ f: FastWeightsRNNConfig.Activation) {
        var mean: Float = 0
        for i in 0..<n { mean += u[i] }
        mean /= Float(n)
        var variance: Float = 0
        for i in 0..<n { let e = u[i] - mean; variance += e * e }   // two passes: no cancellation
        variance /= Float(n)
        let r = 1 / (variance + layerNormEpsilon).squareRoot()
        rstd.pointee = r
        for i in 0..<n {
            let xh = (u[i] - mean) * r
            xhat[i] = xh
            h[i] = g[i] * xh + c[i]
        }
        activate(h, h, n, f)
    }

    /// Backward of v = LN(u) given dv: dg += dv * xhat, dc += dv, and
    ///
    ///     du = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dv * g
    ///
    /// (`du` overwritten; `dv` may alias `du`).
    @inline(__always)
    static func layerNormBackward(dv: UnsafePointer<Float>, xhat: UnsafePointer<Float>, rstd: Float,
                                  g: UnsafePointer<Float>, _ n: Int,
                                  du: UnsafeMutablePointer<Float>,
                                  dg: UnsafeMutablePointer<Float>, dc: UnsafeMutablePointer<Float>) {
        var m1: Float = 0, m2: Float = 0
        for i in 0..<n {
            let dvi = dv[i]
            dg[i] += dvi * xhat[i]
            dc[i] += dvi
            let dxh = dvi * g[i]
            du[i] = dxh
            m1 += dxh
            m2 += dxh * xhat[i]
        }
        m1 /= Float(n)
        m2 /= Float(n)
        for i in 0..<n { du[i] = rstd * (du[i] - m1 - xhat[i] * m2) }
    }
}

// MARK: - The time loops

extension FastWeightsRNN {
    /// The forward: Z = X C^T + b for all B*T rows (one sgemm), then each
    /// sequence's walk through time on a worker; `makeMemory(b)` gives
    /// sequence b's fast memory.
    static func runForward<M: ForwardMemory>(x: Tensor, _ a: ForwardArgs, makeMemory: (Int) -> M) {
        let d = a.d
        let (B, T, N, Din, S) = (d.B, d.T, d.N, d.Din, d.S)
        let f = a.config.activation
        let h = a.st.h.pointer, hInner = a.st.hInner.pointer
        let xhat = a.st.xhat.pointer, rstd = a.st.rstd.pointer
        let W = a.W.pointer, g = a.g.pointer, cParam = a.c.pointer
        // Z [B*T, N] = X C^T + b: the part of z_t that does not wait for h_{t-1}.
        let Zbuf = Buffer(count: B * T * N)
        let Z = Zbuf.pointer
        a.b.withUnsafeBufferPointer { bp in
            for r in 0..<(B * T) { (Z + r * N).update(from: bp.baseAddress!, count: N) }
        }
        if Din > 0 {
            x.withUnsafeBufferPointer { xp in
                ThreadOwnership.withBLASThreads(ThreadOwnership.workers) {
                    BLAS.sgemm(.none, .transpose, m: B * T, n: N, k: Din, alpha: 1,
                               a: xp.baseAddress!, lda: Din, b: a.C.pointer, ldb: Din, beta: 1, c: Z, ldc: N)
                }
            }
        }
        ThreadOwnership.forEachSequence(B) { b in
            let memory = makeMemory(b)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: N) { ubuf in
                let u = ubuf.baseAddress!
                for t in 0..<T {
                    let row = b * T + t
                    let z = Z + row * N, hOut = h + row * N
                    if t > 0 {                                 // z_t += W h_{t-1}
                        BLAS.sgemv(.none, m: N, n: N, alpha: 1, a: W, lda: N, x: hOut - N, beta: 1, y: z)
                    }
                    if S == 0 {                                // h_t = f(z_t); A plays no part
                        activate(z, hOut, N, f)
                        continue
                    }
                    let inner = hInner + row * S * N          // h^(s) at inner + s*N, s < S
                    activate(z, inner, N, f)                   // h^(0) = f(z_t)
                    for s in 1...S {
                        memory.read(t, x: inner + (s - 1) * N, y: u)   // u = A_t h^(s-1)
                        for i in 0..<N { u[i] += z[i] }                 //   + z_t
                        let out = s == S ? hOut : inner + s * N
                        layerNormActivate(u: u, g: g, c: cParam, N,
                                          xhat: xhat + (row * S + s - 1) * N, rstd: rstd + row * S + s - 1,
                                          h: out, f)                    // h^(s) = f(LN(u))
                    }
                    memory.write(t, h: hOut)                   // A_{t+1} = lambda A_t + eta h_t h_t^T
                }
            }
        }
        withExtendedLifetime(Zbuf) {}
    }

    /// The backward, in the reverse order of the forward: each sequence's walk
    /// from t = T-1 down to 0 on a worker, then the slow-weight gradients as
    /// sgemms over all B*T rows.
    ///
    /// dH accumulates dL/dh_t: the given dh, W^T dz_{t+1} (one sgemv at the
    /// start of step t), and the memory's share (the explicit form adds it in
    /// `beginStep` from dL/dA_{t+1}; the attention form scatters it into the
    /// earlier rows of dH while it walks back). dZ keeps dL/dz_t.
    /// `makeMemory(b, dH)` gives sequence b's fast memory.
    static func runBackward<M: BackwardMemory>(
        dh: Tensor, cache: FastWeightsRNNCache,
        makeMemory: (Int, UnsafeMutablePointer<Float>) -> M
    ) -> FastWeightsRNNGradients {
        let (B, T, N, Din, S) = (cache.batch, cache.time, cache.hidden, cache.input, cache.config.innerSteps)
        let f = cache.config.activation
        let dHbuf = Buffer(copying: dh.storage)
        let dZbuf = Buffer(count: B * T * N)
        let dH = dHbuf.pointer, dZ = dZbuf.pointer
        let dgSeq = Buffer(count: B * N), dcSeq = Buffer(count: B * N)   // per sequence, summed at the end
        let h = cache.h.pointer, hInner = cache.hInner.pointer
        let xhat = cache.xhat.pointer, rstd = cache.rstd.pointer
        let W = cache.W.pointer, g = cache.g.pointer

        ThreadOwnership.forEachSequence(B) { b in
            let memory = makeMemory(b, dH)
            let dg = dgSeq.pointer + b * N, dc = dcSeq.pointer + b * N
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * N) { scratch in
                let dcur = scratch.baseAddress!, du = dcur + N
                for t in stride(from: T - 1, through: 0, by: -1) {
                    let row = b * T + t
                    let ht = h + row * N, dht = dH + row * N, dz = dZ + row * N
                    if t < T - 1 {                             // z_{t+1} = W h_t + ...: dh_t += W^T dz_{t+1}
                        BLAS.sgemv(.transpose, m: N, n: N, alpha: 1, a: W, lda: N, x: dz + N, beta: 1, y: dht)
                    }
                    if S == 0 {                                // h_t = f(z_t)
                        activationBackward(dy: dht, y: ht, dx: dz, N, f, accumulate: false)
                        continue
                    }
                    memory.beginStep(t, h: ht, dh: dht)        // + dL/dA_{t+1} through A_{t+1}'s write
                    let inner = hInner + row * S * N
                    dcur.update(from: dht, count: N)           // dL/dh^(S)
                    dz.update(repeating: 0, count: N)
                    for s in stride(from: S, through: 1, by: -1) {
                        let hs = s == S ? UnsafePointer(ht) : UnsafePointer(inner + s * N)
                        // h^(s) = f(v): dv = dh^(s) f'(v)   (into du)
                        activationBackward(dy: dcur, y: hs, dx: du, N, f, accumulate: false)
                        // v = LN(u): du, and dg, dc
                        layerNormBackward(dv: du, xhat: xhat + (row * S + s - 1) * N, rstd: rstd[row * S + s - 1],
                                          g: g, N, du: du, dg: dg, dc: dc)
                        // u = z_t + A_t h^(s-1)
                        for i in 0..<N { dz[i] += du[i] }
                        memory.read(t, firstOfStep: s == S, x: inner + (s - 1) * N, du: du, dx: dcur)   // dh^(s-1)
                    }
                    activationBackward(dy: dcur, y: inner, dx: dz, N, f, accumulate: true)   // h^(0) = f(z_t)
                }
            }
        }

        // Slow weights, over all B*T rows: z_t = W h_{t-1} + C x_t + b.
        var dx = Tensor(shape: [B, T, Din]), dC = Tensor(shape: [N, Din])
        var dW = Tensor(shape: [N, N]), db = Tensor(shape: [N])
        var dgT = Tensor(shape: [N]), dcT = Tensor(shape: [N])
        let ones = [Float](repeating: 1, count: max(B * T, 1))
        ThreadOwnership.withBLASThreads(ThreadOwnership.workers) {
            if Din > 0 && B * T > 0 {
                dx.withUnsafeMutableBufferPointer { dxp in        // dx = dZ C        [B*T, Din]
                    BLAS.sgemm(.none, .none, m: B * T, n: Din, k: N, alpha: 1, a: dZ, lda: N,
                               b: cache.C.pointer, ldb: Din, beta: 0, c: dxp.baseAddress!, ldc: Din)
                }
                cache.x.withUnsafeBufferPointer { xp in             // dC = dZ^T X      [N, Din]
                    dC.withUnsafeMutableBufferPointer { dCp in
                        BLAS.sgemm(.transpose, .none, m: N, n: Din, k: B * T, alpha: 1, a: dZ, lda: N,
                                   b: xp.baseAddress!, ldb: Din, beta: 0, c: dCp.baseAddress!, ldc: Din)
                    }
                }
            }
            dW.withUnsafeMutableBufferPointer { dWp in               // dW = sum_b dZ_b[1:]^T H_b[:-1]
                for b in 0..<B where T > 1 {
                    BLAS.sgemm(.transpose, .none, m: N, n: N, k: T - 1, alpha: 1,
                               a: dZ + (b * T + 1) * N, lda: N, b: h + b * T * N, ldb: N,
                               beta: 1, c: dWp.baseAddress!, ldc: N)
                }
            }
            ones.withUnsafeBufferPointer { onep in                   // column sums
                let one = onep.baseAddress!
                db.withUnsafeMutableBufferPointer {
                    BLAS.sgemv(.transpose, m: B * T, n: N, alpha: 1, a: dZ, lda: N, x: one, beta: 0, y: $0.baseAddress!)
                }
                dgT.withUnsafeMutableBufferPointer {
                    BLAS.sgemv(.transpose, m: B, n: N, alpha: 1, a: dgSeq.pointer, lda: N, x: one, beta: 0, y: $0.baseAddress!)
                }
                dcT.withUnsafeMutableBufferPointer {
                    BLAS.sgemv(.transpose, m: B, n: N, alpha: 1, a: dcSeq.pointer, lda: N, x: one, beta: 0, y: $0.baseAddress!)
                }
            }
        }
        withExtendedLifetime((dHbuf, dZbuf)) {}
        return FastWeightsRNNGradients(dx: dx, dW: dW, dC: dC, db: db, dg: dgT, dc: dcT)
    }
}
