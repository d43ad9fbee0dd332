import FWCore
import FWOps

extension CarriedFastWeightLayer {
    /// y `[B, T, D]` and the state after the segment `[B, H, dk (+ 1), Dphi]`
    /// for x `[B, T, D]` (B, T >= 1), starting from `initialState` (zero, i.e.
    /// S_0 = 0 and z_0 = 0, when nil). `omega` is `[m, dk]` for favor (see
    /// `omega(training:rng:)`), nil otherwise. Without `saveForBackward` no
    /// cache is returned (and the op saves nothing).
    ///
    /// - Throws: `FWError.shapeMismatch` naming "x", "omega" or "initial state";
    ///   `FWError.invalidArgument` for a missing or unexpected Omega;
    ///   `FWError.nonFinite` for a NaN/Inf input (the op refuses them).
    public func forward(_ x: Tensor, store: ParameterStore, omega: Tensor?, initialState: Tensor?,
                        saveForBackward: Bool = true) throws -> (y: Tensor, state: Tensor, cache: Cache?) {
        let (D, H, dk, P) = (modelSize, heads, headSize, projectionSize)
        guard x.rank == 3, x.shape[2] == D, x.shape[0] >= 1, x.shape[1] >= 1 else {
            throw FWError.shapeMismatch(tensor: "x", expected: "[B, T, D] = [B, T, \(D)] with B, T >= 1", got: x.shape)
        }
        let (B, T) = (x.shape[0], x.shape[1])
        try checkOmega(omega)
        if let s0 = initialState { try s0.checkShape("initial state", stateShape(batch: B)) }
        let n = B * T, dvi = stateRows

        // 1. The fused projection p = x Wqkv^T, [B*T, P].
        var p = [Float].uninitialized(count: n * P)
        store.withValues { w in
            Linear.forward(out: &p, inp: x.storage, weight: w + qkv.weight.offset, bias: nil, n: n, inputs: D, outputs: P)
        }
        // 2. Split into heads: q, k, v' = v (or [v; 1]) [B, H, T, dvi], beta = sigmoid(.).
        var q = Tensor.uninitialized(shape: [B, H, T, dk])
        var k = Tensor.uninitialized(shape: [B, H, T, dk])
        var v = Tensor.uninitialized(shape: [B, H, T, dvi])
        var beta: Tensor? = rule.needs(.beta) ? Tensor.uninitialized(shape: [B, H, T]) : nil
        p.withUnsafeBufferPointer { pp in
            let rows = pp.baseAddress!
            q.withUnsafeMutableBufferPointer { AttentionHeads.gather($0.baseAddress!, from: rows, width: P, column: 0, B: B, H: H, T: T, d: dk) }
            k.withUnsafeMutableBufferPointer { AttentionHeads.gather($0.baseAddress!, from: rows, width: P, column: H * dk, B: B, H: H, T: T, d: dk) }
            v.withUnsafeMutableBufferPointer { vp in
                for b in 0..<B {
                    for h in 0..<H {
                        for t in 0..<T {
                            let src = rows + (b * T + t) * P + 2 * H * dk + h * dk
                            let dst = vp.baseAddress! + ((b * H + h) * T + t) * dvi
                            for i in 0..<dk { dst[i] = src[i] }
                            if denominator { dst[dk] = 1 }      // the ones row that accumulates z
                        }
                    }
                }
            }
            if beta != nil {
                beta!.withUnsafeMutableBufferPointer { bp in
                    AttentionHeads.gather(bp.baseAddress!, from: rows, width: P, column: 3 * H * dk, B: B, H: H, T: T, d: 1)
                    VectorExp.logistic(out: bp.baseAddress!, x: bp.baseAddress!, count: bp.count)
                }
            }
        }

        // 3. The recurrence over the B*H sequences from the carried [S; z^T].
        let r = try op.forward(q: q, k: k, v: v, beta: beta, omega: omega, initialState: initialState,
                               saveForBackward: saveForBackward)

        // 4. o = S q' (/ (z . q' + eps)), merged = c o in [B*T, H*dk], y = merged Wout^T.
        var merged = [Float].uninitialized(count: n * H * dk)
        let c = outputScale, eps = CarriedFastWeightLayer.denominatorEpsilon
        r.y.withUnsafeBufferPointer { yp in
            merged.withUnsafeMutableBufferPointer { mp in
                for b in 0..<B {
                    for h in 0..<H {
                        for t in 0..<T {
                            let src = yp.baseAddress! + ((b * H + h) * T + t) * dvi
                            let dst = mp.baseAddress! + (b * T + t) * H * dk + h * dk
                            let f = denominator ? c / (src[dk] + eps) : c
                            for i in 0..<dk { dst[i] = f * src[i] }
                        }
                    }
                }
            }
        }
        var y = Tensor.uninitialized(shape: [B, T, D])
        store.withValues { w in
            y.withUnsafeMutableBufferPointer { yp in
                Linear.forward(out: yp.baseAddress!, inp: merged, weight: w + out.weight.offset, bias: nil,
                               n: n, inputs: H * dk, outputs: D)
            }
        }
        let cache = r.cache.map {
            Cache(B: B, T: T, x: x, beta: beta?.storage ?? [], merged: merged, fwp: $0,
                  numerators: denominator ? r.y.storage : [], omega: omega)
        }
        return (y, r.state, cache)
    }

    /// dL/dx `[B, T, D]` and dL/d(initial state) `[B, H, dk (+ 1), Dphi]` from
    /// dL/dy `[B, T, D]` and dL/d(final state) (zero when nil), accumulating
    /// dL/dWqkv and dL/dWout into `store.gradients`. In the reverse order of
    /// the forward:
    ///
    /// ```
    /// dmerged = dy Wout,  dWout += dy^T merged;   do = c split(dmerged)
    /// with the denominator, o = a / den (a = S q', den = z . q' + eps):
    ///     da = do / den,  dden = -(do . o) / den     (the op's output row dk gets dden)
    /// dq, dk, dv', dbeta, dS_0 = FWP backward     (dv' row dk belongs to the constant ones: dropped)
    /// dp = [dq | dk | dv | dbeta beta (1 - beta)],  dx = dp Wqkv,  dWqkv += dp^T x
    /// ```
    ///
    /// - Throws: `FWError.shapeMismatch` naming "dy" or "dstate".
    public func backward(_ dy: Tensor, dstate: Tensor?, cache: Cache,
                         store: inout ParameterStore) throws -> (dx: Tensor, dinitialState: Tensor) {
        let (B, T) = (cache.B, cache.T)
        let (D, H, dk, P) = (modelSize, heads, headSize, projectionSize)
        try dy.checkShape("dy", [B, T, D])
        if let dstate { try dstate.checkShape("dstate", stateShape(batch: B)) }
        let n = B * T, dvi = stateRows

        // 1. Output projection.
        var dmerged = [Float](repeating: 0, count: n * H * dk)
        store.withPointers { w in
            Linear.backward(dinp: &dmerged, dweight: w.gradient(out.weight), dbias: nil,
                            dout: dy.storage, inp: cache.merged, weight: w.value(out.weight),
                            n: n, inputs: H * dk, outputs: D)
        }
        // 2. Back through c and the division, into the op's output layout [B, H, T, dvi].
        var dyInner = Tensor.uninitialized(shape: [B, H, T, dvi])
        let c = outputScale, eps = CarriedFastWeightLayer.denominatorEpsilon
        dyInner.withUnsafeMutableBufferPointer { gp in
        cache.numerators.withUnsafeBufferPointer { np in
        dmerged.withUnsafeBufferPointer { dmp in
                for b in 0..<B {
                    for h in 0..<H {
                        for t in 0..<T {
                            let src = dmp.baseAddress! + (b * T + t) * H * dk + h * dk
                            let row = (b * H + h) * T + t
                            let dst = gp.baseAddress! + row * dvi
                            if denominator {
                                let a = np.baseAddress! + row * dvi
                                let den = a[dk] + eps
                                var dot: Float = 0       // do . o = sum_i do_i a_i / den
                                for i in 0..<dk {
                                    let g = c * src[i]
                                    dst[i] = g / den
                                    dot += g * a[i]
                                }
                                dst[dk] = -dot / (den * den)
                            } else {
                                for i in 0..<dk { dst[i] = c * src[i] }
                            }
                        }
                    }
                }
        }}}
        // 3. The op's backward.
        let g = try FastWeightProgrammer.backward(dy: dyInner, dstate: dstate, cache: cache.fwp)

        // 4. Back into the fused layout and through Wqkv.
        var dp = [Float].uninitialized(count: n * P)
        dp.withUnsafeMutableBufferPointer { dpp in
            let rows = dpp.baseAddress!
            g.dq.withUnsafeBufferPointer { AttentionHeads.scatter(rows, width: P, column: 0, from: $0.baseAddress!, B: B, H: H, T: T, d: dk) }
            g.dk.withUnsafeBufferPointer { AttentionHeads.scatter(rows, width: P, column: H * dk, from: $0.baseAddress!, B: B, H: H, T: T, d: dk) }
            g.dv.withUnsafeBufferPointer { vp in
                for b in 0..<B {
                    for h in 0..<H {
                        for t in 0..<T {
                            let src = vp.baseAddress! + ((b * H + h) * T + t) * dvi
                            let dst = rows + (b * T + t) * P + 2 * H * dk + h * dk
                            for i in 0..<dk { dst[i] = src[i] }
                        }
                    }
                }
            }
            if let dbeta = g.dbeta {
                var dlogit = [Float].uninitialized(count: dbeta.count)
                for i in 0..<dbeta.count {
                    let b = cache.beta[i]
                    dlogit[i] = dbeta.storage[i] * b * (1 - b)
                }
                AttentionHeads.scatter(rows, width: P, column: 3 * H * dk, from: dlogit, B: B, H: H, T: T, d: 1)
            }
        }
        var dx = Tensor(shape: [B, T, D])
        store.withPointers { w in
            dx.withUnsafeMutableBufferPointer { dxp in
                Linear.backward(dinp: dxp.baseAddress!, dweight: w.gradient(qkv.weight), dbias: nil,
                                dout: dp, inp: cache.x.storage, weight: w.value(qkv.weight),
                                n: n, inputs: D, outputs: P)
            }
        }
        return (dx, g.dstate)
    }

    /// Throws unless `omega` is `[m, dk]` for `favor:m`, and nil for every other map.
    func checkOmega(_ omega: Tensor?) throws {
        try featureMap.checkOmega(omega, inputSize: headSize, context: "CarriedFastWeightLayer")
    }
}
