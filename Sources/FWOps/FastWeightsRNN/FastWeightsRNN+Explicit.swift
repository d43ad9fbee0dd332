import FWCore

// The explicit form: the fast memory A (N x N, symmetric) is kept per
// sequence. Forward reads are sgemv, writes a scaling and an sger.
//
// Backward: A's recursion is never run backwards (that would divide by
// lambda and amplify error by lambda^-T). The forward stores A_{jK} at every
// K-th step (K = ceil(sqrt(T))); the backward, on entering segment
// [jK, jK + K) from its end, recomputes A_{jK} .. A_{jK+K-1} forward from the
// checkpoint and the stored h (A_{t+1} = lambda A_t + eta h_t h_t^T), exactly
// as the forward did. Memory per sequence: ceil(T/K) + K matrices of N^2
// (B=64, N=128, T=512: 46 x 64 KB = 2.9 MB per sequence, 188 MB in all,
// against 2 GB for every A_t). The adjoint G = dL/dA_t (N x N) runs backwards:
//
//     G_{t-1} = lambda G_t + sum_s du_t^(s) h_t^(s-1)T     (reads at step t)
//     dL/dh_t += eta (G_t + G_t^T) h_t                      (write at step t)
//
// (0-based in the code: step t reads A_t, the state before its own write.)

extension FastWeightsRNN {
    /// Forward memory of the explicit form: A_b [N, N] per sequence, and the
    /// checkpoints A_{jK} the backward restarts from.
    final class ExplicitForwardMemory: ForwardMemory {
        let N, T, K: Int
        let lambda, eta: Float
        /// [B, N, N]: A before the current step's write.
        let A: Buffer
        /// [B, ceil(T/K), N, N]: A_{jK} (the state step jK reads).
        let checkpoints: Buffer

        init(_ d: Dims, _ config: FastWeightsRNNConfig, interval K: Int) {
            N = d.N
            T = d.T
            self.K = K
            lambda = config.lambda
            eta = config.eta
            let active = d.S > 0       // with S = 0, A is never read: keep nothing
            A = Buffer(count: active ? d.B * d.N * d.N : 0)
            checkpoints = Buffer(count: active ? d.B * ((d.T + K - 1) / K) * d.N * d.N : 0)
        }

        func read(_ b: Int, _ t: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
            // y = A_t x  (A is symmetric, so the row-major NoTrans sgemv is the fast way)
            BLAS.sgemv(.none, m: N, n: N, alpha: 1, a: A.pointer + b * N * N, lda: N,
                       x: x, beta: 0, y: y)
        }

        func write(_ b: Int, _ t: Int, h: UnsafePointer<Float>) {
            let NN = N * N
            let Ab = A.pointer + b * NN
            if t % K == 0 {
                (checkpoints.pointer + (b * ((T + K - 1) / K) + t / K) * NN).update(from: Ab, count: NN)
            }
            guard t < T - 1 else { return }       // A_T is never read
            BLAS.scale(Ab, count: NN, by: lambda)                              // lambda A
            BLAS.sger(m: N, n: N, alpha: eta, x: h, y: h, a: Ab, lda: N)       // + eta h h^T
        }
    }

    /// Backward memory of the explicit form: one recomputed segment of A's
    /// and the adjoint G = dL/dA per sequence.
    final class ExplicitBackwardMemory: BackwardMemory {
        let N, T, K, checkpointCount: Int
        let lambda, eta: Float
        let checkpoints: Buffer?
        /// The forward's h [B, T, N] (the writes to replay).
        let history: UnsafeMutablePointer<Float>
        /// [B, K, N, N]: A_{jK+r}, r = 0..<K, of the current segment j.
        let segment: Buffer
        /// [B, N, N]: G = dL/dA_{t+1} at the start of step t, dL/dA_t after its reads.
        let G: Buffer

        init(_ d: Dims, _ config: FastWeightsRNNConfig, interval K: Int, checkpoints: Buffer?,
             history: UnsafeMutablePointer<Float>) {
            N = d.N
            T = d.T
            self.K = K
            checkpointCount = (d.T + K - 1) / K
            lambda = config.lambda
            eta = config.eta
            self.checkpoints = checkpoints
            self.history = history
            let active = d.S > 0
            segment = Buffer(count: active ? d.B * K * d.N * d.N : 0)
            G = Buffer(count: active ? d.B * d.N * d.N : 0)
        }

        func beginStep(_ b: Int, _ t: Int, h: UnsafePointer<Float>, dh: UnsafeMutablePointer<Float>) {
            let NN = N * N
            let j = t / K, start = j * K, end = min(start + K, T)
            let seg = segment.pointer + b * K * NN
            if t == end - 1, let checkpoints {
                // Entering segment j from its end: replay the forward's writes
                // A_{r+1} = lambda A_r + eta h_r h_r^T from the checkpoint A_start.
                seg.update(from: checkpoints.pointer + (b * checkpointCount + j) * NN, count: NN)
                for r in 1..<max(end - start, 1) {
                    let prev = seg + (r - 1) * NN, cur = seg + r * NN
                    let hr = history + (b * T + start + r - 1) * N
                    cur.update(from: prev, count: NN)
                    BLAS.scale(cur, count: NN, by: lambda)
                    BLAS.sger(m: N, n: N, alpha: eta, x: hr, y: hr, a: cur, lda: N)
                }
            }
            guard t < T - 1 else { return }       // G = dL/dA_T = 0 (never read)
            let Gb = G.pointer + b * NN
            // A_{t+1} = lambda A_t + eta h_t h_t^T:  dh_t += eta (G + G^T) h_t,  G <- lambda G
            BLAS.sgemv(.none, m: N, n: N, alpha: eta, a: Gb, lda: N, x: h, beta: 1, y: dh)
            BLAS.sgemv(.transpose, m: N, n: N, alpha: eta, a: Gb, lda: N, x: h, beta: 1, y: dh)
            BLAS.scale(Gb, count: NN, by: lambda)
        }

        func read(_ b: Int, _ t: Int, x: UnsafePointer<Float>, du: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>) {
            let NN = N * N
            let At = segment.pointer + (b * K + t % K) * NN
            // u = A_t x:  dx = A_t^T du = A_t du (symmetric),  G += du x^T
            BLAS.sgemv(.none, m: N, n: N, alpha: 1, a: At, lda: N, x: du, beta: 0, y: dx)
            BLAS.sger(m: N, n: N, alpha: 1, x: du, y: x, a: G.pointer + b * NN, lda: N)
        }
    }
}
