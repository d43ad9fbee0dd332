import FWCore

// The explicit form: the fast memory A (N x N, symmetric) is kept per
// sequence. Forward reads are sgemv, writes a scaling and an sger.
//
// Backward: A's recursion is never run backwards (that would divide by
// lambda and amplify error by lambda^-T). The forward stores A_{jK} at every
// K-th step (K = ceil(sqrt(T))); the backward, on entering segment
// [jK, jK + K) from its end, recomputes A_{jK} .. A_{jK+K-1} forward from the
// checkpoint and the stored h (A_{t+1} = lambda A_t + eta h_t h_t^T), exactly
// as the forward did. Memory: ceil(T/K) checkpoints of N^2 per sequence in
// the cache, plus K + 1 matrices per worker during the backward (B=64, N=128,
// T=512: 23 x 64 KB = 1.5 MB per sequence, 94 MB in all, against 2 GB for
// every A_t). The adjoint G = dL/dA_t (N x N) runs backwards:
//
//     G_{t-1} = lambda G_t + sum_s du_t^(s) h_t^(s-1)T     (reads at step t)
//     dL/dh_t += eta (G_t + G_t^T) h_t                      (write at step t)
//
// (0-based in the code: step t reads A_t, the state before its own write.)

extension FastWeightsRNN {
    /// Forward memory of the explicit form for one sequence: A [N, N], and
    /// the checkpoints A_{jK} the backward restarts from.
    struct ExplicitForwardMemory: ForwardMemory {
        let N, T, K: Int
        let lambda, eta: Float
        /// A before the current step's write (this worker's, freed after the walk).
        let A: Buffer
        /// [ceil(T/K), N, N]: A_{jK} (the state step jK reads), in the cache.
        let checkpoints: UnsafeMutablePointer<Float>

        /// Number of checkpoints per sequence.
        static func checkpointCount(_ d: Dims, interval K: Int) -> Int { (d.T + K - 1) / K }

        init(_ d: Dims, _ config: FastWeightsRNNConfig, interval K: Int, checkpoints: UnsafeMutablePointer<Float>) {
            N = d.N
            T = d.T
            self.K = K
            lambda = config.lambda
            eta = config.eta
            A = Buffer(count: d.S > 0 ? d.N * d.N : 0)   // with S = 0, A is never read
            self.checkpoints = checkpoints
        }

        func read(_ t: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
            // y = A_t x  (A is symmetric, so the row-major NoTrans sgemv is the fast way)
            BLAS.sgemv(.none, m: N, n: N, alpha: 1, a: A.pointer, lda: N, x: x, beta: 0, y: y)
        }

        func write(_ t: Int, h: UnsafePointer<Float>) {
            let NN = N * N
            if t % K == 0 { (checkpoints + (t / K) * NN).update(from: A.pointer, count: NN) }
            guard t < T - 1 else { return }                  // A_T is never read
            decayAddOuter(A.pointer, N, lambda: lambda, alpha: eta, h, h)
        }
    }

    /// M <- lambda M + alpha x y^T over M [N, N], in one pass (a scaling plus
    /// an sger would stream M twice).
    @inline(__always)
    static func decayAddOuter(_ M: UnsafeMutablePointer<Float>, _ N: Int,
                              lambda: Float, alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) {
        for i in 0..<N {
            let m = M + i * N
            let axi = alpha * x[i]
            for j in 0..<N { m[j] = lambda * m[j] + axi * y[j] }
        }
    }

    /// out = lambda M + alpha x y^T into a distinct `out` (a copy then the
    /// in-place update would stream the matrix once more).
    @inline(__always)
    static func decayAddOuter(_ out: UnsafeMutablePointer<Float>, from M: UnsafePointer<Float>, _ N: Int,
                              lambda: Float, alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) {
        for i in 0..<N {
            let o = out + i * N, m = M + i * N
            let axi = alpha * x[i]
            for j in 0..<N { o[j] = lambda * m[j] + axi * y[j] }
        }
    }

    /// Backward memory of the explicit form for one sequence: one recomputed
    /// segment of A's and the adjoint G = dL/dA.
    struct ExplicitBackwardMemory: BackwardMemory {
        let N, T, K, checkpointCount: Int
        let lambda, eta: Float
        /// This sequence's checkpoints in the cache (nil when S = 0).
        let checkpoints: UnsafeMutablePointer<Float>?
        /// This sequence's h [T, N] from the forward (the writes to replay).
        let history: UnsafeMutablePointer<Float>
        /// [K, N, N]: A_{jK+r}, r = 0..<K, of the current segment j.
        let segment: Buffer
        /// [N, N]: G = dL/dA_{t+1} at the start of step t, dL/dA_t after its reads.
        let G: Buffer

        init(_ d: Dims, _ config: FastWeightsRNNConfig, interval K: Int,
             checkpoints: UnsafeMutablePointer<Float>?, history: UnsafeMutablePointer<Float>) {
            N = d.N
            T = d.T
            self.K = K
            checkpointCount = ExplicitForwardMemory.checkpointCount(d, interval: K)
            lambda = config.lambda
            eta = config.eta
            self.checkpoints = checkpoints
            self.history = history
            segment = Buffer(count: d.S > 0 ? K * d.N * d.N : 0)
            G = Buffer(count: d.S > 0 ? d.N * d.N : 0)
        }

        func beginStep(_ t: Int, h: UnsafePointer<Float>, dh: UnsafeMutablePointer<Float>) {
            let NN = N * N
            let j = t / K, start = j * K, end = min(start + K, T)
            let seg = segment.pointer
            if t == end - 1, let checkpoints {
                // Entering segment j from its end: replay the forward's writes
                // A_{r+1} = lambda A_r + eta h_r h_r^T from the checkpoint A_start.
                seg.update(from: checkpoints + j * NN, count: NN)
                for r in 1..<max(end - start, 1) {
                    let hr = history + (start + r - 1) * N
                    decayAddOuter(seg + r * NN, from: seg + (r - 1) * NN, N, lambda: lambda, alpha: eta, hr, hr)
                }
            }
            guard t < T - 1 else { return }                  // G = dL/dA_T = 0 (never read)
            let Gp = G.pointer
            // A_{t+1} = lambda A_t + eta h_t h_t^T:  dh_t += eta (G + G^T) h_t
            // (G <- lambda G follows in the step's first read).
            BLAS.sgemv(.none, m: N, n: N, alpha: eta, a: Gp, lda: N, x: h, beta: 1, y: dh)
            BLAS.sgemv(.transpose, m: N, n: N, alpha: eta, a: Gp, lda: N, x: h, beta: 1, y: dh)
        }

        func read(_ t: Int, firstOfStep: Bool, x: UnsafePointer<Float>, du: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>) {
            let At = segment.pointer + (t % K) * N * N
            // u = A_t x:  dx = A_t^T du = A_t du (symmetric)
            BLAS.sgemv(.none, m: N, n: N, alpha: 1, a: At, lda: N, x: du, beta: 0, y: dx)
            if firstOfStep {
                // G = dL/dA_t = lambda dL/dA_{t+1} + du x^T (+ the step's other reads)
                decayAddOuter(G.pointer, N, lambda: lambda, alpha: 1, du, x)
            } else {
                BLAS.sger(m: N, n: N, alpha: 1, x: du, y: x, a: G.pointer, lda: N)   // G += du x^T
            }
        }
    }
}
