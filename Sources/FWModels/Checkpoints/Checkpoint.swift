import FWCore

/// Training checkpoints as safetensors files (readable by Python's
/// `safetensors.numpy.load_file`).
///
/// Tensors (F32): every parameter under its own name, then Adam's moments
/// as `adam.m.<name>` and `adam.v.<name>`. Metadata (all strings; integers
/// in decimal):
///
/// ```
/// format              fastweights.checkpoint.v1
/// step                the training step
/// adam.step           Adam's update count (its bias correction)
/// rng                 the generator's four words, "w0,w1,w2,w3"
/// sampler.*           examples, batch_size, drop_last (true/false), epoch,
///                     position, epoch_start ("w0,w1,w2,w3")   (when there is a sampler)
/// config              the caller's free-form string (JSON by convention)
/// snapshots           comma-separated prefixes of extra parameter sets     (when there are any)
/// ```
///
/// Extra tensors that are not parameters (a language model's fast weights
/// carried from one segment to the next) are stored as `extra.<name>` and
/// read back with `readExtraTensors`.
///
/// Snapshots are extra copies of the parameters (e.g. the values with the
/// best validation error so far), stored as `<prefix>.<name>` tensors.
///
/// Writing is atomic. Reading checks the file completely before touching
/// the model, so a bad file leaves the store and optimiser as they were;
/// every problem is an `FWError.file` naming the file.
public enum Checkpoint {
    /// The `format` metadata value this version writes.
    public static let format = "fastweights.checkpoint.v1"

    /// Writes the parameters, Adam's moments and `state` to `path` atomically.
    /// `snapshots` are extra parameter sets in the store's flat layout, each
    /// written as `<prefix>.<name>` tensors (read back with `readSnapshot`).
    public static func write(to path: String, store: ParameterStore, optimizer: Adam, state: TrainingState,
                             snapshots: [(prefix: String, values: [Float])] = [],
                             extraTensors: [(name: String, tensor: Tensor)] = []) throws {
        var entries: [SafeTensors.Entry] = []
        for s in store {
            entries.append(SafeTensors.Entry(name: s.name, shape: s.shape, values: store.values[s.range]))
        }
        // Before the first update Adam has no moments yet: they are zeros.
        let m = optimizer.m.isEmpty ? [Float](repeating: 0, count: store.count) : optimizer.m
        let v = optimizer.v.isEmpty ? [Float](repeating: 0, count: store.count) : optimizer.v
        precondition(m.count == store.count, "Checkpoint.write: Adam has moments for \(m.count) numbers, the store \(store.count)")
        for s in store { entries.append(SafeTensors.Entry(name: "adam.m.\(s.name)", shape: s.shape, values: m[s.range])) }
        for s in store { entries.append(SafeTensors.Entry(name: "adam.v.\(s.name)", shape: s.shape, values: v[s.range])) }
        for snapshot in snapshots {
            precondition(snapshot.values.count == store.count && !snapshot.prefix.isEmpty && !snapshot.prefix.contains(","),
                         "Checkpoint.write: snapshot '\(snapshot.prefix)' has \(snapshot.values.count) numbers, the store \(store.count)")
            for s in store {
                entries.append(SafeTensors.Entry(name: "\(snapshot.prefix).\(s.name)", shape: s.shape, values: snapshot.values[s.range]))
            }
        }

        // Tensors that are not parameters (e.g. fast weights carried across segments).
        for e in extraTensors {
            entries.append(SafeTensors.Entry(name: extraPrefix + e.name, tensor: e.tensor))
        }

        var meta: [String: String] = [
            "format": format,
            "step": String(state.step),
            "adam.step": String(optimizer.step),
            "rng": words(state.rng),
            "config": state.config,
        ]
        if let s = state.sampler {
            meta["sampler.examples"] = String(s.exampleCount)
            meta["sampler.batch_size"] = String(s.batchSize)
            meta["sampler.drop_last"] = s.dropLast ? "true" : "false"
            meta["sampler.epoch"] = String(s.epoch)
            meta["sampler.position"] = String(s.position)
            meta["sampler.epoch_start"] = words(s.epochStart)
        }
        if !snapshots.isEmpty { meta["snapshots"] = snapshots.map(\.prefix).joined(separator: ",") }
        try SafeTensors.write(entries, metadata: meta, to: path)
    }

    /// Resumes training: loads every parameter into `store`, Adam's moments
    /// and step into `optimizer`, and returns the saved `TrainingState`.
    ///
    /// Throws `FWError.file` naming `path` for a malformed file (see
    /// `SafeTensors`), a tensor the model needs that is missing, a shape
    /// that differs from the model's, a tensor the model does not have, or
    /// missing or malformed metadata.
    public static func read(_ path: String, into store: inout ParameterStore, optimizer: inout Adam) throws -> TrainingState {
        let contents = try SafeTensors.read(path)
        let values = try gather(contents, prefix: "", store: store, path: path)
        let m = try gather(contents, prefix: "adam.m.", store: store, path: path)
        let v = try gather(contents, prefix: "adam.v.", store: store, path: path)
        try rejectUnknown(contents, store: store, path: path, allowAdam: true)
        let state = try trainingState(contents.metadata, path: path)
        let adamStep = try integer(contents.metadata, "adam.step", path: path)
        // Everything checked: now change the model.
        store.setValues(values)
        optimizer.restore(m: m, v: v, step: adamStep)
        return state
    }

    /// Loads only the parameters (evaluation, fine-tuning); Adam's moments
    /// in the file are ignored. Returns the file's metadata.
    public static func readParameters(_ path: String, into store: inout ParameterStore) throws -> [String: String] {
        let contents = try SafeTensors.read(path)
        let values = try gather(contents, prefix: "", store: store, path: path)
        try rejectUnknown(contents, store: store, path: path, allowAdam: true)
        store.setValues(values)
        return contents.metadata
    }

    /// The snapshot `prefix` (see `write`) in the store's flat layout, or nil
    /// when the file has none of that name. Throws `FWError.file` naming
    /// `path` for a malformed file or a snapshot that does not fit the model.
    public static func readSnapshot(_ path: String, prefix: String, store: ParameterStore) throws -> [Float]? {
        let contents = try SafeTensors.read(path)
        guard snapshotPrefixes(contents.metadata).contains(prefix) else { return nil }
        return try gather(contents, prefix: prefix + ".", store: store, path: path)
    }

    /// The prefix of the extra (non-parameter) tensors `write` stores.
    public static let extraPrefix = "extra."

    /// The extra tensors (`write(..., extraTensors:)`) of the file at `path`,
    /// by name without the prefix; each must be finite.
    public static func readExtraTensors(_ path: String) throws -> [String: Tensor] {
        let contents = try SafeTensors.read(path)
        var result: [String: Tensor] = [:]
        for name in contents.names where name.hasPrefix(extraPrefix) {
            let t = contents.tensors[name]!
            try checkFinite(t, name, path: path)
            result[String(name.dropFirst(extraPrefix.count))] = t
        }
        return result
    }

    // MARK: helpers

    /// Throws `FWError.file` naming `path`, the tensor and the index of its first NaN/Inf.
    private static func checkFinite(_ t: Tensor, _ name: String, path: String) throws {
        do { try t.checkFinite("tensor '\(name)'") } catch let FWError.nonFinite(message) {
            throw FWError.file(path: path, reason: message)
        }
    }

    private static func snapshotPrefixes(_ meta: [String: String]) -> [String] {
        (meta["snapshots"] ?? "").split(separator: ",").map(String.init)
    }

    /// The tensors `<prefix><name>` for every parameter, as one flat array in the store's layout.
    private static func gather(_ contents: SafeTensors.Contents, prefix: String,
                               store: ParameterStore, path: String) throws -> [Float] {
        var flat = [Float](repeating: 0, count: store.count)
        for s in store {
            let key = prefix + s.name
            guard let t = contents.tensors[key] else {
                throw FWError.file(path: path, reason: "missing tensor '\(key)' that the model needs")
            }
            guard t.shape == s.shape else {
                throw FWError.file(path: path, reason: "tensor '\(key)' has shape \(describeShape(t.shape)), the model's is \(describeShape(s.shape))")
            }
            // A NaN or Inf parameter (or moment) would only turn every result into NaN.
            try checkFinite(t, key, path: path)
            flat.replaceSubrange(s.range, with: t.storage)
        }
        return flat
    }

    /// A tensor that belongs to no parameter means the file is of another model.
    private static func rejectUnknown(_ contents: SafeTensors.Contents, store: ParameterStore,
                                      path: String, allowAdam: Bool) throws {
        let snapshots = snapshotPrefixes(contents.metadata).map { $0 + "." }
        for name in contents.names where !name.hasPrefix(extraPrefix) {
            var base = name
            if allowAdam {
                if name.hasPrefix("adam.m.") { base = String(name.dropFirst(7)) }
                else if name.hasPrefix("adam.v.") { base = String(name.dropFirst(7)) }
            }
            if let p = snapshots.first(where: { name.hasPrefix($0) }), store.slice(named: name) == nil {
                base = String(name.dropFirst(p.count))
            }
            if store.slice(named: base) == nil && store.slice(named: name) == nil {
                throw FWError.file(path: path, reason: "tensor '\(name)' is not a parameter of this model")
            }
        }
    }

    private static func trainingState(_ meta: [String: String], path: String) throws -> TrainingState {
        if let f = meta["format"], f != format {
            throw FWError.file(path: path, reason: "metadata 'format' is '\(f)', expected '\(format)'")
        }
        let step = try integer(meta, "step", path: path)
        let rng = try generator(meta, "rng", path: path)
        guard let config = meta["config"] else {
            throw FWError.file(path: path, reason: "missing metadata 'config'")
        }
        var sampler: MinibatchSampler.State?
        if meta["sampler.examples"] != nil {
            let dropLast: Bool
            switch meta["sampler.drop_last"] {
            case "true": dropLast = true
            case "false": dropLast = false
            default: throw FWError.file(path: path, reason: "metadata 'sampler.drop_last' is not true or false")
            }
            let s = MinibatchSampler.State(
                exampleCount: try integer(meta, "sampler.examples", path: path),
                batchSize: try integer(meta, "sampler.batch_size", path: path),
                dropLast: dropLast,
                epoch: try integer(meta, "sampler.epoch", path: path),
                position: try integer(meta, "sampler.position", path: path),
                epochStart: try generator(meta, "sampler.epoch_start", path: path))
            // Validate it as the sampler would (without shuffling), but report it against the file.
            do { try s.validate() } catch let error as FWError {
                throw FWError.file(path: path, reason: "sampler state: \(error)")
            }
            sampler = s
        }
        return TrainingState(step: step, rng: rng, sampler: sampler, config: config)
    }

    /// The largest step, epoch or count a checkpoint's metadata may hold.
    static let maxCounter = 1 << 53

    private static func integer(_ meta: [String: String], _ key: String, path: String) throws -> Int {
        guard let text = meta[key] else { throw FWError.file(path: path, reason: "missing metadata '\(key)'") }
        guard let n = Int(text), n >= 0 else {
            throw FWError.file(path: path, reason: "metadata '\(key)' is '\(text)', not a non-negative decimal integer")
        }
        // Steps and epochs are counted on; far below Int.max keeps `+ 1` exact.
        guard n <= maxCounter else {
            throw FWError.file(path: path, reason: "metadata '\(key)' is \(n), beyond the largest count a checkpoint may hold (2^53)")
        }
        return n
    }

    private static func generator(_ meta: [String: String], _ key: String, path: String) throws -> SeededRNG {
        guard let text = meta[key] else { throw FWError.file(path: path, reason: "missing metadata '\(key)'") }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).compactMap { UInt64($0) }
        guard parts.count == 4, text.split(separator: ",", omittingEmptySubsequences: false).count == 4 else {
            throw FWError.file(path: path, reason: "metadata '\(key)' is '\(text)', not four decimal 64-bit words")
        }
        return SeededRNG(state: (parts[0], parts[1], parts[2], parts[3]))
    }

    private static func words(_ rng: SeededRNG) -> String {
        "\(rng.state.0),\(rng.state.1),\(rng.state.2),\(rng.state.3)"
    }
}
