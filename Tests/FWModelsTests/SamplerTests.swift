// The seeded minibatch sampler: reproducible, every epoch a permutation,
// and resumable exactly from its saved state.
import XCTest
import FWTestSupport

final class SamplerTests: XCTestCase {
    func testSameSeedSameBatchesAndEpochsArePermutations() throws {
        var a = try MinibatchSampler(exampleCount: 10, batchSize: 3, seed: 42, dropLast: false)
        var b = try MinibatchSampler(exampleCount: 10, batchSize: 3, seed: 42, dropLast: false)
        var c = try MinibatchSampler(exampleCount: 10, batchSize: 3, seed: 43, dropLast: false)
        XCTAssertEqual(a.batchesPerEpoch, 4)
        var epochs: [[Int]] = []
        var differs = false
        for epoch in 0..<3 {
            var seen: [Int] = []
            for k in 0..<4 {
                let batch = a.nextBatch()
                XCTAssertEqual(batch, b.nextBatch())
                if batch != c.nextBatch() { differs = true }
                XCTAssertEqual(batch.count, k < 3 ? 3 : 1)        // the short last batch
                XCTAssertEqual(a.state.epoch, epoch)
                seen += batch
            }
            XCTAssertEqual(seen.sorted(), Array(0..<10))
            epochs.append(seen)
        }
        XCTAssertTrue(differs, "another seed gives other batches")
        XCTAssertNotEqual(epochs[0], epochs[1], "each epoch is reshuffled")
        XCTAssertNotEqual(epochs[0], Array(0..<10))
    }

    func testDropLastSkipsTheShortBatch() throws {
        var s = try MinibatchSampler(exampleCount: 10, batchSize: 4, seed: 1)
        XCTAssertEqual(s.batchesPerEpoch, 2)
        for _ in 0..<7 { XCTAssertEqual(s.nextBatch().count, 4) }
        XCTAssertEqual(s.state.epoch, 3)
        XCTAssertThrowsError(try MinibatchSampler(exampleCount: 3, batchSize: 4, seed: 1)) { error in
            XCTAssertEqual("\(error)", "MinibatchSampler: batch size 4 exceeds the 3 examples and dropLast would skip them all")
        }
    }

    func testExactResumeFromSavedStateAcrossEpochBoundaries() throws {
        for cut in [0, 1, 3, 4, 5, 9] {   // before, inside and at the ends of epochs (3 batches each)
            var original = try MinibatchSampler(exampleCount: 7, batchSize: 2, seed: 99, dropLast: false)
            for _ in 0..<cut { _ = original.nextBatch() }
            let saved = original.state
            var resumed = try MinibatchSampler(restoring: saved)
            XCTAssertEqual(resumed, original, "cut \(cut)")
            for _ in 0..<10 { XCTAssertEqual(resumed.nextBatch(), original.nextBatch(), "cut \(cut)") }
            XCTAssertEqual(resumed.state, original.state)
        }
    }

    func testBoundedDrawsAreUniform() {
        // 60,000 draws below 6: every value near 10,000 (a modulo or off-by-one bug shows).
        var rng = SeededRNG(seed: 7)
        var counts = [Int](repeating: 0, count: 6)
        for _ in 0..<60_000 { counts[Int(MinibatchSampler.uniformBelow(6, &rng))] += 1 }
        XCTAssertTrue(counts.allSatisfy { abs($0 - 10_000) < 500 }, "\(counts)")
    }
}
