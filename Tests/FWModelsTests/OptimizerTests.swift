// Adam against a hand-computed two-step update, gradient clipping by
// global norm, and the learning-rate schedules at chosen steps.
import XCTest
import FWTestSupport

final class OptimizerTests: XCTestCase {
    private func store(values: [Float], name: String = "p") -> ParameterStore {
        var s = ParameterStore()
        s.register(name, shape: [values.count], initializer: .values(values))
        return s
    }

    /// lr 0.1, betas (0.9, 0.999), eps 1e-8; three parameters with gradients
    /// (0.5, -0.25), (-3, 1), (0, 2) at steps 1 and 2. By hand for the first:
    ///
    ///     t=1: m = 0.05, v = 0.00025, mhat = 0.05/0.1 = 0.5, vhat = 0.00025/0.001 = 0.25
    ///          p = 1 - 0.1 * 0.5/(0.5 + 1e-8)                       = 0.900000002
    ///     t=2: m = 0.9*0.05 + 0.1*(-0.25) = 0.02, v = 0.999*0.00025 + 0.001*0.0625 = 0.00031225
    ///          mhat = 0.02/0.19 = 0.1052632, vhat = 0.00031225/0.001999 = 0.1562031
    ///          p = 0.900000002 - 0.1 * 0.1052632/(0.3952254 + 1e-8) = 0.8733663
    func testAdamTwoStepsMatchHandComputation() {
        var s = store(values: [1, -2, 0.5])
        var adam = Adam(learningRate: 0.1, betas: (0.9, 0.999), eps: 1e-8)
        try! s.setGradientTensor("p", Tensor(shape: [3], storage: [0.5, -3, 0]))
        adam.update(&s)
        XCTAssertEqual(adam.step, 1)
        assertClose(s.values, [0.900000002, -1.9000000003333333, 0.5], "p after step 1")
        assertClose(adam.m, [0.05, -0.3, 0], "m after step 1")
        assertClose(adam.v, [0.00025, 0.009, 0], "v after step 1")
        s.zeroGradients()
        try! s.setGradientTensor("p", Tensor(shape: [3], storage: [-0.25, 1, 2]))
        adam.update(&s)
        XCTAssertEqual(adam.step, 2)
        assertClose(s.values, [0.8733662987078463, -1.8599781433169098, 0.42558631816935444], "p after step 2")
        assertClose(adam.m, [0.02, -0.17, 0.2], "m after step 2")
        assertClose(adam.v, [0.00031225, 0.009991, 0.004], "v after step 2")
        // The gradients are the caller's to zero: update leaves them.
        XCTAssertEqual(s.gradients, [-0.25, 1, 2])
    }

    func testAdamLearningRateOverrideAndDecoupledWeightDecay() {
        // One step with g = 0.5: mhat/sqrt(vhat) = 1, so p = p0 - lr * (1 + wd * p0).
        var s = store(values: [1])
        var adam = Adam(learningRate: 123, betas: (0.9, 0.999), eps: 0, weightDecay: 0.1)
        try! s.setGradientTensor("p", Tensor(shape: [1], storage: [0.5]))
        adam.update(&s, learningRate: 0.1)
        assertClose(s.values, [1 - 0.1 * 1.1], "AdamW step")
    }

    func testAdamMomentsShareTheStoreLayout() {
        var rng = SeededRNG(seed: 3)
        var s = ParameterStore()
        let a = s.register("a", shape: [2, 2], initializer: .normal(std: 1), rng: &rng)
        let b = s.register("b", shape: [3], initializer: .zeros)
        var adam = Adam()
        XCTAssertEqual(adam.moments(of: b).m.storage, [0, 0, 0])
        try! s.setGradientTensor("b", Tensor(shape: [3], storage: [1, 2, 3]))
        adam.update(&s)
        XCTAssertEqual(adam.m.count, s.count)
        XCTAssertEqual(adam.moments(of: a).m.storage, [0, 0, 0, 0])
        assertClose(adam.moments(of: b).m.storage, [0.1, 0.2, 0.3], "m of b")
    }

    func testClippingByGlobalNorm() {
        var s = ParameterStore()
        s.register("a", shape: [1], initializer: .zeros)
        s.register("b", shape: [1], initializer: .zeros)
        try! s.setGradientTensor("a", Tensor(shape: [1], storage: [3]))
        try! s.setGradientTensor("b", Tensor(shape: [1], storage: [-4]))
        XCTAssertEqual(s.gradientNorm(), 5)
        XCTAssertEqual(s.clipGradients(maxNorm: 10), 5)        // below the bound: untouched
        XCTAssertEqual(s.gradients, [3, -4])
        XCTAssertEqual(s.clipGradients(maxNorm: 1), 5)         // returns the norm before clipping
        assertClose(s.gradients, [0.6, -0.8], "clipped gradients")
        XCTAssertEqual(Double(s.gradientNorm()), 1, accuracy: 1e-6)
        // A NaN gradient: reported as the norm, nothing scaled.
        try! s.setGradientTensor("a", Tensor(shape: [1], storage: [.nan]))
        XCTAssertTrue(s.clipGradients(maxNorm: 1).isNaN)
        XCTAssertEqual(s.gradients[1], -0.8)
    }

    func testLearningRateSchedules() {
        func rates(_ schedule: LearningRateSchedule, _ steps: [Int]) -> [Double] {
            steps.map { Double(schedule.rate(base: 2, step: $0)) }
        }
        XCTAssertEqual(rates(.constant, [0, 5, 1000]), [2, 2, 2])
        XCTAssertEqual(rates(.linearWarmup(steps: 4), [0, 1, 2, 3, 4, 100]), [0.5, 1, 1.5, 2, 2, 2])
        assertClose(rates(.cosine(warmupSteps: 2, totalSteps: 10, minFactor: 0.1), [0, 1, 2, 6, 10, 50]).map(Float.init),
                    [1, 2, 2, 2 * (0.1 + 0.9 * 0.5), 0.2, 0.2], "cosine")
        XCTAssertEqual(rates(.cosine(warmupSteps: 0, totalSteps: 4, minFactor: 0), [0, 2, 4]).map { ($0 * 1e6).rounded() / 1e6 }, [2, 1, 0])
        XCTAssertEqual(rates(.step(every: 3, factor: 0.5), [0, 2, 3, 5, 6, 9]), [2, 2, 1, 1, 0.5, 0.25])
    }

    private func assertClose(_ a: [Float], _ b: [Double], _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, label, file: file, line: line)
        for (x, y) in zip(a, b) where abs(Double(x) - y) > 1e-6 * max(1, abs(y)) {
            XCTFail("\(label): \(a) vs \(b)", file: file, line: line)
            return
        }
    }
}
