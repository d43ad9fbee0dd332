import FastWeights
import Dispatch
func time(_ label: String, _ body: () -> Void) {
    body()
    var best = 1e9
    for _ in 0..<5 { let t0 = DispatchTime.now().uptimeNanoseconds; body(); best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-6) }
    print(label, String(format: "%.2f ms", best))
}
let (BH, T, d) = (32, 1024, Int(CommandLine.arguments[1])!)
var rng = SeededRNG(seed: 1)
var q = rng.normalTensor([BH * T * d]).storage
var k = q, v = rng.normalTensor([BH * T * d]).storage, beta = rng.uniformTensor([BH * T]).storage
for r in 0..<(BH*T) { var s: Float = 0; for j in 0..<d { s += k[r*d+j]*k[r*d+j] }; for j in 0..<d { k[r*d+j] /= s.squareRoot() } }
let shape = SequenceShape(T: T, dphi: d, dv: d)
var y = [Float](repeating: 0, count: BH * T * d)
var st = [Float](repeating: 0, count: BH * d * d)
let sc = DeltaRule.chunkedSavedCount(shape, chunk: 64)
var saved = [Float](repeating: 0, count: BH * sc)
for workers in [1, 2] {
  time("delta chunked fwd kernels only, \(workers) workers (\(ThreadOwnership.workers))") {
    q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in beta.withUnsafeBufferPointer { bp in
    y.withUnsafeMutableBufferPointer { yp in st.withUnsafeMutableBufferPointer { sp in saved.withUnsafeMutableBufferPointer { svp in
      let box = UncheckedSendable((qp, kp, vp, bp, yp, sp, svp))
      ThreadOwnership.onWorkers(workers) { w in
        let (qp, kp, vp, bp, yp, sp, svp) = box.value
        var s = w
        while s < BH {
          DeltaRule.chunkedForward(y: yp.baseAddress! + s*T*d, state: sp.baseAddress! + s*d*d, saved: svp.baseAddress! + s*sc, q: qp.baseAddress! + s*T*d, k: kp.baseAddress! + s*T*d, v: vp.baseAddress! + s*T*d, beta: bp.baseAddress! + s*T, shape: shape, chunk: 64)
          s += workers
        }
      }
    }}}}}}}
  }
}
let op = try! FastWeightProgrammer(rule: .delta, featureMap: .identity, normalization: .l2, algorithm: .chunked(size: 64))
let Q = Tensor(shape: [4, 8, T, d], storage: q), K = Tensor(shape: [4, 8, T, d], storage: k), V = Tensor(shape: [4, 8, T, d], storage: v), Bt = Tensor(shape: [4, 8, T], storage: beta)
time("op forward") { _ = try! op.forward(q: Q, k: K, v: V, beta: Bt, saveForBackward: false) }
time("op forward saving") { _ = try! op.forward(q: Q, k: K, v: V, beta: Bt) }
var fm = [Float](repeating: 0, count: BH*T*d)
time("feature map l2 serial") { q.withUnsafeBufferPointer { qp in fm.withUnsafeMutableBufferPointer { fp in FeatureMap.identity.forward(out: fp.baseAddress!, x: qp.baseAddress!, rows: BH*T, d: d, omega: nil, normalization: .l2) } } }
