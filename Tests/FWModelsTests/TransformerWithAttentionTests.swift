import XCTest
import FWTestSupport

/// The small Transformer with the real mixers: a fast weight programmer layer
/// (delta rule, and sum rule with the denominator) or causal softmax
/// attention in every block. The whole model's loss against the Float64
/// reference built from the block and layer references, and every parameter
/// gradient against central finite differences of it.
final class TransformerWithAttentionTests: XCTestCase {
    let (V, D, F, H, dk, B, T) = (5, 4, 6, 2, 2, 2, 4)

    func check<Mixer: SequenceMixingLayer>(_ label: String, seed: UInt64,
                                           make: @escaping (Int, inout ParameterStore, inout SeededRNG) throws -> Mixer,
                                           reference: @escaping ([Double], [Double], [Double]) -> [Double]) throws {
        var rng = SeededRNG(seed: seed)
        var store = ParameterStore()
        let model = try TransformerModel(vocabularySize: V, modelSize: D, feedForwardSize: F, layers: 2,
                                         positionalEncoding: true, store: &store, rng: &rng, makeMixer: make)
        var values = store.values
        for i in values.indices { values[i] += 0.1 * rng.normal() }
        store.setValues(values)
        let tokens = (0..<(B * T)).map { _ in Int32(rng.next() % UInt64(V)) }
        let targets = (0..<(B * T)).map { _ in Int32(rng.next() % UInt64(V)) }
        store.zeroGradients()
        let result = try model.crossEntropy(tokens: tokens, targets: targets, batchSize: B, store: &store, rng: &rng)

        let slices = store.slices
        func loss(_ p: [Double]) -> Double {
            func param(_ name: String) -> [Double] { Array(p[slices.first { $0.name == name }!.range]) }
            let logits = TransformerReference.modelOutputs(
                tokens: tokens, p: param, batch: B, modelSize: D, feedForwardSize: F, outputSize: V,
                layers: 2, positionalEncoding: true) { l, u in
                    reference(u, param("block\(l).mix.qkv.weight"), param("block\(l).mix.out.weight"))
                }
            var total = 0.0
            for r in 0..<(B * T) {
                let row = Array(logits[(r * V)..<((r + 1) * V)])
                let m = row.max()!
                let lse = m + log(row.map { exp($0 - m) }.reduce(0, +))
                total += lse - row[Int(targets[r])]
            }
            return total / Double(B * T)
        }
        let p = store.values.asDouble
        XCTAssertEqual(Double(result.loss), loss(p), accuracy: 2e-4, "\(label) loss")
        let fd = centralDifferences(at: p, loss)
        var worst = 0.0
        for s in store {
            let analytic = Array(store.gradients[s.range]), numeric = Array(fd[s.range])
            assertSpecClose(analytic, numeric, "\(label) d\(s.name)")
            worst = max(worst, maxAbsDifference(analytic, numeric))
        }
        print("\(label): \(store.count) parameters, max |grad - fd| = \(worst)")
    }

    func testFastWeightTransformerGradients() throws {
        let configs = [
            FastWeightLayerConfig(modelSize: D, heads: H, headSize: dk, rule: .delta, featureMap: .dpfp(order: 1),
                                  normalization: .sum, algorithm: .chunked(size: 3)),
            FastWeightLayerConfig(modelSize: D, heads: H, headSize: dk, rule: .sum, featureMap: .elu1,
                                  denominator: true, algorithm: .recurrent),
        ]
        for (i, config) in configs.enumerated() {
            try check("FWP \(config.rule) \(config.featureMap)", seed: 7 + UInt64(i), make: { l, store, rng in
                try FastWeightLayer(config, name: "block\(l).mix", store: &store, rng: &rng)
            }, reference: { u, wqkv, wout in
                AttentionLayersReference.fastWeightLayer(config, x: u, wqkv: wqkv, wout: wout, omega: [], B: self.B, T: self.T)
            })
        }
    }

    func testSoftmaxTransformerGradients() throws {
        try check("softmax", seed: 3, make: { l, store, rng in
            try SoftmaxAttentionLayer(modelSize: self.D, heads: self.H, headSize: self.dk, name: "block\(l).mix", store: &store, rng: &rng)
        }, reference: { u, wqkv, wout in
            AttentionLayersReference.softmaxAttention(x: u, wqkv: wqkv, wout: wout, B: self.B, T: self.T, D: self.D, H: self.H, dk: self.dk)
        })
    }
}
