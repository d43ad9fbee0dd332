#if canImport(Glibc)
import Glibc
#endif
import FWCore
import FWOps

/// The result of `SyntheticRetrievalModel.forward`: outputs, loss, and what
/// the backward needs.
public struct SyntheticForward: Sendable {
    /// y `[Q, S]`, one row per query of the batch.
    public var y: Tensor
    /// mean over queries of 0.5 * ||onehot(target) - y||^2.
    public var loss: Float
    /// Queries whose argmax_j y_j is the target.
    public var correct: Int
    /// Queries in the batch.
    public var count: Int { y.shape[0] }
    let cache: SyntheticCache
}

/// Saved activations (row-major `[rows, width]` buffers).
struct SyntheticCache: Sendable {
    let batch: SyntheticRetrievalTask.Batch
    let length: Int
    let omega: Tensor?
    /// K, Q before phi (already scaled for favor): `[N L, d]`, `[Q, d]`.
    let kpre: [Float], qpre: [Float]
    /// phi(K) `[N L, p]` (softmax: K itself; delta: unused) and q' `[Q, p]`.
    let kf: [Float], qf: [Float]
    /// Softmax and sum rule: the read weights per query over its sequence's
    /// L pairs, `[Q, L]`; the sum rule's denominators z . q' + 1e-6, `[Q]`.
    let weights: [Float], denominators: [Float]
    /// Delta rule: beta `[N L]`, final states `[N, S, p]` and the op's cache.
    let beta: [Float], states: [Float]
    let opCache: FWPCache?
}

extension SyntheticRetrievalModel {
    /// Runs the model on `batch` (N sequences of L pairs and their queries).
    ///
    /// - Parameters:
    ///   - omega: FAVOR+'s Omega `[M, d]` (required exactly when phi is favor;
    ///     `drawProjection(rng:)` draws one).
    ///   - saveForBackward: keep what `backward` needs.
    /// - Returns: y `[Q, S]`, the loss and the number of correct argmax reads.
    public func forward(_ batch: SyntheticRetrievalTask.Batch, store: ParameterStore,
                        omega: Tensor? = nil, saveForBackward: Bool = true) throws -> SyntheticForward {
        let (S, d, e) = (size, keySize, embedding)
        let N = batch.count, Q = batch.queryCount
        guard N >= 1, batch.keys.count % N == 0, batch.values.count == batch.keys.count else {
            throw FWError.invalidArgument("synthetic batch: \(batch.keys.count) keys and \(batch.values.count) values for \(N) sequences")
        }
        let L = batch.keys.count / N
        for (name, ids) in [("keys", batch.keys), ("values", batch.values), ("queries", batch.queries), ("targets", batch.targets)] {
            if let bad = ids.first(where: { $0 < 0 || Int($0) >= S }) {
                throw FWError.invalidArgument("synthetic batch: \(name) id \(bad) is outside 0..<\(S) (S = \(S))")
            }
        }
        // The op's own omega check (one validator for the op, the layers and this model).
        if let phi = reader.featureMap {
            try phi.checkOmega(omega, inputSize: d)
        } else if omega != nil {
            throw FWError.invalidArgument("omega is for the favor feature map only, not \(reader)")
        }

        // 1. Lookup tables: P_K = E W_k,e^T, P_Q = E W_q^T [S, d]; p_b = E w_b,e [S].
        var pk = [Float](repeating: 0, count: S * d)
        var pq = [Float](repeating: 0, count: S * d)
        var pb = [Float](repeating: 0, count: betaWeight == nil ? 0 : S)
        store.withValues { p in
            BLAS.sgemm(.none, .transpose, m: S, n: d, k: e, alpha: 1, a: p + keyEmbedding.offset, lda: e,
                       b: p + keyWeight.offset, ldb: e, beta: 0, c: &pk, ldc: d)
            BLAS.sgemm(.none, .transpose, m: S, n: d, k: e, alpha: 1, a: p + keyEmbedding.offset, lda: e,
                       b: p + queryWeight.offset, ldb: e, beta: 0, c: &pq, ldc: d)
            if let w = betaWeight {
                BLAS.sgemv(.none, m: S, n: e, alpha: 1, a: p + keyEmbedding.offset, lda: e,
                           x: p + w.offset, beta: 0, y: &pb)
            }
        }

        // 2. K_t = s (P_K[k_t] + table[v_t] + b_k), Q = s (P_Q[q] + b_q), s = d^(-1/4) for favor.
        let scale = inputScale
        var kpre = [Float](repeating: 0, count: N * L * d)
        var qpre = [Float](repeating: 0, count: Q * d)
        var betaPre = [Float](repeating: 0, count: betaWeight == nil ? 0 : N * L)
        store.withValues { p in
            let table = p + keyValueTable.offset, bk = p + keyBias.offset, bq = p + queryBias.offset
            for r in 0..<(N * L) {
                let k = Int(batch.keys[r]), v = Int(batch.values[r])
                for c in 0..<d { kpre[r * d + c] = scale * (pk[k * d + c] + table[v * d + c] + bk[c]) }
            }
            for j in 0..<Q {
                let q = Int(batch.queries[j])
                for c in 0..<d { qpre[j * d + c] = scale * (pq[q * d + c] + bq[c]) }
            }
            if let bt = betaValueTable, let bb = betaBias {
                for r in 0..<(N * L) {
                    betaPre[r] = pb[Int(batch.keys[r])] + p[bt.offset + Int(batch.values[r])] + p[bb.offset]
                }
            }
        }

        // 3. The read.
        var y = Tensor(shape: [Q, S])
        let cache: SyntheticCache
        switch reader {
        case .softmax, .sumRule:
            cache = scoreRead(batch: batch, L: L, kpre: kpre, qpre: qpre, omega: omega, y: &y)
        case .deltaRule:
            cache = try deltaRead(batch: batch, L: L, kpre: kpre, qpre: qpre, betaPre: betaPre, omega: omega,
                                  saveForBackward: saveForBackward, y: &y)
        }

        // 4. loss = mean_j 0.5 ||onehot(target_j) - y_j||^2; accuracy by argmax.
        var total = 0.0
        var correct = 0
        for j in 0..<Q {
            let row = j * S, target = Int(batch.targets[j])
            var best = 0
            for c in 0..<S {
                let diff = Double(y.storage[row + c]) - (c == target ? 1 : 0)
                total += 0.5 * diff * diff
                if y.storage[row + c] > y.storage[row + best] { best = c }
            }
            if best == target { correct += 1 }
        }
        let loss = Float(total / Double(max(Q, 1)))
        return SyntheticForward(y: y, loss: loss, correct: correct, cache: cache)
    }

    /// Softmax attention or the sum rule's read, per sequence i with queries
    /// j and pairs t (A = q'_j . k'_t):
    /// ```
    /// softmax:  w_jt = softmax_t(A_jt / sqrt(d))         (phi = identity)
    /// sum rule: w_jt = A_jt / (sum_t A_jt + 1e-6)        (= S_L q' / (z_L . q' + 1e-6))
    /// y_j = sum_t w_jt onehot(v_t)
    /// ```
    /// The sum rule's final fast weights S_L = sum_t v_t k'_t^T are never
    /// formed: one query reads them as sum_t v_t (k'_t . q'), O(L p) instead
    /// of O(L p S) (the tests check this against the op's S_L).
    private func scoreRead(batch: SyntheticRetrievalTask.Batch, L: Int, kpre: [Float], qpre: [Float],
                           omega: Tensor?, y: inout Tensor) -> SyntheticCache {
        let (S, d) = (size, keySize)
        let N = batch.count, Q = batch.queryCount
        let p = dotSize
        var kf = kpre, qf = qpre
        if let phi = reader.featureMap {
            kf = [Float](repeating: 0, count: N * L * p)
            qf = [Float](repeating: 0, count: Q * p)
            Self.applyPhi(phi, out: &kf, x: kpre, rows: N * L, d: d, omega: omega, normalization: .none)
            Self.applyPhi(phi, out: &qf, x: qpre, rows: Q, d: d, omega: omega, normalization: .none)
        }
        var weights = [Float](repeating: 0, count: Q * L)
        var denominators = [Float](repeating: 1, count: Q)
        let softmax = reader == .softmax
        let invSqrtD = 1 / Float(d).squareRoot()
        kf.withUnsafeBufferPointer { kp in
        qf.withUnsafeBufferPointer { qp in
        weights.withUnsafeMutableBufferPointer { wp in
        denominators.withUnsafeMutableBufferPointer { dp in
        y.withUnsafeMutableBufferPointer { yp in
            let ptrs = UncheckedSendable((kp, qp, wp, dp, yp))
            ThreadOwnership.forEachSequence(N) { i in
                let (kp, qp, wp, dp, yp) = ptrs.value
                let j0 = batch.queryStart[i], nq = batch.queryStart[i + 1] - j0
                if nq == 0 { return }
                let w = wp.baseAddress! + j0 * L
                // A [nq, L] = Q'_i K'_i^T
                BLAS.sgemm(.none, .transpose, m: nq, n: L, k: p, alpha: 1, a: qp.baseAddress! + j0 * p, lda: p,
                           b: kp.baseAddress! + i * L * p, ldb: p, beta: 0, c: w, ldc: L)
                for j in 0..<nq {
                    let row = w + j * L
                    if softmax {
                        for t in 0..<L { row[t] *= invSqrtD }
                        RowSoftmax.forward(row, count: L)
                    } else {
                        var z: Float = 0
                        for t in 0..<L { z += row[t] }
                        let den = z + 1e-6
                        dp[j0 + j] = den
                        for t in 0..<L { row[t] /= den }
                    }
                    let out = yp.baseAddress! + (j0 + j) * S
                    for t in 0..<L { out[Int(batch.values[i * L + t])] += row[t] }
                }
            }
        }}}}}
        return SyntheticCache(batch: batch, length: L, omega: omega, kpre: kpre, qpre: qpre, kf: kf, qf: qf,
                              weights: weights, denominators: denominators, beta: [], states: [], opCache: nil)
    }

    /// The delta rule through the engine's op: S_L from the N sequences'
    /// writes (k_t, v_t = onehot, beta_t), then y_j = S_L q'_j for each of
    /// the sequence's queries, q' = phi(Q) / sum(phi(Q)).
    private func deltaRead(batch: SyntheticRetrievalTask.Batch, L: Int, kpre: [Float], qpre: [Float],
                           betaPre: [Float], omega: Tensor?, saveForBackward: Bool,
                           y: inout Tensor) throws -> SyntheticCache {
        let (S, d) = (size, keySize)
        let N = batch.count, Q = batch.queryCount
        let p = dotSize
        let beta = betaPre.map { 1 / (1 + expf(-$0)) }
        var onehot = [Float](repeating: 0, count: N * L * S)
        for r in 0..<(N * L) { onehot[r * S + Int(batch.values[r])] = 1 }
        let k = Tensor(shape: [N, 1, L, d], storage: kpre)
        // The op's per-step outputs are not used; its queries are the keys.
        let result = try op!.forward(q: k, k: k, v: Tensor(shape: [N, 1, L, S], storage: onehot),
                                     beta: Tensor(shape: [N, 1, L], storage: beta), omega: omega,
                                     saveForBackward: saveForBackward)
        var qf = [Float](repeating: 0, count: Q * p)
        Self.applyPhi(reader.featureMap!, out: &qf, x: qpre, rows: Q, d: d, omega: omega, normalization: .sum)
        // Y_i [nq, S] = Q'_i [nq, p] S_i^T, S_i [S, p].
        let states = result.state.storage
        states.withUnsafeBufferPointer { sp in
        qf.withUnsafeBufferPointer { qp in
        y.withUnsafeMutableBufferPointer { yp in
            let ptrs = UncheckedSendable((sp, qp, yp))
            ThreadOwnership.forEachSequence(N) { i in
                let (sp, qp, yp) = ptrs.value
                let j0 = batch.queryStart[i], nq = batch.queryStart[i + 1] - j0
                if nq == 0 { return }
                BLAS.sgemm(.none, .transpose, m: nq, n: S, k: p, alpha: 1, a: qp.baseAddress! + j0 * p, lda: p,
                           b: sp.baseAddress! + i * S * p, ldb: p, beta: 0, c: yp.baseAddress! + j0 * S, ldc: S)
            }
        }}}
        return SyntheticCache(batch: batch, length: L, omega: omega, kpre: kpre, qpre: qpre, kf: [], qf: qf,
                              weights: [], denominators: [], beta: beta, states: states, opCache: result.cache)
    }

    /// `out[rows, p] = n(phi(x[rows, d]))`.
    static func applyPhi(_ phi: FeatureMap, out: inout [Float], x: [Float], rows: Int, d: Int,
                         omega: Tensor?, normalization: FeatureNormalization) {
        if rows == 0 { return }
        x.withUnsafeBufferPointer { xp in
        out.withUnsafeMutableBufferPointer { op in
        withOptionalStorage(omega) { wp in
            phi.forward(out: op.baseAddress!, x: xp.baseAddress!, rows: rows, d: d, omega: wp, normalization: normalization)
        }}}
    }

    /// Calls `body` with Omega's storage, or nil when there is no Omega.
    static func withOptionalStorage<R>(_ omega: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let omega else { return body(nil) }
        return omega.storage.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
