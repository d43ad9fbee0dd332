#if canImport(Glibc)
import Glibc
#endif
import FWCore

/// Causal multi-head softmax attention (the Transformer row of the paper's
/// tables), x `[B, T, D]` -> y `[B, T, D]`:
///
/// ```
/// p          = x Wqkv^T                   Wqkv [3 H dk, D]; a row is [q_0..q_{H-1} | k_0..k_{H-1} | v_0..v_{H-1}]
/// per (b, h): S = Q K^T / sqrt(dk)        [T, T]      (sgemm)
///             S_ij = -inf for j > i       (causal mask)
///             P = softmax_rows(S)         (row max subtracted)
///             O = P V                     [T, dk]     (sgemm)
/// y          = merge(O) Wout^T            Wout [D, H dk]
/// ```
///
/// Both projections have no bias (as `FastWeightLayer`). Parameters:
/// `<name>.qkv.weight [3 H dk, D]`, `<name>.out.weight [D, H dk]`. The B*H
/// slices run in parallel through `ThreadOwnership.forEachSequence`. The
/// forward keeps P (`[B, H, T, T]`) for the backward
/// (`SoftmaxAttentionLayer+Backward.swift`).
public struct SoftmaxAttentionLayer: Sendable {
    /// D, the width of x and y.
    public let modelSize: Int
    /// H, the number of heads.
    public let heads: Int
    /// dk, the width of a query, key and value per head.
    public let headSize: Int
    /// Fused projection D -> 3 H dk, no bias.
    public let qkv: Linear
    /// Output projection H dk -> D, no bias.
    public let out: Linear

    /// Registers `<name>.qkv.weight [3 H dk, D]` and `<name>.out.weight
    /// [D, H dk]` (U(-1/sqrt(fan in), 1/sqrt(fan in))) in `store`.
    ///
    /// - Throws: `FWError.invalidArgument` for a size below 1.
    public init(modelSize: Int, heads: Int, headSize: Int, name: String,
                store: inout ParameterStore, rng: inout SeededRNG) throws {
        for (label, value) in [("modelSize", modelSize), ("heads", heads), ("headSize", headSize)] where value < 1 {
            throw FWError.invalidArgument("SoftmaxAttentionLayer: \(label) must be at least 1, got \(value)")
        }
        self.modelSize = modelSize
        self.heads = heads
        self.headSize = headSize
        self.qkv = Linear(modelSize, 3 * heads * headSize, bias: false, name: "\(name).qkv", store: &store, rng: &rng)
        self.out = Linear(heads * headSize, modelSize, bias: false, name: "\(name).out", store: &store, rng: &rng)
    }

    /// Everything the backward reads, kept by the forward.
    public struct Cache: Sendable {
        /// Batch size and sequence length of the forward.
        public let B: Int, T: Int
        /// The input x, `[B, T, D]`.
        let x: Tensor
        /// Q, K, V per head, `[B, H, T, dk]` each (unscaled).
        let q: [Float], k: [Float], v: [Float]
        /// The attention weights P, `[B, H, T, T]` (zero above the diagonal).
        let probabilities: [Float]
        /// The merged head outputs, `[B*T, H*dk]` (the output projection's input).
        let merged: [Float]
    }

    /// y `[B, T, D]` for x `[B, T, D]`. `training` and `rng` are unused (no
    /// dropout); they are there so the layer has `FastWeightLayer`'s API.
    ///
    /// - Throws: `FWError.shapeMismatch` naming "x" unless x is `[B, T, D]`.
    public func forward(_ x: Tensor, store: ParameterStore, training: Bool,
                        rng: inout SeededRNG) throws -> (y: Tensor, cache: SoftmaxAttentionLayer.Cache) {
        let (B, T) = try AttentionHeads.checkSequence(x, "x", modelSize: modelSize)
        let (D, H, dk) = (modelSize, heads, headSize)
        let n = B * T, P = 3 * H * dk
        let scale = 1 / Float(dk).squareRoot()
        if n == 0 {
            // An empty batch or sequence: nothing to attend to.
            return (Tensor(shape: [B, T, D]), Cache(B: B, T: T, x: x, q: [], k: [], v: [], probabilities: [], merged: []))
        }

        // 1. Fused projection and split into heads, [B, H, T, dk] each.
        var p = [Float](repeating: 0, count: n * P)
        var q = [Float](repeating: 0, count: n * H * dk)
        var k = q, v = q
        store.withValues { w in
            Linear.forward(out: &p, inp: x.storage, weight: w + qkv.weight.offset, bias: nil, n: n, inputs: D, outputs: P)
        }
        AttentionHeads.gather(&q, from: p, width: P, column: 0, B: B, H: H, T: T, d: dk)
        AttentionHeads.gather(&k, from: p, width: P, column: H * dk, B: B, H: H, T: T, d: dk)
        AttentionHeads.gather(&v, from: p, width: P, column: 2 * H * dk, B: B, H: H, T: T, d: dk)

        // 2. Per (b, h): P = softmax(mask(Q K^T / sqrt(dk))), O = P V.
        var probabilities = [Float](repeating: 0, count: B * H * T * T)
        var heads = [Float](repeating: 0, count: n * H * dk)
        q.withUnsafeBufferPointer { qp in
        k.withUnsafeBufferPointer { kp in
        v.withUnsafeBufferPointer { vp in
        probabilities.withUnsafeMutableBufferPointer { pp in
        heads.withUnsafeMutableBufferPointer { op in
            let ptrs = UncheckedSendable((qp, kp, vp, pp, op))
            ThreadOwnership.forEachSequence(B * H) { s in
                let (qp, kp, vp, pp, op) = ptrs.value
                let Q = qp.baseAddress! + s * T * dk, K = kp.baseAddress! + s * T * dk, V = vp.baseAddress! + s * T * dk
                let Pm = pp.baseAddress! + s * T * T, O = op.baseAddress! + s * T * dk
                // S = Q K^T / sqrt(dk)   [T, T]
                BLAS.sgemm(.none, .transpose, m: T, n: T, k: dk, alpha: scale, a: Q, lda: dk, b: K, ldb: dk,
                           beta: 0, c: Pm, ldc: T)
                // Causal row softmax over j <= i; entries j > i are exactly 0.
                for i in 0..<T {
                    let row = Pm + i * T
                    RowSoftmax.forward(row, count: i + 1)
                    for j in (i + 1)..<T { row[j] = 0 }
                }
                // O = P V   [T, dk]
                BLAS.sgemm(.none, .none, m: T, n: dk, k: T, alpha: 1, a: Pm, lda: T, b: V, ldb: dk,
                           beta: 0, c: O, ldc: dk)
            }
        }}}}}

        // 3. Merge heads, [B, H, T, dk] -> [B*T, H*dk], and project back to D.
        var merged = [Float](repeating: 0, count: n * H * dk)
        var y = Tensor(shape: [B, T, D])
        AttentionHeads.scatter(&merged, width: H * dk, column: 0, from: heads, B: B, H: H, T: T, d: dk)
        store.withValues { w in
            y.withUnsafeMutableBufferPointer { yp in
                Linear.forward(out: yp.baseAddress!, inp: merged, weight: w + out.weight.offset, bias: nil,
                               n: n, inputs: H * dk, outputs: D)
            }
        }
        return (y, Cache(B: B, T: T, x: x, q: q, k: k, v: v, probabilities: probabilities, merged: merged))
    }
}
