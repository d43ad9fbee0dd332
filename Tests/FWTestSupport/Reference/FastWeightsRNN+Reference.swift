// Float64 oracle for the fast-weights RNN (docs/contract.md section 5), written from
// the formulas with plain loops: A is an explicit N x N matrix updated every
// step, layer norm recomputed from scratch. Kept independent of the engine
// (no BLAS, no shared helpers) so that it can catch the engine's mistakes.
import Foundation

/// One fast-weights RNN problem in Float64: sizes and hyper-parameters, and
/// the flat layout `[x, W, C, b, g, c]` that finite differences perturb.
public struct FastWeightsRNNReference: Sendable {
    public var batch: Int, time: Int, input: Int, hidden: Int
    public var lambda: Double, eta: Double
    public var innerSteps: Int
    public var relu: Bool

    public init(batch: Int, time: Int, input: Int, hidden: Int,
                lambda: Double, eta: Double, innerSteps: Int, relu: Bool) {
        self.batch = batch
        self.time = time
        self.input = input
        self.hidden = hidden
        self.lambda = lambda
        self.eta = eta
        self.innerSteps = innerSteps
        self.relu = relu
    }

    /// Counts of x [B,T,Din], W [N,N], C [N,Din], b, g, c [N], in packing order.
    public var blockSizes: [Int] {
        [batch * time * input, hidden * hidden, hidden * input, hidden, hidden, hidden]
    }

    /// The offsets of each block in a packed vector.
    public var blockOffsets: [Int] {
        var o = [0]
        for s in blockSizes.dropLast() { o.append(o.last! + s) }
        return o
    }

    /// `[x, W, C, b, g, c]` concatenated.
    public func pack(x: [Double], W: [Double], C: [Double], b: [Double], g: [Double], c: [Double]) -> [Double] {
        precondition([x.count, W.count, C.count, b.count, g.count, c.count] == blockSizes)
        return x + W + C + b + g + c
    }

    /// The output of `forward`: h [B, T, N], and the smallest |input| of any
    /// relu evaluated (distance to the kink; +inf for tanh).
    public struct Output {
        public var h: [Double]
        public var minActivationInput: Double
    }

    /// All hidden states from a packed `[x, W, C, b, g, c]`.
    public func forward(packed p: [Double]) -> Output {
        let (B, T, Din, N, S) = (batch, time, input, hidden, innerSteps)
        let o = blockOffsets
        let x = Array(p[o[0]..<o[1]]), W = Array(p[o[1]..<o[2]]), C = Array(p[o[2]..<o[3]])
        let bias = Array(p[o[3]..<o[4]]), g = Array(p[o[4]..<o[5]]), c = Array(p[o[5]...])
        var h = [Double](repeating: 0, count: B * T * N)
        var kink = Double.infinity
        func f(_ v: Double) -> Double {
            if relu { kink = min(kink, abs(v)); return max(v, 0) }
            return Foundation.tanh(v)
        }
        for bb in 0..<B {
            var A = [Double](repeating: 0, count: N * N)       // A_0 = 0
            var hPrev = [Double](repeating: 0, count: N)       // h_0 = 0
            for t in 0..<T {
                // z_t = W h_{t-1} + C x_t + b
                var z = [Double](repeating: 0, count: N)
                for i in 0..<N {
                    var s = bias[i]
                    for j in 0..<N { s += W[i * N + j] * hPrev[j] }
                    for k in 0..<Din { s += C[i * Din + k] * x[(bb * T + t) * Din + k] }
                    z[i] = s
                }
                var hs = z.map(f)                                // h^(0) = f(z_t)
                if S > 0 {
                    for _ in 1...S {
                        // u = z_t + A_{t-1} h^(s-1)
                        var u = [Double](repeating: 0, count: N)
                        for i in 0..<N {
                            var s = z[i]
                            for j in 0..<N { s += A[i * N + j] * hs[j] }
                            u[i] = s
                        }
                        // LN(u) = g (u - mean) / sqrt(var + 1e-5) + c, var with divisor N
                        let mean = u.reduce(0, +) / Double(N)
                        let variance = u.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(N)
                        let sd = (variance + 1e-5).squareRoot()
                        hs = (0..<N).map { i in f(g[i] * (u[i] - mean) / sd + c[i]) }
                    }
                }
                for i in 0..<N { h[(bb * T + t) * N + i] = hs[i] }
                // A_t = lambda A_{t-1} + eta h_t h_t^T
                for i in 0..<N {
                    for j in 0..<N { A[i * N + j] = lambda * A[i * N + j] + eta * hs[i] * hs[j] }
                }
                hPrev = hs
            }
        }
        return Output(h: h, minActivationInput: kink)
    }
}
