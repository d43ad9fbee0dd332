import XCTest
import FWCore
import FWTestSupport
@testable import FWOps

/// The engine's own choice of algorithm (`FastWeightProgrammer+Algorithm.swift`):
/// recurrent for small states, chunked above; a forward that no backward
/// follows stays recurrent up to larger states; and the choice never
/// changes the result beyond the contract's tolerance.
final class AutomaticAlgorithmTests: XCTestCase {
    func testTheThresholds() {
        let inference = FastWeightProgrammer.recurrentForwardMaxStateSize
        for rule in FastWeightRule.allCases {
            XCTAssertEqual(FastWeightProgrammer.automaticAlgorithm(rule: rule, T: 1024, dphi: 128, dv: 128),
                           .chunked(size: FastWeightProgrammer.automaticChunk), "\(rule) d = 128 trains chunked")
            XCTAssertEqual(FastWeightProgrammer.automaticAlgorithm(rule: rule, T: 1024, dphi: 128, dv: 128, backward: false),
                           inference >= 128 * 128 ? .recurrent : .chunked(size: FastWeightProgrammer.automaticChunk))
            XCTAssertEqual(FastWeightProgrammer.automaticAlgorithm(rule: rule, T: 1024, dphi: 64, dv: 64, backward: false),
                           inference >= 64 * 64 ? .recurrent : FastWeightProgrammer.automaticAlgorithm(rule: rule, T: 1024, dphi: 64, dv: 64))
            XCTAssertEqual(FastWeightProgrammer.automaticAlgorithm(rule: rule, T: 1024, dphi: 4, dv: 4, backward: false),
                           inference >= 16 ? .recurrent : FastWeightProgrammer.automaticAlgorithm(rule: rule, T: 1024, dphi: 4, dv: 4))
        }
        #if FWP_WIDE_SIMD
        XCTAssertEqual(inference, 64 * 64)
        XCTAssertGreaterThanOrEqual(inference, FastWeightProgrammer.recurrentMaxStateSize)
        #else
        XCTAssertEqual(inference, 0, "the portable build makes the training choice for every forward")
        #endif
    }

    /// The inference forward (recurrent where training's is chunked) gives
    /// the training forward's outputs and state.
    func testInferenceAndTrainingForwardsAgree() throws {
        var rng = SeededRNG(seed: 3)
        let (B, H, T, d) = (1, 2, 70, 48)   // 48 x 48 states: between the two thresholds in the AVX2 build
        func random(_ shape: [Int], _ low: Float = -1, _ high: Float = 1) -> Tensor {
            Tensor(shape: shape, storage: (0..<shape.reduce(1, *)).map { _ in low + (high - low) * rng.uniform() })
        }
        for rule in FastWeightRule.allCases {
            let op = try FastWeightProgrammer(rule: rule, featureMap: .elu1, normalization: .sum)
            let q = random([B, H, T, d]), k = random([B, H, T, d]), v = random([B, H, T, d])
            let gates = FWPGates(beta: rule.needs(.beta) ? random([B, H, T], 0.1, 0.9) : nil,
                                 g: rule.needs(.g) ? random([B, H, T], -1, 0) : nil)
            let train = try op.forward(q: q, k: k, v: v, gates: gates, saveForBackward: true)
            let infer = try op.forward(q: q, k: k, v: v, gates: gates, saveForBackward: false)
            assertSpecClose(infer.y.storage, train.y.storage, "\(rule) y")
            assertSpecClose(infer.state.storage, train.state.storage, "\(rule) S_T")
        }
    }
}
