// The flat parameter store: layout, lookup, Tensor access, initialisers.
import XCTest
import FWTestSupport

final class ParameterStoreTests: XCTestCase {
    func testRegistrationLayoutLookupAndTensorAccess() throws {
        var rng = SeededRNG(seed: 5)
        var s = ParameterStore()
        let w = s.register("rnn.W", shape: [2, 3], initializer: .normal(std: 0.5), rng: &rng)
        let b = s.register("rnn.b", shape: [3], initializer: .constant(0.25))
        let g = s.register("ln.g", shape: [4], initializer: .ones)
        XCTAssertEqual(s.count, 13)
        XCTAssertEqual(s.gradients.count, 13)
        XCTAssertEqual([w.offset, b.offset, g.offset], [0, 6, 9])
        XCTAssertEqual([w.index, b.index, g.index], [0, 1, 2])
        XCTAssertEqual(s.map(\.name), ["rnn.W", "rnn.b", "ln.g"])   // registration order
        XCTAssertEqual(s.slice(named: "rnn.b"), b)
        XCTAssertNil(s.slice(named: "nope"))
        XCTAssertEqual(try s.tensor("rnn.b").storage, [0.25, 0.25, 0.25])
        XCTAssertEqual(try s.tensor("ln.g"), Tensor(shape: [4], repeating: 1))
        XCTAssertThrowsError(try s.tensor("nope")) { error in
            XCTAssertEqual("\(error)", "no parameter named 'nope' (have: rnn.W, rnn.b, ln.g)")
        }
        try s.setTensor("rnn.b", Tensor(shape: [3], storage: [1, 2, 3]))
        XCTAssertEqual(Array(s.values[6..<9]), [1, 2, 3])
        XCTAssertThrowsError(try s.setTensor("rnn.b", Tensor(shape: [1, 3]))) { error in
            XCTAssertEqual(error as? FWError, .shapeMismatch(tensor: "rnn.b", expected: "[3]", got: [1, 3]))
        }
        // Same seed, same values.
        var rng2 = SeededRNG(seed: 5)
        var s2 = ParameterStore()
        s2.register("rnn.W", shape: [2, 3], initializer: .normal(std: 0.5), rng: &rng2)
        XCTAssertEqual(Array(s.values[0..<6]), s2.values)

        // Pointer access by slice handle; gradients accumulate until zeroGradients.
        s.withPointers { p in
            p.gradient(b)[1] += 2
            p.gradient(b)[1] += 3
            p.value(g)[0] = 7
        }
        XCTAssertEqual(try s.gradientTensor("rnn.b").storage, [0, 5, 0])
        XCTAssertEqual(s.values[9], 7)
        s.zeroGradients()
        XCTAssertEqual(s.gradients, [Float](repeating: 0, count: 13))
    }

    func testUniformFanInBound() {
        var rng = SeededRNG(seed: 6)
        var s = ParameterStore()
        s.register("w", shape: [50, 16], initializer: .uniformFanIn, rng: &rng)
        XCTAssertTrue(s.values.allSatisfy { abs($0) <= 0.25 })
        XCTAssertGreaterThan(s.values.map { abs($0) }.max()!, 0.2)
    }
}
