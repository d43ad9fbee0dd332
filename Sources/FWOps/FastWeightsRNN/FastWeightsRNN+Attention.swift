#if canImport(Glibc)
import Glibc
#endif
import FWCore

// The attention form (Ba et al. 2016, section 3.1): A is never formed. With
// the hidden states h_0 .. h_{t-1} of the sequence as the rows of H [t, N]
// (they are the op's own output, stored anyway) and w_tau = eta lambda^(t-1-tau),
//
//     A_t x = sum_{tau<t} w_tau h_tau (h_tau . x) = H^T (w o (H x))
//
// two sgemv over the history per read, O(t N) instead of O(N^2), and no
// memory beyond h itself (the paper's form for large minibatches).
//
// Backward of u = H^T (w o (H x)) given du (p = H x, q = H du):
//
//     dx      = H^T (w o q)                           (= A_t du)
//     dH     += (w o p) du^T + (w o q) x^T            (two rank-1 updates)
//
// dH is the running dL/dh of earlier steps: the rows tau < t are finished
// later in the reverse walk, so the memory's share of dL/dh_tau is complete
// by the time step tau starts (nothing to add in `beginStep`).
// (0-based in the code: step t reads the t earlier states h_0..h_{t-1}.)

extension FastWeightsRNN {
    /// w[k] = eta lambda^k for k = 0..<T, each from one `pow` (not a running
    /// product, whose rounding would grow with k).
    static func decayWeights(_ config: FastWeightsRNNConfig, count T: Int) -> Buffer {
        let w = Buffer(count: T)
        for k in 0..<T {
            w.pointer[k] = Float(Double(config.eta) * pow(Double(config.lambda), Double(k)))
        }
        return w
    }

    /// Forward memory of the attention form for one sequence: reads over its history.
    struct AttentionForwardMemory: ForwardMemory {
        let N: Int
        /// This sequence's h [T, N] (the op's output): rows 0..<t are the history at step t.
        let history: UnsafeMutablePointer<Float>
        let weights: Buffer
        /// [T]: p = w o (H x).
        let scratch: Buffer

        init(_ d: Dims, history: UnsafeMutablePointer<Float>, weights: Buffer) {
            N = d.N
            self.history = history
            self.weights = weights
            scratch = Buffer(count: d.S > 0 ? d.T : 0)
        }

        func read(_ t: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
            let H = history, p = scratch.pointer, w = weights.pointer
            BLAS.sgemv(.none, m: t, n: N, alpha: 1, a: H, lda: N, x: x, beta: 0, y: p)       // p = H x
            for tau in 0..<t { p[tau] *= w[t - 1 - tau] }                                      // w o p
            BLAS.sgemv(.transpose, m: t, n: N, alpha: 1, a: H, lda: N, x: p, beta: 0, y: y)  // y = H^T p
        }

        func write(_ t: Int, h: UnsafePointer<Float>) {}   // h_t is already in the history
    }

    /// Backward memory of the attention form for one sequence.
    struct AttentionBackwardMemory: BackwardMemory {
        let N: Int
        let history: UnsafeMutablePointer<Float>
        /// This sequence's running dL/dh [T, N] of the backward walk.
        let dHistory: UnsafeMutablePointer<Float>
        let weights: Buffer
        /// [2T]: q and p.
        let scratch: Buffer

        init(_ d: Dims, history: UnsafeMutablePointer<Float>, dHistory: UnsafeMutablePointer<Float>,
             weights: Buffer) {
            N = d.N
            self.history = history
            self.dHistory = dHistory
            self.weights = weights
            scratch = Buffer(count: d.S > 0 ? 2 * d.T : 0)
        }

        func beginStep(_ t: Int, h: UnsafePointer<Float>, dh: UnsafeMutablePointer<Float>) {}

        func read(_ t: Int, firstOfStep: Bool, x: UnsafePointer<Float>, du: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>) {
            let H = history, dH = dHistory, w = weights.pointer
            let q = scratch.pointer, p = q + t
            BLAS.sgemv(.none, m: t, n: N, alpha: 1, a: H, lda: N, x: du, beta: 0, y: q)      // q = H du
            BLAS.sgemv(.none, m: t, n: N, alpha: 1, a: H, lda: N, x: x, beta: 0, y: p)       // p = H x
            for tau in 0..<t {
                q[tau] *= w[t - 1 - tau]
                p[tau] *= w[t - 1 - tau]
            }
            BLAS.sgemv(.transpose, m: t, n: N, alpha: 1, a: H, lda: N, x: q, beta: 0, y: dx) // dx = H^T (w o q)
            BLAS.sger(m: t, n: N, alpha: 1, x: p, y: du, a: dH, lda: N)                     // dH += (w o p) du^T
            BLAS.sger(m: t, n: N, alpha: 1, x: q, y: x, a: dH, lda: N)                      //     + (w o q) x^T
        }
    }
}
