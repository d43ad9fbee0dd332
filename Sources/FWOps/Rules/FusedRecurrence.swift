import Foundation
import FWCore

/// The recurrent (token by token) form of every rule on one sequence
/// (docs/contract.md sections 4, 4b), with `P = S^T` `[dphi, dv]` and
/// a_t = exp(g_t) (a_t = 1 without `g`):
///
/// ```
/// sum, gated sum:      P_t = a_t P_{t-1} + k_t v_t^T
/// delta, gated delta:  vbar_t = a_t P_{t-1}^T k_t,  u_t = beta_t (v_t - vbar_t),
///                      P_t = a_t P_{t-1} + k_t u_t^T
/// y_t = P_t^T q_t
/// ```
///
/// `beta` nil is a sum rule, `g` nil an ungated one; the rules'
/// `+Recurrent`/kernel files call here. Each token is one fused SIMD step
/// per head (`FusedStep`: one read of the state for P^T k and P^T q, one
/// write, y from y = a P^T q + u (k . q)); no BLAS call per token.
///
/// The forward saves the state at the start of every segment of
/// `SumRule.recurrentSegment(T)` = ceil(sqrt(T)) steps. The backward
/// recomputes each segment's states from its checkpoint with the same
/// steps (bit for bit the forward's states; O(sqrt(T) d^2) memory), then
/// walks the segment in reverse with `FusedStep.backward`, carrying
/// `G = dL/dP_t` in `dstate`. (Undoing the writes instead loses what the
/// forward's rounding put in: docs/contract.md, "Our choice: every recurrent
/// backward recomputes from checkpoints".)
///
/// States with more than `fusedMaxStateSize` entries take the same steps as
/// BLAS calls instead (`BLASStep`), where OpenBLAS's AVX2 kernels beat the
/// package's Swift (SSE2 in the portable build; see `fusedMaxStateSize`).
enum FusedRecurrence {
    /// The largest state (dphi x dv entries) the fused SIMD step runs on;
    /// larger ones use `BLASStep`. `fwp bench`, B=4 H=8 T=1024, best of 3
    /// (recurrent tokens/s, fused / BLAS): at 16 x 16 the fused step is
    /// 1.9x-2.4x faster forward and 1.2x-2.3x forward+backward; at 32 x 32
    /// it is 0.6x-1.3x forward and 0.7x-1.0x forward+backward; at 64 x 64
    /// and 128 x 128, 0.65x-1.0x and 0.4x-0.7x. 512 lies between the two
    /// measured sizes (the denominator's 16 x 17 is fused).
    ///
    /// Built for a CPU with 256-bit vectors (`FWP_TARGET_CPU=haswell`, which
    /// defines FWP_WIDE_SIMD; the Makefile's default on AVX2 machines) the
    /// fused step is about twice as fast and beats the BLAS calls up to
    /// 64 x 64 (measured 2026-12-02, same bench, the machine shared with
    /// other work: fused AVX2 / BLAS tokens/s at 64 x 64, delta 1.6x forward
    /// and 1.45x forward+backward, sum 1.3x-1.5x and 1.5x-1.8x, gated delta
    /// 1.8x and 1.9x; at 128 x 128 0.7x-1.4x forward, 1.2x-1.7x
    /// forward+backward, so 128 x 128 stays with BLAS).
    #if FWP_WIDE_SIMD
    static let fusedMaxStateSize = 64 * 64
    #else
    static let fusedMaxStateSize = 512
    #endif

    /// Whether `shape` runs the fused SIMD step.
    @inline(__always)
    static func fused(_ shape: SequenceShape) -> Bool { shape.stateCount <= fusedMaxStateSize }

    /// Floats the forward saves: the checkpoints, then for the delta rules
    /// the forward's vbar_t `[T, dv]` (from which the backward rebuilds
    /// u_t exactly, so neither its recomputation nor its steps read P^T k).
    static func savedCount(_ shape: SequenceShape, delta: Bool) -> Int {
        SumRule.recurrentSavedCount(shape) + (delta ? shape.T * shape.dv : 0)
    }

    /// Floating-point operations (multiply-add = 2) per sequence. Forward,
    /// per step: the read (2 dphi dv for P^T q, 2 more for P^T k in the
    /// delta rules) and the write (2 dphi dv, 1 more for the decay).
    /// Backward: the recomputed write, G^T k (2 dphi dv) and the row sweep
    /// (6 dphi dv, 10 for the delta rules, 3 more for the decay).
    static func flops(_ shape: SequenceShape, delta: Bool, gated: Bool, backward: Bool) -> Double {
        let T = Double(shape.T), dd = Double(shape.dphi * shape.dv)
        let write = gated ? 3.0 : 2.0
        let forward = T * dd * ((delta ? 4 : 2) + write)
        let back = T * dd * (write + 2 + (delta ? 10 : 6) + (gated ? 3 : 0))
        return backward ? forward + back : forward
    }

    /// a_t = exp(g_t), computed in Float64 as one exponent; 1 without gates.
    @inline(__always)
    static func decay(_ g: UnsafePointer<Float>?, _ t: Int) -> Float {
        g.map { Float(exp(Double($0[t]))) } ?? 1
    }

    /// y `[T, dv]`; state in P_0, out P_T `[dphi, dv]`; saved: `savedCount`
    /// floats (checkpoints, then vbar for the delta rules), nil when no backward follows.
    static func forward(y: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>,
                        saved: UnsafeMutablePointer<Float>?,
                        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        beta: UnsafePointer<Float>?, g: UnsafePointer<Float>?, shape: SequenceShape) {
        let T = shape.T, dphi = shape.dphi, dv = shape.dv, n = shape.stateCount
        precondition(T >= 1 && dphi >= 1 && dv >= 1, "FusedRecurrence.forward: bad shape \(shape)")
        let K = SumRule.recurrentSegment(T)
        let vbars = saved.map { $0 + SumRule.recurrentSavedCount(shape) }
        let fusedStep = fused(shape)
        let u = UnsafeMutablePointer<Float>.allocate(capacity: dv)   // BLASStep's scratch
        defer { u.deallocate() }
        for t in 0..<T {
            if let saved, t % K == 0 { (saved + (t / K) * n).update(from: state, count: n) }
            let vbar = beta == nil ? nil : vbars.map { $0 + t * dv }
            if fusedStep {
                FusedStep.forward(state: state, y: y + t * dv, vbar: vbar,
                                  q: q + t * dphi, k: k + t * dphi, v: v + t * dv,
                                  beta: beta.map { $0[t] }, a: decay(g, t), dphi: dphi, dv: dv)
            } else {
                BLASStep.forward(state: state, y: y + t * dv, vbar: vbar, u: u,
                                 q: q + t * dphi, k: k + t * dphi, v: v + t * dv,
                                 beta: beta.map { $0[t] }, a: decay(g, t), dphi: dphi, dv: dv)
            }
        }
    }

    /// dq, dk `[T, dphi]`, dv `[T, dv]`, dbeta and dg `[T]` (nil for a rule
    /// without that gate), overwritten; dstate in dL/dP_T, out dL/dP_0.
    static func backward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                         dv: UnsafeMutablePointer<Float>, dbeta: UnsafeMutablePointer<Float>?,
                         dg: UnsafeMutablePointer<Float>?, dstate: UnsafeMutablePointer<Float>,
                         dy: UnsafePointer<Float>,
                         q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         beta: UnsafePointer<Float>?, g: UnsafePointer<Float>?,
                         saved: UnsafePointer<Float>?, shape: SequenceShape) {
        let T = shape.T, dphi = shape.dphi, dvSize = shape.dv, n = shape.stateCount
        precondition(T >= 1 && dphi >= 1 && dvSize >= 1, "FusedRecurrence.backward: bad shape \(shape)")
        guard let saved else { preconditionFailure("FusedRecurrence.backward: needs the forward's checkpoints") }
        let K = SumRule.recurrentSegment(T)
        let vbars = beta == nil ? nil : saved + SumRule.recurrentSavedCount(shape)
        // One segment's states P_start ..< P_end (after each write), its
        // written values u_t [K, dv], and the step's scratch.
        let states = UnsafeMutablePointer<Float>.allocate(capacity: K * n + K * dvSize + 2 * dvSize)
        defer { states.deallocate() }
        let us = states + K * n, scratch = us + K * dvSize
        let fusedStep = fused(shape)

        for segment in stride(from: (T - 1) / K, through: 0, by: -1) {
            let start = segment * K, end = min(T, start + K)
            let checkpoint = saved + segment * n
            // Recompute P_t for t in start..<end-1 (P_{end-1} is no step's
            // prev) with the forward's own write, and every step's u_t.
            for t in start..<end {
                let s = states + (t - start) * n, u = us + (t - start) * dvSize
                let vbar = vbars.map { $0 + t * dvSize }
                if t == end - 1 {
                    // Only u_t: u = v, or beta (v - vbar) as the forward formed it.
                    if let beta, let vbar {
                        for i in 0..<dvSize { u[i] = beta[t] * (v[t * dvSize + i] - vbar[i]) }
                    } else {
                        u.update(from: v + t * dvSize, count: dvSize)
                    }
                    continue
                }
                s.update(from: t == start ? checkpoint : UnsafePointer(s - n), count: n)
                if fusedStep {
                    FusedStep.write(state: s, u: u, k: k + t * dphi, v: v + t * dvSize, vbar: vbar,
                                    beta: beta.map { $0[t] }, a: decay(g, t), dphi: dphi, dv: dvSize)
                } else {
                    BLASStep.write(state: s, u: u, k: k + t * dphi, v: v + t * dvSize, vbar: vbar,
                                   beta: beta.map { $0[t] }, a: decay(g, t), dphi: dphi, dv: dvSize)
                }
            }
            for t in stride(from: end - 1, through: start, by: -1) {
                let prev = t == start ? checkpoint : UnsafePointer(states + (t - start - 1) * n)
                let (u, vbar) = (UnsafePointer(us + (t - start) * dvSize), vbars.map { $0 + t * dvSize })
                if fusedStep {
                    FusedStep.backward(G: dstate, prev: prev, dq: dq + t * dphi, dk: dk + t * dphi, dv: dv + t * dvSize,
                                       dbeta: dbeta.map { $0 + t }, dg: dg.map { $0 + t },
                                       dy: dy + t * dvSize, q: q + t * dphi, k: k + t * dphi, v: v + t * dvSize,
                                       u: u, vbar: vbar, beta: beta.map { $0[t] }, a: decay(g, t),
                                       dphi: dphi, dv: dvSize, scratch: scratch)
                } else {
                    BLASStep.backward(G: dstate, prev: prev, dq: dq + t * dphi, dk: dk + t * dphi, dv: dv + t * dvSize,
                                      dbeta: dbeta.map { $0 + t }, dg: dg.map { $0 + t },
                                      dy: dy + t * dvSize, q: q + t * dphi, k: k + t * dphi, v: v + t * dvSize,
                                      u: u, vbar: vbar, beta: beta.map { $0[t] }, a: decay(g, t),
                                      dphi: dphi, dv: dvSize, scratch: scratch)
                }
            }
        }
    }
}
