import XCTest
import FastWeights

/// The model-layer example of README.md, compiled and run as it stands there.
final class ReadmeModelExampleTests: XCTestCase {
    func testReadmeModelExample() throws {
        // --- README model example begins ---
        var rng = SeededRNG(seed: 0)
        var store = ParameterStore()
        // A 2-layer Transformer whose blocks mix time with a delta-rule fast weight programmer.
        let layer = FastWeightLayerConfig(modelSize: 64, heads: 4, headSize: 16, rule: .delta,
                                          featureMap: .dpfp(order: 1), normalization: .sum)
        let model = try TransformerModel(vocabularySize: 100, modelSize: 64, feedForwardSize: 256, layers: 2,
                                         positionalEncoding: false, store: &store, rng: &rng) { l, store, rng in
            try FastWeightLayer(layer, name: "block\(l).mix", store: &store, rng: &rng)
        }
        var adam = Adam(learningRate: 1e-3)
        let tokens = (0..<(8 * 32)).map { _ in Int32(rng.next() % 100) }     // [B = 8, T = 32]
        let targets = Array(tokens.dropFirst()) + [0]
        for step in 1...3 {
            store.zeroGradients()
            let r = try model.crossEntropy(tokens: tokens, targets: targets, batchSize: 8, store: &store, rng: &rng)
            adam.update(&store)
            print("step \(step): loss \(r.loss)")
        }
        // --- README model example ends ---
        XCTAssertGreaterThan(store.count, 0)
    }
}
