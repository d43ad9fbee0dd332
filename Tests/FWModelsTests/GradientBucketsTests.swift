import XCTest
import FWTestSupport

/// The buckets of a data-parallel step: every gradient in exactly one bucket,
/// each block's parameters in its own.
final class GradientBucketsTests: XCTestCase {
    func testBucketsPartitionTheGradients() throws {
        var c = LanguageModelConfig(mixer: .delta)
        c.layers = 3; c.modelSize = 8; c.heads = 2; c.feedForwardSize = 16
        var store = ParameterStore()
        var rng = SeededRNG(seed: 1)
        _ = try CharLanguageModel(config: c, store: &store, rng: &rng)
        let buckets = GradientBuckets(store: store, layers: 3)
        var owner = [Int](repeating: -2, count: store.count)
        for (l, runs) in buckets.blockRuns.enumerated() {
            XCTAssertFalse(runs.isEmpty, "block \(l) has no bucket")
            for r in runs { for i in r { XCTAssertEqual(owner[i], -2, "index \(i) in two buckets"); owner[i] = l } }
        }
        for r in buckets.restRuns { for i in r { XCTAssertEqual(owner[i], -2); owner[i] = -1 } }
        XCTAssertFalse(owner.contains(-2), "a gradient in no bucket")
        for slice in store {
            let expected = (0..<3).first { slice.name.hasPrefix("block\($0).") } ?? -1
            XCTAssertTrue(slice.range.allSatisfy { owner[$0] == expected }, slice.name)
        }
        // A block's parameters are registered together: one run each.
        XCTAssertEqual(buckets.blockRuns.map(\.count), [1, 1, 1])
    }
}
