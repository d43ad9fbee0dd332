import FWCore

// The LSTM's forward and backward kernels on raw row-major pointers.
//
// Derivation (dh_t = dL/dh_t given for every step; no outside gradient on c_T):
//
//     a = U x_t + W h_{t-1} + b;  i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
//     c_t = f c_{t-1} + i g;      h_t = o tanh(c_t)
//
//     gh_t   = dh_t + W^T da_{t+1}                        (total gradient reaching h_t)
//     gc_t   = dc_{t+1 -> t} + gh_t o (1 - tanh^2 c_t)    (dc carried back: f_{t+1} gc_{t+1})
//     da_o   = gh_t tanh(c_t) o (1 - o)
//     da_i   = gc_t g i (1 - i)
//     da_g   = gc_t i (1 - g^2)
//     da_f   = gc_t c_{t-1} f (1 - f)
//     carry  = gc_t f                                      (to step t-1)
//     dW = sum_t da_t h_{t-1}^T,  dU = sum_t da_t x_t^T,  db = sum_t da_t,  dx_t = U^T da_t
//
// The cache holds the activated gates and c_t; tanh(c_t) is recomputed.

extension LSTM {
    /// Forward: fills `gates [B, T, 4N]` (activated), `c [B, T, N]`, `h [B, T, N]`.
    static func forwardKernel(
        x: UnsafePointer<Float>, W: UnsafePointer<Float>, U: UnsafePointer<Float>, b: UnsafePointer<Float>,
        gates: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>, h: UnsafeMutablePointer<Float>,
        batch: Int, time: Int, hidden n: Int, input: Int
    ) {
        let g4 = 4 * n
        // a = X U^T + b for all B*T rows at once.
        RecurrentBaseline.inputProjection(x: x, U: U, b: b, A: gates, count: batch * time, rows: g4, input: input)
        for t in 0..<time {
            // a[:, t] += h[:, t-1] W^T  (one [B, N] x [N, 4N] product over the batch)
            if t > 0 {
                RecurrentBaseline.addRecurrent(h: h, W: W, A: gates, t: t, batch: batch, time: time, rows: g4, hidden: n)
            }
            for s in 0..<batch {
                let r = s * time + t
                let a = gates + r * g4
                let ct = c + r * n
                let ht = h + r * n
                for j in 0..<n {
                    let i = RecurrentBaseline.sigmoid(a[j])
                    let f = RecurrentBaseline.sigmoid(a[n + j])
                    let g = RecurrentBaseline.tanh(a[2 * n + j])
                    let o = RecurrentBaseline.sigmoid(a[3 * n + j])
                    a[j] = i; a[n + j] = f; a[2 * n + j] = g; a[3 * n + j] = o
                    let cPrev: Float = t > 0 ? c[(r - 1) * n + j] : 0
                    let cNew = f * cPrev + i * g
                    ct[j] = cNew
                    ht[j] = o * RecurrentBaseline.tanh(cNew)
                }
            }
        }
    }

    /// Backward: `dh` holds dL/dh on entry (it accumulates the recurrent
    /// gradient, in place); `dA [B, T, 4N]` receives dL/da; writes all gradients.
    static func backwardKernel(
        x: UnsafePointer<Float>, h: UnsafePointer<Float>, W: UnsafePointer<Float>, U: UnsafePointer<Float>,
        gates: UnsafePointer<Float>, c: UnsafePointer<Float>,
        dh: UnsafeMutablePointer<Float>, dA: UnsafeMutablePointer<Float>, gradients gr: inout LSTMGradients,
        batch: Int, time: Int, hidden n: Int, input: Int
    ) {
        let g4 = 4 * n
        // dL/dc_{t} carried from step t+1 (through c_{t+1} = f c_t + ...), per sequence.
        var dcCarry = [Float](repeating: 0, count: batch * n)
        dcCarry.withUnsafeMutableBufferPointer { carryBuffer in
            let carry = carryBuffer.baseAddress!
            for t in stride(from: time - 1, through: 0, by: -1) {
                for s in 0..<batch {
                    let r = s * time + t
                    let a = gates + r * g4
                    let da = dA + r * g4
                    let gh = dh + r * n
                    let cc = carry + s * n
                    for j in 0..<n {
                        let i = a[j], f = a[n + j], g = a[2 * n + j], o = a[3 * n + j]
                        let cPrev: Float = t > 0 ? c[(r - 1) * n + j] : 0
                        let tc = RecurrentBaseline.tanh(c[r * n + j])
                        let gc = cc[j] + gh[j] * o * (1 - tc * tc)
                        da[j] = gc * g * i * (1 - i)
                        da[n + j] = gc * cPrev * f * (1 - f)
                        da[2 * n + j] = gc * i * (1 - g * g)
                        da[3 * n + j] = gh[j] * tc * o * (1 - o)
                        cc[j] = gc * f
                    }
                }
                // dh[:, t-1] += da[:, t] W  (one [B, 4N] x [4N, N] product)
                if t > 0 {
                    RecurrentBaseline.backRecurrent(dA: dA, W: W, dh: dh, t: t, batch: batch, time: time, rows: g4, hidden: n)
                }
            }
        }
        RecurrentBaseline.parameterGradients(
            dA: dA, h: h, x: x, U: U,
            dx: &gr.dx, dW: &gr.dW, dU: &gr.dU, db: &gr.db,
            batch: batch, time: time, rows: g4, hidden: n, input: input)
    }
}
