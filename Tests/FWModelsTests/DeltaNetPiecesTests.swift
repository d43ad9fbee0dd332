// The pieces of the DeltaNet layer, each against its Float64 reference
// (DeltaNetReference) and central finite differences of that reference
// (loss = <dy, y> (+ <dS, S_T>), random dy): the short convolution with and
// without an initial conv state (incl. dL/d(initial state) and dL/d(final
// state)), the l2 normalisation the op applies to q and k, beta = m sigmoid,
// the decay gate (dL/dA_log, dL/ddt_bias, dL/dw_a through a Linear) and its
// initialisation, the RMS norm with and without the silu output gate.
import XCTest
import FWTestSupport

final class DeltaNetPiecesTests: XCTestCase {
    private func report(_ label: String, _ errors: [String: Double]) {
        print("  \(label): " + errors.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.2e", $0.value))" }.joined(separator: ", "))
    }

    private func checkConvolution(withState: Bool, seed: UInt64) throws {
        let (B, T, C, K) = (2, 5, 3, 4)
        var rng = SeededRNG(seed: seed)
        var store = ParameterStore()
        let conv = ShortConvolution(channels: C, kernelSize: K, name: "conv", store: &store, rng: &rng)
        XCTAssertEqual(conv.weight.shape, [C, K])
        let x = rng.normalTensor([B, T, C]), dy = rng.normalTensor([B, T, C])
        let s0: Tensor? = withState ? rng.normalTensor([B, K - 1, C]) : nil
        let dS: Tensor? = withState ? rng.normalTensor([B, K - 1, C]) : nil
        let w = try store.tensor("conv.weight").storage.asDouble
        let (y, sT, cache) = try conv.forward(x, initialState: s0, store: store)
        let ref = DeltaNetReference.shortConvolution(x.storage.asDouble, weight: w, state: s0?.storage.asDouble,
                                                     B: B, T: T, C: C, K: K)
        assertSpecClose(y.storage, ref.y, "conv y")
        assertSpecClose(sT.storage, ref.state, "conv final state")
        print("  conv (state: \(withState)) max|y - ref| = \(maxAbsDifference(y.storage, ref.y))")
        let (dx, ds0) = try conv.backward(dy, dstate: dS, cache: cache, store: &store)
        var names = ["dx", "dw"], inputs = [x.storage.asDouble, w], analytic = [dx.storage, try store.gradientTensor("conv.weight").storage]
        if let s0 { names.append("dstate0"); inputs.append(s0.storage.asDouble); analytic.append(ds0.storage) }
        let dyd = dy.storage.asDouble + (dS?.storage.asDouble ?? [])
        let errors = assertGradientsMatchFiniteDifferences(names: names, inputs: inputs, analytic: analytic, dh: dyd,
                                                           label: "conv") { a in
            let r = DeltaNetReference.shortConvolution(a[0], weight: a[1], state: a.count > 2 ? a[2] : nil,
                                                       B: B, T: T, C: C, K: K)
            return r.y + (withState ? r.state : [])
        }
        report("conv (state: \(withState))", errors)
        if !withState { XCTAssertEqual(ds0.storage.count, B * (K - 1) * C) }
    }

    func testShortConvolutionWithoutInitialState() throws { try checkConvolution(withState: false, seed: 201) }

    func testShortConvolutionWithInitialStateAndFinalStateGradient() throws { try checkConvolution(withState: true, seed: 202) }

    /// Shorter sequences than the kernel (T < K-1: the final state still
    /// holds initial-state entries) and K = 1 (no state at all).
    func testShortConvolutionEdgeLengths() throws {
        for (T, K) in [(1, 4), (2, 4), (3, 1)] {
            let (B, C) = (1, 2)
            var rng = SeededRNG(seed: 203)
            var store = ParameterStore()
            let conv = ShortConvolution(channels: C, kernelSize: K, name: "c", store: &store, rng: &rng)
            let x = rng.normalTensor([B, T, C]), s0 = rng.normalTensor([B, K - 1, C])
            let (y, sT, cache) = try conv.forward(x, initialState: s0, store: store)
            let ref = DeltaNetReference.shortConvolution(x.storage.asDouble, weight: try store.tensor("c.weight").storage.asDouble,
                                                         state: s0.storage.asDouble, B: B, T: T, C: C, K: K)
            assertSpecClose(y.storage, ref.y, "conv y T=\(T) K=\(K)")
            assertSpecClose(sT.storage, ref.state, "conv state T=\(T) K=\(K)")
            let dS = rng.normalTensor([B, K - 1, C]), dy = rng.normalTensor([B, T, C])
            let (dx, ds0) = try conv.backward(dy, dstate: dS, cache: cache, store: &store)
            let w = try store.tensor("c.weight").storage.asDouble
            assertGradientsMatchFiniteDifferences(
                names: ["dx", "dstate0"], inputs: [x.storage.asDouble, s0.storage.asDouble],
                analytic: [dx.storage, ds0.storage], dh: dy.storage.asDouble + dS.storage.asDouble,
                label: "conv T=\(T) K=\(K)") { a in
                    let r = DeltaNetReference.shortConvolution(a[0], weight: w, state: a[1], B: B, T: T, C: C, K: K)
                    return r.y + r.state
                }
        }
    }

    /// The layer leaves q and k's l2 normalisation to the op
    /// (`FeatureNormalization.l2`, FLA's l2norm with eps 1e-6 inside the root).
    func testL2NormalisationIsFLAsAndItsGradient() throws {
        let (rows, d) = (4, 3)
        var rng = SeededRNG(seed: 204)
        let u = rng.normalTensor([rows, d]).storage, dout = rng.normalTensor([rows, d]).storage
        XCTAssertEqual(FeatureNormalization.l2Epsilon, 1e-6)
        var out = [Float](repeating: 0, count: rows * d), du = out
        FeatureNormalization.l2.forward(out: &out, u: u, rows: rows, size: d)
        assertSpecClose(out, DeltaNetReference.l2(u.asDouble, d: d), "l2 forward")
        FeatureNormalization.l2.backward(du: &du, dout: dout, u: u, out: out, rows: rows, size: d)
        let errors = assertGradientsMatchFiniteDifferences(names: ["du"], inputs: [u.asDouble], analytic: [du],
                                                           dh: dout.asDouble, label: "l2") { DeltaNetReference.l2($0[0], d: d) }
        report("l2", errors)
    }

    func testWriteStrengthSigmoidAndTwoSigmoid() throws {
        var rng = SeededRNG(seed: 205)
        let z = rng.normalTensor([7], std: 2).storage, db = rng.normalTensor([7]).storage
        for m: Float in [1, 2] {
            XCTAssertEqual(WriteStrength.scale(negativeEigenvalues: m == 2), m)
            var beta = [Float](repeating: 0, count: 7), dz = beta
            WriteStrength.forward(beta: &beta, logits: z, count: 7, scale: m)
            let ref = { (z: [Double]) in z.map { Double(m) * DeltaNetReference.sigmoid($0) } }
            assertSpecClose(beta, ref(z.asDouble), "beta m=\(m)")
            XCTAssertTrue(beta.allSatisfy { $0 > 0 && $0 < m })
            WriteStrength.backward(dlogits: &dz, dbeta: db, beta: beta, count: 7, scale: m)
            let errors = assertGradientsMatchFiniteDifferences(names: ["dz"], inputs: [z.asDouble], analytic: [dz],
                                                               dh: db.asDouble, label: "beta m=\(m)") { ref($0[0]) }
            report("beta m=\(m)", errors)
        }
    }

    /// z = x W_a^T (a Linear, as in the layer), g = -exp(A_log) softplus(z + dt_bias):
    /// dL/dA_log, dL/ddt_bias and dL/dW_a against finite differences.
    func testDecayGateGradients() throws {
        let (B, H, T, D) = (2, 3, 4, 5)
        var rng = SeededRNG(seed: 206)
        var store = ParameterStore()
        let gate = DecayGate(heads: H, name: "gate", store: &store, rng: &rng)
        let wa = store.register("gate.a.weight", shape: [H, D], initializer: .normal(std: 0.7), rng: &rng)
        // Move A_log and dt_bias away from their (small-decay) initial values too.
        try store.setTensor("gate.A_log", rng.normalTensor([H], std: 0.5))
        try store.setTensor("gate.dt_bias", rng.normalTensor([H], std: 1))
        let x = rng.normalTensor([B, H, T, D])   // rows (b, h, t); head h reads its own row of W_a
        let dg = rng.normalTensor([B, H, T]).storage
        let aLog = try store.tensor("gate.A_log").storage, dt = try store.tensor("gate.dt_bias").storage
        let waValues = try store.tensor("gate.a.weight").storage
        // z[b, h, t] = x[b, h, t] . W_a[h].
        func logits(_ x: [Double], _ w: [Double]) -> [Double] {
            (0..<(B * H * T)).map { i in let h = (i / T) % H; return (0..<D).reduce(0.0) { $0 + x[i * D + $1] * w[h * D + $1] } }
        }
        let z = logits(x.storage.asDouble, waValues.asDouble).map(Float.init)
        var g = [Float](repeating: 0, count: B * H * T), dz = g
        DecayGate.forward(g: &g, logits: z, aLog: aLog, dtBias: dt, B: B, H: H, T: T)
        let ref = { (z: [Double], a: [Double], d: [Double]) in DeltaNetReference.decay(z, aLog: a, dtBias: d, H: H, T: T) }
        assertSpecClose(g, ref(z.asDouble, aLog.asDouble, dt.asDouble), "g")
        XCTAssertTrue(g.allSatisfy { $0 <= 0 })
        store.withPointers { p in
            DecayGate.backward(dlogits: &dz, daLog: p.gradient(gate.aLog), ddtBias: p.gradient(gate.dtBias), dg: dg,
                               logits: z, g: g, aLog: aLog, dtBias: dt, B: B, H: H, T: T)
            // dW_a[h] += sum_{b,t} dz[b, h, t] x[b, h, t].
            for i in 0..<(B * H * T) {
                let h = (i / T) % H
                for j in 0..<D { p.gradient(wa)[h * D + j] += dz[i] * x.storage[i * D + j] }
            }
        }
        let errors = assertGradientsMatchFiniteDifferences(
            names: ["dA_log", "ddt_bias", "dW_a"], inputs: [aLog.asDouble, dt.asDouble, waValues.asDouble],
            analytic: [try store.gradientTensor("gate.A_log").storage, try store.gradientTensor("gate.dt_bias").storage,
                       try store.gradientTensor("gate.a.weight").storage],
            dh: dg.asDouble, label: "decay gate") { a in ref(logits(x.storage.asDouble, a[2]), a[0], a[1]) }
        report("decay gate", errors)
        // Large logits: softplus without overflow, and its gradient saturates at 1.
        var gBig = [Float](repeating: 0, count: 2)
        DecayGate.forward(g: &gBig, logits: [200, -200], aLog: [0], dtBias: [0], B: 1, H: 1, T: 2)
        XCTAssertEqual(gBig[0], -200, accuracy: 1e-3)
        XCTAssertTrue(gBig[1] <= 0 && gBig[1] > -1e-30)
    }

    /// FLA's initialisation: A = exp(A_log) in (0, 16], softplus(dt_bias) =
    /// dt in [0.001, 0.1] (clamped at 1e-4), finite.
    func testDecayGateInitialisation() {
        var rng = SeededRNG(seed: 207)
        let (aLog, dtBias) = DecayGate.initialValues(heads: 256, rng: &rng)
        XCTAssertTrue(aLog.allSatisfy { $0.isFinite && exp($0) > 0 && exp($0) <= 16.0001 })
        XCTAssertGreaterThan(aLog.map { exp($0) }.max()!, 12)
        let dt = dtBias.map { Double(DecayGate.softplus($0)) }
        XCTAssertTrue(dt.allSatisfy { $0 >= 0.001 * 0.999 && $0 <= 0.1 * 1.001 }, "dt range \(dt.min()!) ... \(dt.max()!)")
        XCTAssertTrue(dtBias.allSatisfy { $0 < 0 })
    }

    private func checkRMSNorm(gated: Bool, seed: UInt64) throws {
        let (rows, c) = (5, 4)
        var rng = SeededRNG(seed: seed)
        var store = ParameterStore()
        let norm = GatedRMSNorm(c, epsilon: 1e-5, name: "n", store: &store)
        XCTAssertEqual(try store.tensor("n.weight").storage, [1, 1, 1, 1])
        try store.setTensor("n.weight", Tensor(shape: [c], storage: rng.normalTensor([c], std: 0.3).storage.map { 1 + $0 }))
        // One small row (|o| ~ 1e-2: eps matters there) among N(0, 1) ones.
        var o = rng.normalTensor([rows, c]).storage
        for j in 0..<c { o[j] *= 0.01 }
        let z = rng.normalTensor([rows, c]).storage, dout = rng.normalTensor([rows, c]).storage
        let w = try store.tensor("n.weight").storage
        var out = [Float](repeating: 0, count: rows * c), rstd = [Float](repeating: 0, count: rows)
        var dinp = out, dz = out
        GatedRMSNorm.forward(out: &out, rstd: &rstd, inp: o, gate: gated ? z : nil, weight: w, rows: rows, c: c, epsilon: norm.epsilon)
        let ref = { (o: [Double], w: [Double], z: [Double]) in
            DeltaNetReference.rmsNorm(o, weight: w, gate: gated ? z : nil, c: c, eps: 1e-5)
        }
        assertSpecClose(out, ref(o.asDouble, w.asDouble, z.asDouble), "rms norm (gated: \(gated))")
        store.withPointers { p in
            dz.withUnsafeMutableBufferPointer { dzp in
                GatedRMSNorm.backward(dinp: &dinp, dgate: gated ? dzp.baseAddress! : nil, dweight: p.gradient(norm.weight),
                                      dout: dout, inp: o, gate: gated ? z : nil, rstd: rstd, weight: w, rows: rows, c: c)
            }
        }
        var names = ["do", "dw"], inputs = [o.asDouble, w.asDouble], analytic = [dinp, try store.gradientTensor("n.weight").storage]
        if gated { names.append("dz"); inputs.append(z.asDouble); analytic.append(dz) }
        let errors = assertGradientsMatchFiniteDifferences(names: names, inputs: inputs, analytic: analytic, dh: dout.asDouble,
                                                           h: 1e-7, label: "rms norm (gated: \(gated))") { a in
            ref(a[0], a[1], gated ? a[2] : z.asDouble)
        }
        report("rms norm (gated: \(gated))", errors)
    }

    func testRMSNormWithoutOutputGate() throws { try checkRMSNorm(gated: false, seed: 208) }

    func testRMSNormWithSiluOutputGate() throws { try checkRMSNorm(gated: true, seed: 209) }
}
