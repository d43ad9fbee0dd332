// LanguageModelConfig: one-line validation errors, Codable with defaults,
// the parameter count against the registered store, the memory estimate's
// growth, and the mixer table.
import XCTest
import Foundation
import FWTestSupport

final class LanguageModelConfigTests: XCTestCase {
    private func message(_ c: LanguageModelConfig) -> String {
        do { try c.validate(); return "valid" } catch { return "\(error)" }
    }

    func testValidationErrorsAreOneLineEach() {
        let base = LanguageModelConfig(mixer: .delta)
        XCTAssertEqual(message(base), "valid")
        var cases: [(LanguageModelConfig, String)] = []
        func with(_ edit: (inout LanguageModelConfig) -> Void, _ expected: String) {
            var c = base
            edit(&c)
            cases.append((c, expected))
        }
        with({ $0.layers = 0 }, "LanguageModelConfig: layers must be 1...2147483647, got 0")
        with({ $0.modelSize = -4 }, "LanguageModelConfig: modelSize must be 1...2147483647, got -4")
        with({ $0.heads = 0 }, "LanguageModelConfig: heads must be 1...2147483647, got 0")
        with({ $0.feedForwardSize = Int(Int32.max) + 1 }, "LanguageModelConfig: feedForwardSize must be 1...2147483647, got 2147483648")
        with({ $0.heads = 3 }, "LanguageModelConfig: modelSize 128 is not divisible by heads 3")
        with({ $0.dropout = 1 }, "LanguageModelConfig: dropout must be in [0, 1), got 1.0")
        with({ $0.dropout = -0.1 }, "LanguageModelConfig: dropout must be in [0, 1), got -0.1")
        with({ $0.dropout = .nan }, "LanguageModelConfig: dropout must be in [0, 1), got nan")
        with({ $0.favorFeatures = 0 }, "LanguageModelConfig: favorFeatures must be 1...2147483647, got 0")
        with({ $0.mixer = .dpfpDelta; $0.dpfpOrder = 32 },
             "LanguageModelConfig: feature map dpfp:32: order must satisfy 1 <= N <= 2d - 1 for input size d = 16 (head size = modelSize / heads)")
        with({ $0.modelSize = Int(Int32.max) - 1; $0.heads = 1 },
             "LanguageModelConfig: the fused projection 3 * modelSize + heads = 6442450939 exceeds 2147483647, the largest size OpenBLAS takes")
        with({ $0.modelSize = 500_000_000; $0.heads = 2; $0.feedForwardSize = 2_000_000_000 },
             "LanguageModelConfig: 4 layers of modelSize 500000000 and feedForwardSize 2000000000 would have 1.2000001e+19 parameters, more than 2^53")
        with({ $0.mixer = .gatedDeltaNet; $0.modelSize = 500_000_000; $0.heads = 2; $0.feedForwardSize = 2 },
             "LanguageModelConfig: the gated-deltanet projection of 3000000004 columns (H dv = 1000000000) exceeds 2147483647, the largest size OpenBLAS takes")
        with({ $0.mixer = .softmax; $0.normalization = .l2 },
             "LanguageModelConfig: normalization l2 is for the fast weight mixers linear, delta, dpfp-*, favor-*; softmax has its own")
        with({ $0.mixer = .deltaNet; $0.normalization = .sum },
             "LanguageModelConfig: normalization sum is for the fast weight mixers linear, delta, dpfp-*, favor-*; deltanet has its own")
        with({ $0.mixer = .gatedDeltaNet; $0.phi = .elu1 },
             "LanguageModelConfig: phi elu1 is for the fast weight mixers linear, delta, dpfp-*, favor-*; gated-deltanet has its own")
        with({ $0.phi = .identity },
             "LanguageModelConfig: normalisation 'sum' needs a feature map with non-negative outputs (elu1, dpfp:N, favor:M), not 'identity'")
        with({ $0.mixer = .linear; $0.phi = .silu },
             "LanguageModelConfig: the linear mixer divides by z . q' and needs a non-negative phi, not silu")
        for (c, expected) in cases {
            let m = message(c)
            XCTAssertEqual(m, expected)
            XCTAssertFalse(m.contains("\n"), m)
        }
        // dpfpOrder is ignored by the other mixers' feature maps but still a size.
        var c = base
        c.dpfpOrder = 40
        XCTAssertEqual(message(c), "valid")
        XCTAssertThrowsError(try LanguageModelMixer(parsing: "dpfp")) {
            XCTAssertEqual("\($0)", "unknown mixer 'dpfp' (expected softmax, linear, delta, dpfp-sum, dpfp-delta, favor-sum, favor-delta, deltanet, gated-deltanet)")
        }
        XCTAssertEqual(try LanguageModelMixer(parsing: "favor-sum"), .favorSum)
    }

    func testCodableRoundTripAndDefaults() throws {
        let c = LanguageModelConfig(mixer: .favorDelta, layers: 3, modelSize: 64, heads: 4, feedForwardSize: 256,
                                    dropout: 0.05, tiedEmbeddings: false, favorFeatures: 8, dpfpOrder: 3,
                                    positionalEncoding: true)
        let data = try JSONEncoder().encode(c)
        XCTAssertEqual(try JSONDecoder().decode(LanguageModelConfig.self, from: data), c)
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(text.contains("\"mixer\":\"favor-delta\""), text)
        // Only the mixer is required; the rest takes init's defaults.
        let minimal = try JSONDecoder().decode(LanguageModelConfig.self, from: Data(#"{"mixer": "dpfp-sum", "layers": 2}"#.utf8))
        var expected = LanguageModelConfig(mixer: .dpfpSum)
        expected.layers = 2
        XCTAssertEqual(minimal, expected)
        XCTAssertThrowsError(try JSONDecoder().decode(LanguageModelConfig.self, from: Data(#"{"mixer": "lstm"}"#.utf8)))
        XCTAssertThrowsError(try JSONDecoder().decode(LanguageModelConfig.self, from: Data(#"{"layers": 2}"#.utf8)))
        // The normalisation override: its spelling, absent when unset (older files read as before).
        XCTAssertFalse(text.contains("normalization"), text)
        var l2 = LanguageModelConfig(mixer: .delta)
        l2.normalization = .l2
        let l2Text = String(decoding: try JSONEncoder().encode(l2), as: UTF8.self)
        XCTAssertTrue(l2Text.contains("\"normalization\":\"l2\""), l2Text)
        XCTAssertEqual(try JSONDecoder().decode(LanguageModelConfig.self, from: Data(l2Text.utf8)), l2)
        XCTAssertEqual(l2.featureNormalization, .l2)
        XCTAssertEqual(LanguageModelConfig(mixer: .delta).featureNormalization, .sum)
        var both = LanguageModelConfig(mixer: .delta, normalization: .l2, phi: .identity)
        let bothText = String(decoding: try JSONEncoder().encode(both), as: UTF8.self)
        XCTAssertTrue(bothText.contains("\"phi\":\"identity\""), bothText)
        XCTAssertEqual(try JSONDecoder().decode(LanguageModelConfig.self, from: Data(bothText.utf8)), both)
        XCTAssertEqual(both.featureMap, .identity)
        XCTAssertNoThrow(try both.validate())
        both.mixer = .deltaNet   // the DeltaNet mixers keep their own phi
        XCTAssertEqual(both.featureMap, .identity)
        XCTAssertThrowsError(try JSONDecoder().decode(LanguageModelConfig.self,
                                                      from: Data(#"{"mixer": "delta", "phi": "relu"}"#.utf8)))
        XCTAssertThrowsError(try JSONDecoder().decode(LanguageModelConfig.self,
                                                      from: Data(#"{"mixer": "delta", "normalization": "max"}"#.utf8))) {
            XCTAssertTrue("\($0)".contains("unknown normalisation 'max'"), "\($0)")
        }
    }

    func testParameterCountMatchesTheStoreAndNames() throws {
        for mixer in LanguageModelMixer.allCases {
            for tied in [true, false] {
                let c = LanguageModelConfig(mixer: mixer, layers: 2, modelSize: 8, heads: 2, feedForwardSize: 12,
                                            tiedEmbeddings: tied, favorFeatures: 3)
                var rng = SeededRNG(seed: 1)
                var store = ParameterStore()
                _ = try CharLanguageModel(config: c, store: &store, rng: &rng)
                XCTAssertEqual(store.count, c.parameterCount, "\(mixer) tied \(tied)")
                XCTAssertEqual(store.names.first, "embedding.weight")
                XCTAssertEqual(Array(store.names.suffix(tied ? 3 : 4)),
                               (["final_ln.weight", "final_ln.bias"] + (tied ? [] : ["head.weight"]) + ["head.bias"]))
                let projection = mixer.isDeltaNet ? "proj" : "qkv"
                XCTAssertTrue(store.names.contains("block1.mix.\(projection).weight"))
                XCTAssertEqual(try store.tensor("block0.mix.\(projection).weight").shape, [c.projectionSize, 8])
            }
        }
        // The ~1M-parameter training shape of the benchmarks.
        XCTAssertEqual(LanguageModelConfig(mixer: .delta, layers: 4, modelSize: 128, heads: 8, feedForwardSize: 512).parameterCount,
                       828_416)   // 256*128 + 4 * 198,784 + 256 + 256
        // DeltaNet at the same shape: proj [392, 128], convs 384 x 4, o_norm 16, out [128, 128].
        XCTAssertEqual(LanguageModelConfig(mixer: .deltaNet, layers: 4, modelSize: 128, heads: 8, feedForwardSize: 512).parameterCount,
                       834_624)   // 32,768 + 4 * 200,336 + 512
        // Gated DeltaNet (dv = 2 dk): proj [784, 128], convs 512 x 4, A_log and dt_bias 16, o_norm 32, out [128, 256].
        XCTAssertEqual(LanguageModelConfig(mixer: .gatedDeltaNet, layers: 4, modelSize: 128, heads: 8, feedForwardSize: 512).parameterCount,
                       1_103_040)   // 32,768 + 4 * 267,440 + 512
    }

    func testMemoryEstimateGrowsQuadraticallyOnlyForSoftmax() throws {
        let soft = LanguageModelConfig(mixer: .softmax), fast = LanguageModelConfig(mixer: .dpfpDelta)
        let (s1, s2) = (soft.memoryEstimate(batch: 16, context: 2048), soft.memoryEstimate(batch: 16, context: 4096))
        let (f1, f2) = (fast.memoryEstimate(batch: 16, context: 2048), fast.memoryEstimate(batch: 16, context: 4096))
        XCTAssertGreaterThan(s2 / s1, 3.5)
        XCTAssertLessThan(f2 / f1, 2.1)
        XCTAssertGreaterThan(fast.memoryEstimate(batch: 16, context: 256), 4 * 4 * Double(fast.parameterCount))
        XCTAssertThrowsError(try MemoryBudget.check(soft.memoryEstimate(batch: 1 << 20, context: 1 << 20), "run")) {
            XCTAssertTrue("\($0)".hasPrefix("run would need"), "\($0)")
        }
    }

    func testMixerTable() {
        XCTAssertEqual(LanguageModelMixer.allCases.filter(\.carriesState).count, 8)
        XCTAssertEqual(LanguageModelMixer.allCases.filter(\.isDeltaNet), [.deltaNet, .gatedDeltaNet])
        XCTAssertEqual(try LanguageModelMixer(parsing: "gated-deltanet"), .gatedDeltaNet)
        XCTAssertEqual(LanguageModelMixer.gatedDeltaNet.rule, .gatedDelta)
        XCTAssertEqual(LanguageModelMixer.deltaNet.normalization, .l2)
        XCTAssertEqual(LanguageModelConfig(mixer: .deltaNet).valueSize, 16)
        XCTAssertEqual(LanguageModelConfig(mixer: .gatedDeltaNet).valueSize, 32)
        XCTAssertEqual(LanguageModelConfig(mixer: .gatedDeltaNet).deltaNetConfig, .gatedDeltaNet(modelSize: 128, heads: 8, headSize: 16))
        XCTAssertNil(LanguageModelConfig(mixer: .delta).deltaNetConfig)
        XCTAssertEqual(LanguageModelMixer.allCases.filter(\.usesDenominator), [.linear, .dpfpSum, .favorSum])
        XCTAssertEqual(LanguageModelMixer.delta.normalization, .sum)
        XCTAssertEqual(LanguageModelMixer.favorSum.normalization, .none)
        XCTAssertEqual(LanguageModelMixer.dpfpDelta.featureMap(dpfpOrder: 2, favorFeatures: 16), .dpfp(order: 2))
        XCTAssertEqual(LanguageModelConfig(mixer: .favorSum).featureSize, 32)
        XCTAssertEqual(LanguageModelConfig(mixer: .dpfpSum).featureSize, 64)
        XCTAssertEqual(LanguageModelConfig(mixer: .linear).attentionOutputScale, 0.25)
        XCTAssertEqual(LanguageModelConfig(mixer: .softmax).attentionOutputScale, 1)
    }
}
