// Safetensors checkpoints: exact round trip, exact resume of a training
// run, every malformed file rejected with a message naming the file, and
// interchange with Python's `safetensors` (skipped when not installed).
import Foundation
import XCTest
import FWTestSupport

final class CheckpointTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("fwcheckpoint-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func path(_ name: String) -> String { directory + "/" + name }

    /// A tiny classifier: embedding -> layer norm -> linear -> tanh -> linear.
    private struct Model {
        var store = ParameterStore()
        let emb: Embedding, ln: LayerNorm, fc1: Linear, fc2: Linear
        init(seed: UInt64) {
            var rng = SeededRNG(seed: seed)
            emb = Embedding(8, 4, name: "emb", store: &store, rng: &rng)
            ln = LayerNorm(4, name: "ln", store: &store)
            fc1 = Linear(4, 5, name: "fc1", store: &store, rng: &rng)
            fc2 = Linear(5, 3, name: "fc2", store: &store, rng: &rng)
        }

        /// One training step on the examples `batch` of a fixed synthetic task; returns the loss.
        mutating func step(_ batch: [Int], adam: inout Adam, rng: inout SeededRNG) throws -> Float {
            let ids = batch.map { Int32($0 % 8) }
            let targets = batch.map { Int32(($0 * 7 + 1) % 3) }
            let e = try emb(ids, store)
            let (n, saved) = try ln(e, store)
            let h = try fc1(n, store)
            // A "dropout-like" use of the run's generator, so its state matters.
            var a = ActivationFunction.tanh(h)
            for i in 0..<a.count where rng.uniform() < 0.1 { a.storage[i] = 0 }
            let out = try SoftmaxCrossEntropy.forward(logits: try fc2(a, store), targets: targets)
            store.zeroGradients()
            let da = try fc2.backward(try SoftmaxCrossEntropy.backward(out, targets: targets), input: a, store: &store)
            let dh = try ActivationFunction.tanh.backward(da, output: a)
            let dn = try fc1.backward(dh, input: n, store: &store)
            try emb.backward(try ln.backward(dn, input: e, saved: saved, store: &store), ids: ids, store: &store)
            store.clipGradients(maxNorm: 1)
            adam.update(&store, learningRate: LearningRateSchedule.cosine(warmupSteps: 2, totalSteps: 8, minFactor: 0.1)
                .rate(base: 0.05, step: adam.step))
            return out.loss
        }
    }

    func testRoundTripIsBitExact() throws {
        var model = Model(seed: 1)
        var adam = Adam(learningRate: 0.01)
        var sampler = try MinibatchSampler(exampleCount: 20, batchSize: 6, seed: 9)
        var rng = SeededRNG(seed: 77)
        for _ in 0..<5 { _ = try model.step(sampler.nextBatch(), adam: &adam, rng: &rng) }
        let config = #"{"task": "toy", "lr": 0.01, "note": "quotes \" and , commas"}"#
        let state = TrainingState(step: 5, rng: rng, sampler: sampler.state, config: config)
        let file = path("ckpt.safetensors")
        try Checkpoint.write(to: file, store: model.store, optimizer: adam, state: state)

        var fresh = Model(seed: 2)          // other values, same layout
        var freshAdam = Adam(learningRate: 0.01)
        let loaded = try Checkpoint.read(file, into: &fresh.store, optimizer: &freshAdam)
        XCTAssertEqual(loaded, state)                            // step, RNG words, sampler, config
        XCTAssertEqual(loaded.rng.state.0, rng.state.0)
        XCTAssertEqual(fresh.store.values.map(\.bitPattern), model.store.values.map(\.bitPattern))
        XCTAssertEqual(freshAdam.m.map(\.bitPattern), adam.m.map(\.bitPattern))
        XCTAssertEqual(freshAdam.v.map(\.bitPattern), adam.v.map(\.bitPattern))
        XCTAssertEqual(freshAdam.step, 5)

        // Weights only (evaluation): Adam's tensors are skipped.
        var evalModel = Model(seed: 3)
        let meta = try Checkpoint.readParameters(file, into: &evalModel.store)
        XCTAssertEqual(evalModel.store.values, model.store.values)
        XCTAssertEqual(meta["step"], "5")
        XCTAssertEqual(meta["config"], config)
    }

    /// 8 steps straight equal 4 steps, a checkpoint, a fresh process-like
    /// restore (new model, optimiser, generator, sampler) and 4 more: bit for bit.
    func testResumeContinuesBitExactly() throws {
        func run(_ steps: Int, model: inout Model, adam: inout Adam, sampler: inout MinibatchSampler,
                 rng: inout SeededRNG) throws -> [Float] {
            try (0..<steps).map { _ in try model.step(sampler.nextBatch(), adam: &adam, rng: &rng) }
        }
        var m1 = Model(seed: 1), a1 = Adam(), r1 = SeededRNG(seed: 5)
        var s1 = try MinibatchSampler(exampleCount: 10, batchSize: 4, seed: 3)
        let straight = try run(8, model: &m1, adam: &a1, sampler: &s1, rng: &r1)
        XCTAssertLessThan(straight.last!, straight.first!, "the toy task trains: \(straight)")

        var m2 = Model(seed: 1), a2 = Adam(), r2 = SeededRNG(seed: 5)
        var s2 = try MinibatchSampler(exampleCount: 10, batchSize: 4, seed: 3)
        var losses = try run(4, model: &m2, adam: &a2, sampler: &s2, rng: &r2)
        let file = path("resume.safetensors")
        try Checkpoint.write(to: file, store: m2.store, optimizer: a2,
                             state: TrainingState(step: 4, rng: r2, sampler: s2.state, config: "{}"))

        var m3 = Model(seed: 42), a3 = Adam()
        let state = try Checkpoint.read(file, into: &m3.store, optimizer: &a3)
        var r3 = state.rng
        var s3 = try MinibatchSampler(restoring: XCTUnwrap(state.sampler))
        losses += try run(4, model: &m3, adam: &a3, sampler: &s3, rng: &r3)
        XCTAssertEqual(losses.map(\.bitPattern), straight.map(\.bitPattern))
        XCTAssertEqual(m3.store.values.map(\.bitPattern), m1.store.values.map(\.bitPattern))
    }

    // MARK: malformed files

    /// A valid two-tensor file ("a" [2] then "b" [1]) as bytes, for cutting up.
    private func bytes(header: String, data: [UInt8]) -> [UInt8] {
        let h = Array(header.utf8)
        var out: [UInt8] = []
        for k in 0..<8 { out.append(UInt8((UInt64(h.count) >> (8 * UInt64(k))) & 0xFF)) }
        return out + h + data
    }

    private let twelveBytes = [UInt8](repeating: 0, count: 12)

    private func expectFileError(_ bytes: [UInt8], _ expected: String, name: String = "bad.safetensors",
                                 file: StaticString = #filePath, line: UInt = #line) {
        let p = path(name)
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        do {
            _ = try SafeTensors.read(p)
            XCTFail("accepted a file that should fail with: \(expected)", file: file, line: line)
        } catch let error as FWError {
            guard case let .file(path, reason) = error else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertEqual(path, p, file: file, line: line)
            XCTAssertTrue("\(error)".hasPrefix(p + ": "), file: file, line: line)
            XCTAssertTrue(reason.contains(expected), "'\(reason)' does not contain '\(expected)'", file: file, line: line)
        } catch {
            XCTFail("\(error)", file: file, line: line)
        }
    }

    func testMalformedFilesAreRejectedNamingTheFile() {
        let good = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        XCTAssertNoThrow(try SafeTensors.decode(bytes(header: good, data: twelveBytes), name: "good"))

        expectFileError([1, 0, 0], "truncated file: 3 bytes")
        expectFileError(bytes(header: good, data: []).dropLast(5).map { $0 }, "header length 108 runs beyond the end of the file (111 bytes)")
        expectFileError(bytes(header: good, data: Array(twelveBytes.prefix(10))),
                        "tensor 'b': data_offsets [8, 12] out of range of the 10 data bytes (truncated file?)")
        expectFileError(bytes(header: "{\"a\": [1, 2", data: []), "header is not valid JSON")
        expectFileError(bytes(header: "[1, 2]", data: []), "header is not a JSON object")
        expectFileError(bytes(header: #"{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}"#, data: Array(twelveBytes.prefix(8))),
                        "tensor 'a': unknown dtype 'Q7'")
        expectFileError(bytes(header: #"{"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}"#, data: Array(twelveBytes.prefix(8))),
                        "tensor 'a': dtype I32 is not supported (F32 or F64)")
        expectFileError(bytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,0]}}"#, data: twelveBytes),
                        "tensor 'a': data_offsets [4, 0] out of range")
        expectFileError(bytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: twelveBytes),
                        "tensors 'a' and 'b' overlap in the data buffer")
        expectFileError(bytes(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, data: twelveBytes),
                        "tensor 'a': data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 12")
        expectFileError(bytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: twelveBytes),
                        "4 trailing bytes after the last tensor")
        expectFileError(bytes(header: #"{"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, data: twelveBytes),
                        "hole in the data buffer: bytes [0, 8) before tensor 'b' belong to no tensor")
        expectFileError(bytes(header: #"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, data: Array(twelveBytes.prefix(8))),
                        "tensor 'a': shape is not a list of non-negative integers")
        // A shape written with a fraction is not a shape, even when the value is whole.
        expectFileError(bytes(header: #"{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, data: Array(twelveBytes.prefix(8))),
                        "tensor 'a': shape is not a list of non-negative integers")
        expectFileError(bytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}}"#, data: Array(twelveBytes.prefix(8))),
                        "tensor 'a': data_offsets is not a pair of integers")
        expectFileError(bytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, data: Array(twelveBytes.prefix(8))),
                        "tensor 'a': data_offsets is not a pair of integers")
        expectFileError(bytes(header: #"{"__metadata__":{"step":5}}"#, data: []), "__metadata__ 'step' is not a string")
        // Not a file at all.
        XCTAssertThrowsError(try SafeTensors.read(path("missing.safetensors"))) { error in
            XCTAssertEqual(error as? FWError, .file(path: path("missing.safetensors"), reason: "no such file"))
        }
    }

    func testCheckpointsOfAnotherModelAreRejectedAndLeaveTheModelUntouched() throws {
        let model = Model(seed: 1)
        let file = path("model.safetensors")
        try Checkpoint.write(to: file, store: model.store, optimizer: Adam(),
                             state: TrainingState(step: 0, rng: SeededRNG(seed: 1)))

        func expect(_ store: ParameterStore, _ expected: String, in filePath: String? = nil, line: UInt = #line) {
            let p = filePath ?? file
            var target = store
            var adam = Adam()
            let before = target.values
            do {
                _ = try Checkpoint.read(p, into: &target, optimizer: &adam)
                XCTFail("accepted: \(expected)", line: line)
            } catch let error as FWError {
                XCTAssertEqual(error, .file(path: p, reason: expected), line: line)
            } catch { XCTFail("\(error)", line: line) }
            XCTAssertEqual(target.values, before, "a failed read leaves the store as it was", line: line)
            XCTAssertEqual(adam.step, 0, line: line)
        }

        // The model needs a parameter the file does not have.
        var bigger = Model(seed: 1).store
        bigger.register("extra.bias", shape: [2], initializer: .zeros)
        expect(bigger, "missing tensor 'extra.bias' that the model needs")
        // Same names, another shape.
        var rng = SeededRNG(seed: 1)
        var reshaped = ParameterStore()
        _ = Embedding(9, 4, name: "emb", store: &reshaped, rng: &rng)
        _ = LayerNorm(4, name: "ln", store: &reshaped)
        _ = Linear(4, 5, name: "fc1", store: &reshaped, rng: &rng)
        _ = Linear(5, 3, name: "fc2", store: &reshaped, rng: &rng)
        expect(reshaped, "tensor 'emb.weight' has shape [8, 4], the model's is [9, 4]")
        // The file has a tensor the model lacks.
        var smaller = ParameterStore()
        _ = Embedding(8, 4, name: "emb", store: &smaller, rng: &rng)
        expect(smaller, "tensor 'ln.weight' is not a parameter of this model")

        // Adam's moments missing (a weights-only export): resume needs them.
        var entries: [SafeTensors.Entry] = []
        for s in model.store { entries.append(SafeTensors.Entry(name: s.name, shape: s.shape, values: model.store.values[s.range])) }
        let weightsOnly = path("weights.safetensors")
        try SafeTensors.write(entries, metadata: ["step": "1", "adam.step": "1", "rng": "1,2,3,4", "config": ""], to: weightsOnly)
        expect(model.store, "missing tensor 'adam.m.emb.weight' that the model needs", in: weightsOnly)
        var evalStore = Model(seed: 5).store
        XCTAssertNoThrow(try Checkpoint.readParameters(weightsOnly, into: &evalStore))
        XCTAssertEqual(evalStore.values, model.store.values)

        // Metadata problems.
        func withMetadata(_ meta: [String: String], _ name: String) throws -> String {
            var all = entries
            for s in model.store {
                all.append(SafeTensors.Entry(name: "adam.m.\(s.name)", shape: s.shape, values: model.store.values[s.range]))
                all.append(SafeTensors.Entry(name: "adam.v.\(s.name)", shape: s.shape, values: model.store.values[s.range]))
            }
            let p = path(name)
            try SafeTensors.write(all, metadata: meta, to: p)
            return p
        }
        let base = ["step": "3", "adam.step": "3", "rng": "1,2,3,4", "config": "{}"]
        var m = base; m["rng"] = "1,2,3"
        expect(model.store, "metadata 'rng' is '1,2,3', not four decimal 64-bit words", in: try withMetadata(m, "rng.safetensors"))
        m = base; m["step"] = nil
        expect(model.store, "missing metadata 'step'", in: try withMetadata(m, "step.safetensors"))
        m = base; m["adam.step"] = "-1"
        expect(model.store, "metadata 'adam.step' is '-1', not a non-negative decimal integer", in: try withMetadata(m, "adam.safetensors"))
        m = base; m["sampler.examples"] = "10"; m["sampler.batch_size"] = "4"; m["sampler.drop_last"] = "true"
        m["sampler.epoch"] = "0"; m["sampler.position"] = "11"; m["sampler.epoch_start"] = "1,2,3,4"
        expect(model.store, "sampler state: MinibatchSampler: epoch 0, position 11 out of range for 10 examples",
               in: try withMetadata(m, "sampler.safetensors"))
        // Counters beyond 2^53 (where `+ 1` stops being exact) and a sampler of more
        // examples than it can shuffle are refused without allocating anything.
        m["sampler.epoch"] = String(Int.max)
        expect(model.store, "metadata 'sampler.epoch' is \(Int.max), beyond the largest count a checkpoint may hold (2^53)",
               in: try withMetadata(m, "epoch.safetensors"))
        m["sampler.epoch"] = "0"; m["sampler.examples"] = String(1 << 40)
        expect(model.store, "sampler state: MinibatchSampler: need 1...2147483647 examples and a positive batch size, got 1099511627776 examples, batch 4",
               in: try withMetadata(m, "examples.safetensors"))
        m["sampler.examples"] = "10"
        var huge = base; huge["adam.step"] = "9223372036854775807"
        expect(model.store, "metadata 'adam.step' is 9223372036854775807, beyond the largest count a checkpoint may hold (2^53)",
               in: try withMetadata(huge, "adamstep.safetensors"))
        // A NaN or Inf parameter is named, tensor and index, before the model changes.
        var poisoned = entries
        var w = model.store.values[try model.store.requireSlice("fc1.weight").range]
        w[w.startIndex + 5] = .infinity
        poisoned[poisoned.firstIndex { $0.name == "fc1.weight" }!] = SafeTensors.Entry(
            name: "fc1.weight", shape: try model.store.requireSlice("fc1.weight").shape, values: w)
        let poisonedPath = path("inf.safetensors")
        try SafeTensors.write(poisoned, metadata: base, to: poisonedPath)
        var evalTarget = model.store
        XCTAssertThrowsError(try Checkpoint.readParameters(poisonedPath, into: &evalTarget)) { error in
            XCTAssertEqual(error as? FWError, .file(path: poisonedPath, reason: "tensor 'fc1.weight': non-finite value inf at index [1, 1]"))
        }
        XCTAssertEqual(evalTarget.values, model.store.values)
        m["sampler.position"] = "8"
        var ok = model.store, adam = Adam()
        let state = try Checkpoint.read(try withMetadata(m, "sampler-ok.safetensors"), into: &ok, optimizer: &adam)
        XCTAssertEqual(state.sampler?.position, 8)
        XCTAssertEqual(state.rng, SeededRNG(state: (1, 2, 3, 4)))
    }

    // MARK: Python interchange

    private func python(_ script: String) throws -> String {
        let which = Process()
        which.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        which.arguments = ["python3", "-c", "import safetensors, numpy"]
        which.standardOutput = FileHandle.nullDevice
        which.standardError = FileHandle.nullDevice
        do { try which.run() } catch { throw XCTSkip("python3 is not available") }
        which.waitUntilExit()
        if which.terminationStatus == 127 { throw XCTSkip("python3 is not available") }
        if which.terminationStatus != 0 { throw XCTSkip("python3 has no safetensors/numpy (pip install safetensors numpy)") }

        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, errors)
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testPythonSafetensorsReadsOurCheckpoints() throws {
        var model = Model(seed: 1)
        var adam = Adam()
        var rng = SeededRNG(seed: 3)
        _ = try model.step([0, 1, 2, 3], adam: &adam, rng: &rng)
        let file = path("py.safetensors")
        try Checkpoint.write(to: file, store: model.store, optimizer: adam,
                             state: TrainingState(step: 1, rng: rng, config: #"{"lr": 0.001}"#))
        let out = try python("""
            import json
            from safetensors import safe_open
            from safetensors.numpy import load_file
            d = load_file("\(file)")
            with safe_open("\(file)", framework="numpy") as f:
                meta = f.metadata()
            w = d["fc1.weight"]
            print(json.dumps({"names": sorted(d.keys()), "dtype": str(w.dtype), "shape": list(w.shape),
                              "w": [float(x) for x in w.ravel()], "m0": float(d["adam.m.fc2.bias"][0]),
                              "step": meta["step"], "rng": meta["rng"], "config": meta["config"]}))
            """)
        let result = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        XCTAssertEqual(result["names"] as? [String], (model.store.names + model.store.names.map { "adam.m." + $0 }
            + model.store.names.map { "adam.v." + $0 }).sorted())
        XCTAssertEqual(result["dtype"] as? String, "float32")
        XCTAssertEqual(result["shape"] as? [Int], [5, 4])
        XCTAssertEqual((result["w"] as? [Double])?.map(Float.init), try model.store.tensor("fc1.weight").storage)
        XCTAssertEqual((result["m0"] as? Double).map(Float.init), adam.moments(of: model.fc2.bias!).m.storage[0])
        XCTAssertEqual(result["step"] as? String, "1")
        XCTAssertEqual(result["rng"] as? String, "\(rng.state.0),\(rng.state.1),\(rng.state.2),\(rng.state.3)")
        XCTAssertEqual(result["config"] as? String, #"{"lr": 0.001}"#)
    }

    func testWeReadFilesWrittenByPython() throws {
        let file = path("from-python.safetensors")
        _ = try python("""
            import numpy as np
            from safetensors.numpy import save_file
            save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
                       "d": np.array([1.5, -2.25], dtype=np.float64),
                       "s": np.array(3.0, dtype=np.float32)}, "\(file)", metadata={"k": "v"})
            """)
        let contents = try SafeTensors.read(file)
        XCTAssertEqual(contents.tensors["w"], Tensor(shape: [2, 3], storage: [0, 0.25, 0.5, 0.75, 1, 1.25]))
        XCTAssertEqual(contents.tensors["d"], Tensor(shape: [2], storage: [1.5, -2.25]))
        XCTAssertEqual(contents.tensors["s"], Tensor(shape: [], storage: [3]))
        XCTAssertEqual(contents.metadata, ["k": "v"])
    }
}
