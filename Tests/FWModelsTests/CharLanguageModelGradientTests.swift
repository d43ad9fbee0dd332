// The whole byte-level language model, per mixer: the training loss (with
// dropout p = 0.25, FAVOR+'s fresh Omega) against the Float64 reference
// replaying the same draws, and the gradients of a carried second segment
// (its initial state from a first segment, held fixed: truncated at the
// boundary) against central differences of that reference. The DeltaNet
// mixers' second segment also starts from the carried conv windows.
import XCTest
import FWTestSupport

final class CharLanguageModelGradientTests: XCTestCase {
    let (B, T) = (2, 3)

    private func makeModel(_ mixer: LanguageModelMixer, tied: Bool, positionalEncoding: Bool,
                           normalization: FeatureNormalization?, phi: FeatureMap?,
                           store: inout ParameterStore, rng: inout SeededRNG) throws -> CharLanguageModel {
        let config = LanguageModelConfig(mixer: mixer, layers: 2, modelSize: 4, heads: 2, feedForwardSize: 6,
                                         dropout: 0.25, tiedEmbeddings: tied, favorFeatures: 3, dpfpOrder: 2,
                                         positionalEncoding: positionalEncoding, normalization: normalization, phi: phi)
        let model = try CharLanguageModel(config: config, store: &store, rng: &rng)
        // Non-trivial gains, biases and head bias; larger projections so the fast weights matter.
        for s in store.slices {
            if s.name.hasSuffix(".bias") {
                try store.setTensor(s.name, rng.normalTensor(s.shape, std: 0.3))
            } else if s.name.contains("ln"), s.name.hasSuffix(".weight") {
                try store.setTensor(s.name, rng.uniformTensor(s.shape, low: 0.5, high: 1.5))
            } else if s.name.hasSuffix("qkv.weight") || s.name.hasSuffix("mix.proj.weight") {
                try store.setTensor(s.name, rng.normalTensor(s.shape, std: 0.7))
            }
        }
        return model
    }

    /// The parameters checked by finite differences: everything but the
    /// 256-row tables, plus 40 random entries of the embedding (and of an
    /// untied head's weight) and 16 of the head bias.
    private func checkedIndices(_ store: ParameterStore, rng: inout SeededRNG) -> [Int] {
        var indices: [Int] = []
        for s in store.slices {
            if s.name == "embedding.weight" || s.name == "head.weight" {
                for _ in 0..<40 { indices.append(s.offset + Int(rng.next() % UInt64(s.count))) }
            } else if s.name == "head.bias" {
                for _ in 0..<16 { indices.append(s.offset + Int(rng.next() % UInt64(s.count))) }
            } else {
                indices += Array(s.range)
            }
        }
        return Array(Set(indices)).sorted()
    }

    private func check(_ mixer: LanguageModelMixer, tied: Bool, positionalEncoding: Bool = false,
                       normalization: FeatureNormalization? = nil, phi: FeatureMap? = nil, seed: UInt64) throws {
        var rng = SeededRNG(seed: seed)
        var store = ParameterStore()
        let model = try makeModel(mixer, tied: tied, positionalEncoding: positionalEncoding, normalization: normalization,
                                  phi: phi, store: &store, rng: &rng)
        XCTAssertEqual(model.config.featureNormalization, normalization ?? mixer.normalization)
        XCTAssertEqual(store.count, model.config.parameterCount)
        let alphabet: [Int32] = [97, 98, 99, 32, 10, 200]         // repeated rows of E
        func bytes(_ n: Int) -> [Int32] { (0..<n).map { _ in alphabet[Int(rng.next() % 6)] } }
        let tokens1 = bytes(B * T), tokens2 = bytes(B * T), targets2 = bytes(B * T)

        // Segment 1 (carrying mixers): its state is the fixed start of segment 2.
        var state: LanguageModelState? = nil
        if model.carriesState {
            state = try model.lossAndGradients(tokens: tokens1, targets: bytes(B * T), batchSize: B, state: nil,
                                               store: &store, training: true, rng: &rng).state
            XCTAssertEqual(state!.position, T)
            store.zeroGradients()
        }
        let before = rng
        let r = try model.lossAndGradients(tokens: tokens2, targets: targets2, batchSize: B, state: state,
                                           store: &store, training: true, rng: &rng)
        XCTAssertEqual(r.count, B * T)
        XCTAssertEqual(r.state.position, model.carriesState ? 2 * T : T)

        var replay = before
        let draws = try LanguageModelReference.draws(model, B: B, T: T, training: true, rng: &replay)
        XCTAssertEqual(replay, rng, "\(mixer): the reference replays exactly the model's draws")
        let refState = state.map { LanguageModelReference.State($0, config: model.config) }
        let slices = store.slices
        func loss(_ values: [Double]) -> Double {
            func p(_ name: String) -> [Double] { Array(values[slices.first { $0.name == name }!.range]) }
            let out = LanguageModelReference.forward(model.config, p: p, tokens: tokens2, B: B, state: refState, draws: draws)
            return LayersReference.softmaxCrossEntropy(out.logits, targets: targets2, classes: 256)
        }
        let values = store.values.asDouble
        assertSpecClose([r.loss], [loss(values)], "\(mixer) loss")

        // Central differences over the checked parameters.
        let indices = checkedIndices(store, rng: &rng)
        var xp = values
        var fd: [Double] = [], analytic: [Float] = []
        let h = 1e-6
        for i in indices {
            xp[i] = values[i] + h
            let fp = loss(xp)
            xp[i] = values[i] - h
            let fm = loss(xp)
            xp[i] = values[i]
            fd.append((fp - fm) / (2 * h))
            analytic.append(store.gradients[i])
        }
        assertSpecClose(analytic, fd, "\(mixer) gradients (\(indices.count) of \(store.count))")
        print("  \(mixer)\(tied ? " tied" : "")\(positionalEncoding ? " +PE" : ""): loss \(r.loss), \(indices.count) gradients, max|analytic - fd| = \(maxAbsDifference(analytic, fd)), max|fd| = \(fd.map(abs).max()!)")
    }

    func testSoftmax() throws { try check(.softmax, tied: true, positionalEncoding: true, seed: 1) }
    func testLinear() throws { try check(.linear, tied: true, seed: 2) }
    func testDelta() throws { try check(.delta, tied: false, seed: 3) }
    /// The delta rule with l2-normalised features in place of sum (`--normalization l2`).
    func testDeltaWithL2() throws { try check(.delta, tied: true, normalization: .l2, seed: 31) }
    /// The linear transformer's sum rule with sum-normalised features and its denominator.
    func testLinearWithSum() throws { try check(.linear, tied: false, normalization: .sum, seed: 32) }
    /// The delta rule on keys of both signs: identity phi, l2 normalisation (`--phi identity --normalization l2`).
    func testDeltaWithIdentityAndL2() throws { try check(.delta, tied: true, normalization: .l2, phi: .identity, seed: 34) }
    /// A favor mixer with more features than `favorFeatures` through the phi override.
    func testFavorDeltaWithPhiOverride() throws { try check(.favorDelta, tied: false, phi: .favor(features: 5), seed: 35) }
    func testDPFPSum() throws { try check(.dpfpSum, tied: true, positionalEncoding: true, seed: 4) }
    func testDPFPDelta() throws { try check(.dpfpDelta, tied: true, seed: 5) }
    func testFavorSum() throws { try check(.favorSum, tied: false, seed: 6) }
    func testFavorDelta() throws { try check(.favorDelta, tied: true, seed: 7) }
    func testDeltaNet() throws { try check(.deltaNet, tied: true, positionalEncoding: true, seed: 8) }
    func testGatedDeltaNet() throws { try check(.gatedDeltaNet, tied: false, seed: 9) }
}
