import XCTest
import FastWeights

/// The library example of README.md, compiled and run as it stands there.
final class ReadmeExampleTests: XCTestCase {
    func testReadmeExample() throws {
        // --- README example begins ---
        var rng = SeededRNG(seed: 0)
        let (B, H, T, d) = (2, 4, 100, 32)
        let q = rng.normalTensor([B, H, T, d]), k = rng.normalTensor([B, H, T, d])
        let v = rng.normalTensor([B, H, T, d])
        let beta = rng.uniformTensor([B, H, T])

        // The delta rule with DPFP features and sum normalisation (Schlag et al. 2021).
        let op = try FastWeightProgrammer(rule: .delta, featureMap: .dpfp(order: 1),
                                          normalization: .sum, algorithm: .chunked(size: 64))
        let out = try op.forward(q: q, k: k, v: v, beta: beta)      // y [B, H, T, d], state [B, H, d, 2d]
        let dy = rng.normalTensor(out.y.shape)                      // dL/dy from the layers above
        let grads = try FastWeightProgrammer.backward(dy: dy, cache: out.cache!)
        print(grads.dq.shape, grads.dbeta!.shape, BLASCore.name)
        // --- README example ends ---
        XCTAssertEqual(out.y.shape, [B, H, T, d])
        XCTAssertEqual(out.state.shape, [B, H, d, 2 * d])
        XCTAssertEqual(grads.dq.shape, [B, H, T, d])
        XCTAssertTrue(out.y.isFinite && grads.dk.isFinite)
    }
}
