import FWCore
import FWOps

extension DeltaNetLayer {
    /// dL/dx `[B, T, D]` from dL/dy `[B, T, D]` (the `SequenceMixingLayer`
    /// backward), accumulating every parameter gradient into `store.gradients`.
    ///
    /// - Throws: `FWError.shapeMismatch` naming "dy".
    public func backward(_ dy: Tensor, cache: DeltaNetLayer.Cache, store: inout ParameterStore) throws -> Tensor {
        try backward(dy, dstate: nil, cache: cache, store: &store).dx
    }

    /// dL/dx `[B, T, D]` and dL/d(initial state) from dL/dy and dL/d(final
    /// state) (zero when nil), accumulating the parameter gradients. Goes in
    /// the reverse order of the forward:
    ///
    /// ```
    /// dmerged = dy Wout                dWout += dy^T merged
    /// dn      = split(dmerged)         [B, H, T, dv]
    /// do, dz, dw_norm = GatedRMSNorm backward(dn)
    /// dq, dk, dv, dbeta, dg, dS_0 = FWP backward(dk^(-1/2) do, dS_T)    (through the l2 norm)
    /// dp[b]   = dbeta beta (1 - beta / m);   dp[a], dA_log, ddt_bias = DecayGate backward(dg)
    /// dp[q|k|v], dw_conv, dconv_0 = ShortConvolution backward(dq | dk | dv, dconv_T)
    /// dp[g]   = dz
    /// dx      = dp Wproj               dWproj += dp^T x
    /// ```
    ///
    /// - Throws: `FWError.shapeMismatch` naming "dy" or the part of "dstate".
    public func backward(_ dy: Tensor, dstate: State?, cache: DeltaNetLayer.Cache,
                         store: inout ParameterStore) throws -> (dx: Tensor, dinitialState: State) {
        let (B, T) = (cache.B, cache.T)
        let c = config
        let (D, H, dk, dv, K, P) = (c.modelSize, c.heads, c.headSize, c.valueSize, c.convolutionSize, c.projectionSize)
        try dy.checkShape("dy", [B, T, D])
        if let dstate { try checkState(dstate, batch: B, prefix: "dstate") }
        let n = B * T
        // No step: the final state is the initial one.
        guard n > 0, let fwpCache = cache.fwp else { return (Tensor(shape: [B, T, D]), dstate ?? zeroState(batch: B)) }

        // 1. Output projection: dmerged = dy Wout, dWout += dy^T merged.
        var dmerged = [Float](repeating: 0, count: n * H * dv)
        store.withPointers { w in
            Linear.backward(dinp: &dmerged, dweight: w.gradient(out.weight), dbias: nil, dout: dy.storage,
                            inp: cache.merged, weight: w.value(out.weight), n: n, inputs: H * dv, outputs: D)
        }
        var dnormed = [Float].uninitialized(count: n * H * dv)
        AttentionHeads.gather(&dnormed, from: dmerged, width: H * dv, column: 0, B: B, H: H, T: T, d: dv)

        // 2. The output norm: do (then times dk^(-1/2) for the op), dz, dw_norm.
        var dop = [Float].uninitialized(count: n * H * dv)
        var dgate = [Float].uninitialized(count: c.outputGate ? n * H * dv : 0)
        store.withPointers { w in
            cache.gateLogits.withUnsafeBufferPointer { gp in
                dgate.withUnsafeMutableBufferPointer { dgp in
                    GatedRMSNorm.backward(dinp: &dop, dgate: c.outputGate ? dgp.baseAddress! : nil,
                                          dweight: w.gradient(norm.weight), dout: dnormed, inp: cache.o,
                                          gate: c.outputGate ? gp.baseAddress! : nil, rstd: cache.rstd,
                                          weight: w.value(norm.weight), rows: B * H * T, c: dv)
                }
            }
        }
        let scale = c.queryScale
        for i in dop.indices { dop[i] *= scale }

        // 3. The op's backward (through its l2 normalisation of q and k).
        let grads = try FastWeightProgrammer.backward(dy: Tensor(shape: [B, H, T, dv], storage: dop),
                                                      dstate: dstate?.fastWeights, cache: fwpCache)
        var dinitial = zeroState(batch: B)
        dinitial.fastWeights = grads.dstate

        // 4. Back into the fused layout dp [B*T, P]: the gates' logits first.
        var dp = [Float](repeating: 0, count: n * P)
        var dlogits = [Float].uninitialized(count: B * H * T)
        cache.beta.withUnsafeBufferPointer { bp in
            WriteStrength.backward(dlogits: &dlogits, dbeta: grads.dbeta!.storage, beta: bp.baseAddress!, count: bp.count,
                                   scale: WriteStrength.scale(negativeEigenvalues: c.negativeEigenvalues))
        }
        AttentionHeads.scatter(&dp, width: P, column: c.betaColumn, from: dlogits, B: B, H: H, T: T, d: 1)
        if let decay {
            store.withPointers { w in
                DecayGate.backward(dlogits: &dlogits, daLog: w.gradient(decay.aLog), ddtBias: w.gradient(decay.dtBias),
                                   dg: grads.dg!.storage, logits: cache.decayLogits, g: cache.g,
                                   aLog: w.value(decay.aLog), dtBias: w.value(decay.dtBias), B: B, H: H, T: T)
            }
            AttentionHeads.scatter(&dp, width: P, column: c.decayColumn, from: dlogits, B: B, H: H, T: T, d: 1)
        }
        if c.outputGate {
            AttentionHeads.scatter(&dp, width: P, column: c.gateColumn, from: dgate, B: B, H: H, T: T, d: dv)
        }

        // 5. The short convolutions: heads back to [B*T, C], then into dp's q, k, v blocks.
        func convolveBack(_ conv: ShortConvolution, _ dheads: Tensor, d: Int, column: Int, u: [Float],
                          state: [Float]?, dfinal: Tensor?, dinitial: inout Tensor) {
            var drows = [Float].uninitialized(count: n * conv.channels)
            AttentionHeads.scatter(&drows, width: conv.channels, column: 0, from: dheads.storage, B: B, H: H, T: T, d: d)
            store.withPointers { w in
                dp.withUnsafeMutableBufferPointer { dpp in
                    cache.p.withUnsafeBufferPointer { pp in
                        ShortConvolution.backward(dx: dpp.baseAddress! + column, ldx: P, dweight: w.gradient(conv.weight),
                                                  dstate: &dinitial.storage, dy: drows, dfinalState: dfinal?.storage,
                                                  u: u, x: pp.baseAddress! + column, state: state,
                                                  weight: w.value(conv.weight), B: B, T: T, C: conv.channels, K: K)
                    }
                }
            }
        }
        convolveBack(qConv, grads.dq, d: dk, column: c.queryColumn, u: cache.qu, state: cache.initialConv?.q,
                     dfinal: dstate?.qConv, dinitial: &dinitial.qConv)
        convolveBack(kConv, grads.dk, d: dk, column: c.keyColumn, u: cache.ku, state: cache.initialConv?.k,
                     dfinal: dstate?.kConv, dinitial: &dinitial.kConv)
        convolveBack(vConv, grads.dv, d: dv, column: c.valueColumn, u: cache.vu, state: cache.initialConv?.v,
                     dfinal: dstate?.vConv, dinitial: &dinitial.vConv)

        // 6. The fused projection: dx = dp Wproj, dWproj += dp^T x.
        var dx = Tensor(shape: [B, T, D])
        store.withPointers { w in
            Linear.backward(dinp: &dx.storage, dweight: w.gradient(proj.weight), dbias: nil, dout: dp,
                            inp: cache.x.storage, weight: w.value(proj.weight), n: n, inputs: D, outputs: P)
        }
        return (dx, dinitial)
    }
}
