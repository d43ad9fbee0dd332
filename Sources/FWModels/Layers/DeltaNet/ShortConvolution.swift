import FWCore
import FWOps

/// A short causal depthwise convolution over time followed by silu, per
/// channel, without bias (FLA's `ShortConvolution(activation='silu', bias=False)`):
///
/// ```
/// u[b, t, c] = sum_{j=0}^{K-1} w[c, j] * x[b, t - (K-1) + j, c]      w [C, K]
/// y[b, t, c] = silu(u[b, t, c]) = u sigmoid(u)
/// ```
///
/// with x at negative times taken from the carried conv state
/// `state[b, (K-1) + t, c]` (the last K-1 inputs of the previous segment,
/// `[B, K-1, C]`; zeros when none is given). The final state is the last K-1
/// inputs of the extended sequence (`x[b, T-(K-1)+s, c]`, s = 0..K-2), so
/// running a sequence in pieces, each starting from the previous piece's final
/// state, gives the same y as one pass.
///
/// Backward, from dy (and dL/d final state):
///
/// ```
/// du[b, t, c]        = dy[b, t, c] * silu'(u),   silu'(u) = s (1 + u (1 - s)), s = sigmoid(u)
/// dw[c, j]          += sum_{b,t} du[b, t, c] x[b, t - (K-1) + j, c]
/// dx[b, t', c]      += sum_{t - (K-1) + j = t'} du[b, t, c] w[c, j]    (t' < 0: into dL/d initial state)
/// dx[b, T-(K-1)+s, c] += dfinal[b, s, c]
/// ```
///
/// The parameter is `<name>.weight [C, K]`, drawn U(-1/sqrt(K), 1/sqrt(K))
/// (PyTorch's `Conv1d` default for a depthwise kernel: fan in K).
public struct ShortConvolution: Sendable {
    /// C, the number of channels.
    public let channels: Int
    /// K, the kernel length (the output at t reads inputs t-K+1 .. t).
    public let kernelSize: Int
    /// `w [C, K]`, named `<name>.weight`.
    public let weight: ParameterSlice

    /// Registers `<name>.weight [C, K]` (U(-1/sqrt(K), 1/sqrt(K))) in `store`.
    public init(channels: Int, kernelSize: Int, name: String, store: inout ParameterStore, rng: inout SeededRNG) {
        precondition(channels > 0 && kernelSize > 0, "ShortConvolution: sizes must be positive, got C=\(channels) K=\(kernelSize)")
        self.channels = channels
        self.kernelSize = kernelSize
        self.weight = store.register("\(name).weight", shape: [channels, kernelSize], initializer: .uniformFanIn, rng: &rng)
    }

    /// The conv state's shape, `[B, K-1, C]`.
    public func stateShape(batch B: Int) -> [Int] { [B, kernelSize - 1, channels] }

    /// Forward over `x[b, t, c] = x[(b*T + t) * ldx + c]` (a column block of
    /// wider rows when `ldx > C`): writes `u` and `y` `[B, T, C]` and the final
    /// state `[B, K-1, C]`; `state` is the initial one (`[B, K-1, C]`, nil: zeros).
    public static func forward(y: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>,
                               finalState: UnsafeMutablePointer<Float>,
                               x: UnsafePointer<Float>, ldx: Int, state: UnsafePointer<Float>?,
                               weight w: UnsafePointer<Float>, B: Int, T: Int, C: Int, K: Int) {
        let h = K - 1
        // x at time t in [-(K-1), T) of sequence b, channel c.
        func input(_ b: Int, _ t: Int, _ c: Int) -> Float {
            if t >= 0 { return x[(b * T + t) * ldx + c] }
            return state.map { $0[(b * h + h + t) * C + c] } ?? 0
        }
        // w^T [K, C]: the rows below run over contiguous channels.
        let wt = transposed(w, C: C, K: K)
        wt.withUnsafeBufferPointer { wtp in
            let wt = wtp.baseAddress!
            for b in 0..<B {
                for t in 0..<T {
                    let ur = u + (b * T + t) * C
                    if t >= h {
                        // Every input inside the sequence: u_t = sum_j w^T_j o x_{t-h+j}.
                        ur.update(repeating: 0, count: C)
                        for j in 0..<K {
                            let xr = x + (b * T + t - h + j) * ldx, wj = wt + j * C
                            for c in 0..<C { ur[c] += wj[c] * xr[c] }
                        }
                    } else {
                        for c in 0..<C {
                            var acc: Float = 0
                            for j in 0..<K { acc += w[c * K + j] * input(b, t - h + j, c) }
                            ur[c] = acc
                        }
                    }
                }
                for s in 0..<h {
                    for c in 0..<C { finalState[(b * h + s) * C + c] = input(b, T - h + s, c) }
                }
            }
        }
        FeatureMap.silu.forward(out: y, x: u, rows: B * T, d: C, omega: nil, normalization: .none)
    }

    /// Backward of `forward`: accumulates `dx` (same strided layout as x) and
    /// `dweight [C, K]`, overwrites `dstate [B, K-1, C]` with dL/d(initial
    /// state). `dfinalState` is dL/d(final state) (nil: zero); `u` the forward's
    /// pre-activations.
    public static func backward(dx: UnsafeMutablePointer<Float>, ldx: Int, dweight: UnsafeMutablePointer<Float>,
                                dstate: UnsafeMutablePointer<Float>,
                                dy: UnsafePointer<Float>, dfinalState: UnsafePointer<Float>?,
                                u: UnsafePointer<Float>, x: UnsafePointer<Float>, state: UnsafePointer<Float>?,
                                weight w: UnsafePointer<Float>, B: Int, T: Int, C: Int, K: Int) {
        let h = K - 1
        dstate.update(repeating: 0, count: B * h * C)
        func input(_ b: Int, _ t: Int, _ c: Int) -> Float {
            if t >= 0 { return x[(b * T + t) * ldx + c] }
            return state.map { $0[(b * h + h + t) * C + c] } ?? 0
        }
        func addInput(_ b: Int, _ t: Int, _ c: Int, _ value: Float) {
            if t >= 0 { dx[(b * T + t) * ldx + c] += value } else { dstate[(b * h + h + t) * C + c] += value }
        }
        // du = dy * silu'(u), [B*T, C] (silu's backward without a normalisation reads x = u only).
        var du = [Float].uninitialized(count: B * T * C)
        du.withUnsafeMutableBufferPointer { dup in
            FeatureMap.silu.backward(dx: dup.baseAddress!, dout: dy, x: u, out: u, rows: B * T, d: C,
                                     omega: nil, normalization: .none)
        }
        // Rows with every input inside the sequence (t >= K-1) run over
        // contiguous channels with w^T and dw^T [K, C]; the first K-1 rows
        // of each sequence (reading the carried state) one entry at a time.
        let wt = transposed(w, C: C, K: K)
        var dwt = [Float](repeating: 0, count: K * C)
        wt.withUnsafeBufferPointer { wtp in
        dwt.withUnsafeMutableBufferPointer { dwtp in
        du.withUnsafeBufferPointer { dup in
            let wt = wtp.baseAddress!, dwt = dwtp.baseAddress!, du = dup.baseAddress!
            for b in 0..<B {
                for t in 0..<T {
                    let g = du + (b * T + t) * C
                    if t >= h {
                        for j in 0..<K {
                            let row = (b * T + t - h + j) * ldx
                            let xr = x + row, dxr = dx + row, wj = wt + j * C, dwj = dwt + j * C
                            for c in 0..<C {
                                dwj[c] += g[c] * xr[c]
                                dxr[c] += g[c] * wj[c]
                            }
                        }
                    } else {
                        for c in 0..<C {
                            for j in 0..<K {
                                dwt[j * C + c] += g[c] * input(b, t - h + j, c)
                                addInput(b, t - h + j, c, g[c] * w[c * K + j])
                            }
                        }
                    }
                }
                if let df = dfinalState {
                    for s in 0..<h {
                        for c in 0..<C { addInput(b, T - h + s, c, df[(b * h + s) * C + c]) }
                    }
                }
            }
        }}}
        for c in 0..<C { for j in 0..<K { dweight[c * K + j] += dwt[j * C + c] } }
    }
}

extension ShortConvolution {
    /// w^T `[K, C]` of a weight `w [C, K]`.
    static func transposed(_ w: UnsafePointer<Float>, C: Int, K: Int) -> [Float] {
        var wt = [Float].uninitialized(count: K * C)
        for c in 0..<C { for j in 0..<K { wt[j * C + c] = w[c * K + j] } }
        return wt
    }

    /// What the Tensor-level backward needs.
    public struct Cache: Sendable {
        let x: Tensor, initialState: Tensor?, u: [Float]
    }

    /// y `[B, T, C]` and the final state `[B, K-1, C]` for x `[B, T, C]`,
    /// starting from `initialState` `[B, K-1, C]` (zeros when nil).
    ///
    /// - Throws: `FWError.shapeMismatch` naming "x" or "initial conv state".
    public func forward(_ x: Tensor, initialState: Tensor?, store: ParameterStore) throws
        -> (y: Tensor, state: Tensor, cache: Cache) {
        guard x.rank == 3, x.shape[2] == channels else {
            throw FWError.shapeMismatch(tensor: "x", expected: "[B, T, C] = [B, T, \(channels)]", got: x.shape)
        }
        let (B, T) = (x.shape[0], x.shape[1])
        if let s0 = initialState { try s0.checkShape("initial conv state", stateShape(batch: B)) }
        var y = Tensor(shape: x.shape), state = Tensor(shape: stateShape(batch: B))
        var u = [Float](repeating: 0, count: x.count)
        store.withValues { p in
            Self.forward(y: &y.storage, u: &u, finalState: &state.storage, x: x.storage, ldx: channels,
                         state: initialState?.storage, weight: p + weight.offset,
                         B: B, T: T, C: channels, K: kernelSize)
        }
        return (y, state, Cache(x: x, initialState: initialState, u: u))
    }

    /// dL/dx `[B, T, C]` and dL/d(initial state) `[B, K-1, C]` from dy
    /// `[B, T, C]` and dL/d(final state) (zero when nil), accumulating dL/dw.
    ///
    /// - Throws: `FWError.shapeMismatch` naming "dy" or "dstate".
    public func backward(_ dy: Tensor, dstate: Tensor?, cache: Cache,
                         store: inout ParameterStore) throws -> (dx: Tensor, dinitialState: Tensor) {
        let x = cache.x
        let (B, T) = (x.shape[0], x.shape[1])
        try dy.checkShape("dy", x.shape)
        if let dstate { try dstate.checkShape("dstate", stateShape(batch: B)) }
        var dx = Tensor(shape: x.shape), ds0 = Tensor(shape: stateShape(batch: B))
        store.withPointers { p in
            Self.backward(dx: &dx.storage, ldx: channels, dweight: p.gradient(weight), dstate: &ds0.storage,
                          dy: dy.storage, dfinalState: dstate?.storage, u: cache.u, x: x.storage,
                          state: cache.initialState?.storage, weight: p.value(weight),
                          B: B, T: T, C: channels, K: kernelSize)
        }
        return (dx, ds0)
    }
}
