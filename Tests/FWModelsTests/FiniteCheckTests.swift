// Non-finite detection: messages name the step and the tensor.
import XCTest
import FWTestSupport

final class FiniteCheckTests: XCTestCase {
    private func message(_ body: () throws -> Void) -> String? {
        do { try body() } catch let error as FWError {
            if case .nonFinite = error { return "\(error)" }
            return "wrong case: \(error)"
        } catch { return "wrong error: \(error)" }
        return nil
    }

    func testLossMessages() {
        XCTAssertNil(message { try FiniteCheck.loss(1.5, step: 3) })
        XCTAssertEqual(message { try FiniteCheck.loss(.nan, step: 123) }, "step 123: loss is NaN")
        XCTAssertEqual(message { try FiniteCheck.loss(.infinity, step: 7) }, "step 7: loss is +Inf")
        XCTAssertEqual(message { try FiniteCheck.loss(-.infinity, step: 8) }, "step 8: loss is -Inf")
    }

    func testStoreMessagesNameTheTensor() {
        var s = ParameterStore()
        s.register("embed.weight", shape: [3, 2], initializer: .ones)
        s.register("rnn.W", shape: [2, 2], initializer: .ones)
        XCTAssertNil(message { try FiniteCheck.store(s, step: 1) })
        try! s.setGradientTensor("rnn.W", Tensor(shape: [2, 2], storage: [0, .infinity, .nan, 1]))
        XCTAssertEqual(message { try FiniteCheck.store(s, step: 123) }, "step 123: gradient of 'rnn.W' contains NaN")
        XCTAssertNil(message { try FiniteCheck.store(s, step: 123, gradients: false) })
        try! s.setTensor("embed.weight", Tensor(shape: [3, 2], storage: [0, 0, 0, 0, -.infinity, 0]))
        XCTAssertEqual(message { try FiniteCheck.store(s, step: 124) }, "step 124: parameter 'embed.weight' contains -Inf")
    }

    func testTensorMessage() {
        let t = Tensor(shape: [3], storage: [1, .infinity, 2])
        XCTAssertEqual(message { try FiniteCheck.tensor(t, step: 5, label: "logits") }, "step 5: logits contains +Inf")
        XCTAssertNil(message { try FiniteCheck.tensor(Tensor(shape: [2]), step: 5, label: "logits") })
    }
}
