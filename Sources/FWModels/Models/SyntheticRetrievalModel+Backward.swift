import FWCore
import FWOps

extension SyntheticRetrievalModel {
    /// Accumulates dL/dparameters into `store.gradients` for the loss of
    /// `forward` (the mean over queries of 0.5 ||onehot(target) - y||^2),
    /// scaled by `dloss`.
    ///
    /// ```
    /// dy_j = (y_j - onehot(target_j)) / Q
    /// softmax:  dw_jt = dy_j[v_t];  dA_jt = w_jt (dw_jt - sum_u w_ju dw_ju) / sqrt(d)
    /// sum rule: dA_jt = (dw_jt - sum_u w_ju dw_ju) / (z . q'_j + 1e-6)
    ///           dq'_j = sum_t dA_jt k'_t,  dk'_t = sum_j dA_jt q'_j       (sgemm per sequence)
    /// delta:    dS_L = sum_j dy_j q'_j^T,  dq'_j = S_L^T dy_j, then the op's backward
    ///           gives dk_t, dbeta_t; dbeta_pre = dbeta beta (1 - beta)
    /// dK, dQ through phi (and n), times d^(-1/4) for favor, then into the tables:
    ///   dtable[v_t] += dK_t, db_k += dK_t, dP_K[k_t] += dK_t,
    ///   dW_k,e += dP_K^T E,  dE += dP_K W_k,e   (and the same for Q and beta)
    /// ```
    public func backward(_ forward: SyntheticForward, store: inout ParameterStore, dloss: Float = 1) throws {
        let c = forward.cache
        let batch = c.batch
        let (S, d, e) = (size, keySize, embedding)
        let N = batch.count, Q = batch.queryCount, L = c.length
        if Q == 0 { return }

        // dy = dloss (y - onehot(target)) / Q.
        var dy = [Float](repeating: 0, count: Q * S)
        let g = dloss / Float(Q)
        for j in 0..<Q {
            for col in 0..<S { dy[j * S + col] = g * forward.y.storage[j * S + col] }
            dy[j * S + Int(batch.targets[j])] -= g
        }

        var dk = [Float](repeating: 0, count: N * L * d)
        var dq = [Float](repeating: 0, count: Q * d)
        var dbetaPre = [Float]()
        switch reader {
        case .softmax, .sumRule:
            scoreBackward(c, dy: dy, dk: &dk, dq: &dq)
        case .deltaRule:
            dbetaPre = try deltaBackward(c, dy: dy, dk: &dk, dq: &dq)
        }
        let scale = inputScale
        if scale != 1 {
            for i in dk.indices { dk[i] *= scale }
            for i in dq.indices { dq[i] *= scale }
        }

        // Into the tables and projections.
        var dpk = [Float](repeating: 0, count: S * d)
        var dpq = [Float](repeating: 0, count: S * d)
        var dpb = [Float](repeating: 0, count: dbetaPre.isEmpty ? 0 : S)
        store.withPointers { p in
            let dtable = p.gradient(keyValueTable), dbk = p.gradient(keyBias), dbq = p.gradient(queryBias)
            for r in 0..<(N * L) {
                let k = Int(batch.keys[r]), v = Int(batch.values[r])
                for col in 0..<d {
                    let grad = dk[r * d + col]
                    dtable[v * d + col] += grad
                    dbk[col] += grad
                    dpk[k * d + col] += grad
                }
            }
            for j in 0..<Q {
                let q = Int(batch.queries[j])
                for col in 0..<d {
                    dbq[col] += dq[j * d + col]
                    dpq[q * d + col] += dq[j * d + col]
                }
            }
            let E = p.value(keyEmbedding), dE = p.gradient(keyEmbedding)
            // dW_k,e [d, e] += dP_K^T E;  dE [S, e] += dP_K W_k,e.
            BLAS.sgemm(.transpose, .none, m: d, n: e, k: S, alpha: 1, a: dpk, lda: d, b: E, ldb: e,
                       beta: 1, c: p.gradient(keyWeight), ldc: e)
            BLAS.sgemm(.none, .none, m: S, n: e, k: d, alpha: 1, a: dpk, lda: d, b: p.value(keyWeight), ldb: e,
                       beta: 1, c: dE, ldc: e)
            BLAS.sgemm(.transpose, .none, m: d, n: e, k: S, alpha: 1, a: dpq, lda: d, b: E, ldb: e,
                       beta: 1, c: p.gradient(queryWeight), ldc: e)
            BLAS.sgemm(.none, .none, m: S, n: e, k: d, alpha: 1, a: dpq, lda: d, b: p.value(queryWeight), ldb: e,
                       beta: 1, c: dE, ldc: e)
            if let bt = betaValueTable, let bw = betaWeight, let bb = betaBias {
                for r in 0..<(N * L) {
                    let grad = dbetaPre[r]
                    p.gradient(bt)[Int(batch.values[r])] += grad
                    p.gradient(bb)[0] += grad
                    dpb[Int(batch.keys[r])] += grad
                }
                // dw_b,e [e] += E^T dp_b;  dE += dp_b w_b,e^T.
                BLAS.sgemv(.transpose, m: S, n: e, alpha: 1, a: E, lda: e, x: dpb, beta: 1, y: p.gradient(bw))
                BLAS.sger(m: S, n: e, alpha: 1, x: dpb, y: p.value(bw), a: dE, lda: e)
            }
        }
    }

    /// dK `[N L, d]`, dQ `[Q, d]` (before the favor scale) for softmax and the sum rule.
    private func scoreBackward(_ c: SyntheticCache, dy: [Float], dk: inout [Float], dq: inout [Float]) {
        let batch = c.batch
        let (S, d) = (size, keySize)
        let N = batch.count, Q = batch.queryCount, L = c.length
        let p = dotSize
        let softmax = reader == .softmax
        let invSqrtD = 1 / Float(d).squareRoot()
        var dkf = [Float](repeating: 0, count: N * L * p)
        var dqf = [Float](repeating: 0, count: Q * p)
        var dA = [Float](repeating: 0, count: Q * L)
        c.kf.withUnsafeBufferPointer { kp in
        c.qf.withUnsafeBufferPointer { qp in
        c.weights.withUnsafeBufferPointer { wp in
        dy.withUnsafeBufferPointer { dyp in
        dA.withUnsafeMutableBufferPointer { dap in
        dkf.withUnsafeMutableBufferPointer { dkp in
        dqf.withUnsafeMutableBufferPointer { dqp in
            let ptrs = UncheckedSendable((kp, qp, wp, dyp, dap, dkp, dqp))
            ThreadOwnership.forEachSequence(N) { i in
                let (kp, qp, wp, dyp, dap, dkp, dqp) = ptrs.value
                let j0 = batch.queryStart[i], nq = batch.queryStart[i + 1] - j0
                if nq == 0 { return }
                for j in 0..<nq {
                    let w = wp.baseAddress! + (j0 + j) * L
                    let da = dap.baseAddress! + (j0 + j) * L
                    let dyRow = dyp.baseAddress! + (j0 + j) * S
                    // dw_t = dy[v_t], then back through the weights' normalisation.
                    for t in 0..<L { da[t] = dyRow[Int(batch.values[i * L + t])] }
                    if softmax {
                        RowSoftmax.backward(da, probabilities: w, count: L)
                        for t in 0..<L { da[t] *= invSqrtD }
                    } else {
                        var dot: Float = 0
                        for t in 0..<L { dot += w[t] * da[t] }
                        let den = c.denominators[j0 + j]
                        for t in 0..<L { da[t] = (da[t] - dot) / den }
                    }
                }
                let da = dap.baseAddress! + j0 * L
                // dQ'_i [nq, p] = dA K'_i;  dK'_i [L, p] = dA^T Q'_i.
                BLAS.sgemm(.none, .none, m: nq, n: p, k: L, alpha: 1, a: da, lda: L,
                           b: kp.baseAddress! + i * L * p, ldb: p, beta: 0, c: dqp.baseAddress! + j0 * p, ldc: p)
                BLAS.sgemm(.transpose, .none, m: L, n: p, k: nq, alpha: 1, a: da, lda: L,
                           b: qp.baseAddress! + j0 * p, ldb: p, beta: 0, c: dkp.baseAddress! + i * L * p, ldc: p)
            }
        }}}}}}}
        if let phi = reader.featureMap {
            Self.phiBackward(phi, dx: &dk, dout: dkf, x: c.kpre, out: c.kf, rows: N * L, d: d, omega: c.omega, normalization: .none)
            Self.phiBackward(phi, dx: &dq, dout: dqf, x: c.qpre, out: c.qf, rows: Q, d: d, omega: c.omega, normalization: .none)
        } else {
            dk = dkf
            dq = dqf
        }
    }

    /// dK, dQ (before the favor scale); returns dL/d(beta pre-activation) `[N L]`.
    private func deltaBackward(_ c: SyntheticCache, dy: [Float], dk: inout [Float], dq: inout [Float]) throws -> [Float] {
        guard let opCache = c.opCache else {
            throw FWError.invalidArgument("SyntheticRetrievalModel.backward: the forward ran without saveForBackward")
        }
        let batch = c.batch
        let (S, d) = (size, keySize)
        let N = batch.count, Q = batch.queryCount, L = c.length
        let p = dotSize
        var dstates = [Float](repeating: 0, count: N * S * p)
        var dqf = [Float](repeating: 0, count: Q * p)
        c.states.withUnsafeBufferPointer { sp in
        c.qf.withUnsafeBufferPointer { qp in
        dy.withUnsafeBufferPointer { dyp in
        dstates.withUnsafeMutableBufferPointer { dsp in
        dqf.withUnsafeMutableBufferPointer { dqp in
            let ptrs = UncheckedSendable((sp, qp, dyp, dsp, dqp))
            ThreadOwnership.forEachSequence(N) { i in
                let (sp, qp, dyp, dsp, dqp) = ptrs.value
                let j0 = batch.queryStart[i], nq = batch.queryStart[i + 1] - j0
                if nq == 0 { return }
                // dS_i [S, p] = dY_i^T Q'_i;  dQ'_i [nq, p] = dY_i S_i.
                BLAS.sgemm(.transpose, .none, m: S, n: p, k: nq, alpha: 1, a: dyp.baseAddress! + j0 * S, lda: S,
                           b: qp.baseAddress! + j0 * p, ldb: p, beta: 0, c: dsp.baseAddress! + i * S * p, ldc: p)
                BLAS.sgemm(.none, .none, m: nq, n: p, k: S, alpha: 1, a: dyp.baseAddress! + j0 * S, lda: S,
                           b: sp.baseAddress! + i * S * p, ldb: p, beta: 0, c: dqp.baseAddress! + j0 * p, ldc: p)
            }
        }}}}}
        let grads = try FastWeightProgrammer.backward(dy: Tensor(shape: [N, 1, L, S]),
                                                      dstate: Tensor(shape: [N, 1, S, p], storage: dstates),
                                                      cache: opCache)
        // The op's queries were the keys too, but with dy = 0 their gradient is 0;
        // add it anyway so that the chain stays exact.
        for i in dk.indices { dk[i] = grads.dk.storage[i] + grads.dq.storage[i] }
        Self.phiBackward(reader.featureMap!, dx: &dq, dout: dqf, x: c.qpre, out: c.qf, rows: Q, d: d,
                         omega: c.omega, normalization: .sum)
        let dbeta = grads.dbeta!.storage
        return (0..<(N * L)).map { dbeta[$0] * c.beta[$0] * (1 - c.beta[$0]) }
    }

    /// `dx[rows, d] = dL/dx` from `dout = dL/d n(phi(x))`.
    static func phiBackward(_ phi: FeatureMap, dx: inout [Float], dout: [Float], x: [Float], out: [Float],
                            rows: Int, d: Int, omega: Tensor?, normalization: FeatureNormalization) {
        if rows == 0 { return }
        dx.withUnsafeMutableBufferPointer { dxp in
        dout.withUnsafeBufferPointer { gp in
        x.withUnsafeBufferPointer { xp in
        out.withUnsafeBufferPointer { op in
        withOptionalStorage(omega) { wp in
            phi.backward(dx: dxp.baseAddress!, dout: gp.baseAddress!, x: xp.baseAddress!, out: op.baseAddress!,
                         rows: rows, d: d, omega: wp, normalization: normalization)
        }}}}}
    }
}
