import FWTestSupport
import XCTest

/// Snapshots in checkpoints (extra parameter sets such as the best
/// parameters so far): written as `<prefix>.<name>`, read back exactly, and
/// accepted by `Checkpoint.read` only when the metadata declares them.
final class CheckpointSnapshotTests: XCTestCase {
    func testSnapshotRoundTripAndUndeclaredTensorsRejected() throws {
        var rng = SeededRNG(seed: 5)
        var store = ParameterStore()
        store.register("a", shape: [2, 3], initializer: .normal(std: 1), rng: &rng)
        store.register("b", shape: [4], initializer: .normal(std: 1), rng: &rng)
        let best = store.values.map { $0 * 2 + 1 }
        let path = NSTemporaryDirectory() + "fw-snap-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let state = TrainingState(step: 3, rng: rng, config: "{}")
        try Checkpoint.write(to: path, store: store, optimizer: Adam(), state: state,
                             snapshots: [(prefix: "best", values: best)])

        XCTAssertEqual(try Checkpoint.readSnapshot(path, prefix: "best", store: store), best)
        XCTAssertNil(try Checkpoint.readSnapshot(path, prefix: "other", store: store))
        var restored = ParameterStore()
        var r2 = SeededRNG(seed: 99)
        restored.register("a", shape: [2, 3], initializer: .zeros, rng: &r2)
        restored.register("b", shape: [4], initializer: .zeros, rng: &r2)
        var adam = Adam()
        XCTAssertEqual(try Checkpoint.read(path, into: &restored, optimizer: &adam), state)
        XCTAssertEqual(restored.values, store.values)

        // The same tensors without the metadata that declares them: a foreign file.
        var contents = try SafeTensors.read(path)
        contents.metadata["snapshots"] = nil
        try SafeTensors.write(contents.names.map { SafeTensors.Entry(name: $0, tensor: contents.tensors[$0]!) },
                              metadata: contents.metadata, to: path)
        XCTAssertNil(try Checkpoint.readSnapshot(path, prefix: "best", store: store))
        XCTAssertThrowsError(try Checkpoint.read(path, into: &restored, optimizer: &adam)) { error in
            guard case let FWError.file(_, reason)? = error as? FWError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("best.a") || reason.contains("best.b"), reason)
        }
    }
}
