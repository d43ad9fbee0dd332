import FWCore

// The IRNN's forward and backward kernels on raw row-major pointers.
//
// Derivation (loss L, gradients dL/dh_t = dh_t given for every step):
//
//     z_t = W h_{t-1} + U x_t + b,   h_t = relu(z_t)
//
//     g_t  = dh_t + W^T dz_{t+1}             (total gradient reaching h_t; dz_T = 0)
//     dz_t = g_t * [z_t > 0] = g_t * [h_t > 0]
//     dW   = sum_t dz_t h_{t-1}^T,  dU = sum_t dz_t x_t^T,  db = sum_t dz_t,  dx_t = U^T dz_t
//
// In row form (rows are examples): g[:, t-1] += dz[:, t] W. relu'(0) is taken as 0.

extension IRNN {
    /// Forward: `h [B, T, N]` from `x [B, T, Din]`; h holds z until each step's relu.
    static func forwardKernel(
        x: UnsafePointer<Float>, W: UnsafePointer<Float>, U: UnsafePointer<Float>, b: UnsafePointer<Float>,
        h: UnsafeMutablePointer<Float>,
        batch: Int, time: Int, hidden n: Int, input: Int
    ) {
        // z = X U^T + b for all B*T rows at once.
        RecurrentBaseline.inputProjection(x: x, U: U, b: b, A: h, count: batch * time, rows: n, input: input)
        for t in 0..<time {
            // z[:, t] += h[:, t-1] W^T  (one [B, N] x [N, N] product over the batch)
            if t > 0 {
                RecurrentBaseline.addRecurrent(h: h, W: W, A: h, t: t, batch: batch, time: time, rows: n, hidden: n)
            }
            // h[:, t] = relu(z[:, t])
            for s in 0..<batch {
                let row = h + (s * time + t) * n
                for j in 0..<n where row[j] < 0 { row[j] = 0 }   // NaN stays NaN
            }
        }
    }

    /// Backward: `dz` holds dh on entry and dL/dz on exit; writes all gradients.
    static func backwardKernel(
        x: UnsafePointer<Float>, h: UnsafePointer<Float>, W: UnsafePointer<Float>, U: UnsafePointer<Float>,
        dz: UnsafeMutablePointer<Float>, gradients g: inout IRNNGradients,
        batch: Int, time: Int, hidden n: Int, input: Int
    ) {
        // Reverse the time loop: dz[:, t] = g[:, t] * [h > 0], then g[:, t-1] += dz[:, t] W.
        for t in stride(from: time - 1, through: 0, by: -1) {
            for s in 0..<batch {
                let o = (s * time + t) * n
                for j in 0..<n where h[o + j] <= 0 { dz[o + j] = 0 }
            }
            if t > 0 {
                RecurrentBaseline.backRecurrent(dA: dz, W: W, dh: dz, t: t, batch: batch, time: time, rows: n, hidden: n)
            }
        }
        RecurrentBaseline.parameterGradients(
            dA: dz, h: h, x: x, U: U,
            dx: &g.dx, dW: &g.dW, dU: &g.dU, db: &g.db,
            batch: batch, time: time, rows: n, hidden: n, input: input)
    }
}
