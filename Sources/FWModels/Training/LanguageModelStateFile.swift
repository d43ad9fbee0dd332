import FWCore

/// A carried `LanguageModelState` as checkpoint tensors (see
/// `Checkpoint.write(..., extraTensors:)`), so that a carry-state run
/// resumes with exactly the fast weights it had:
///
///     extra.state.fast_weights.<l>   [B, H, dv, Dphi]
///     extra.state.key_sums.<l>       [B, H, Dphi]        (denominator mixers)
///     extra.state.conv_states.<l>    [B, K-1, C]         (DeltaNet mixers: the q, k, v conv windows)
///     extra.state.position           [1]                 tokens per stream since the empty state
public enum LanguageModelStateFile {
    /// The state's tensors, named as above.
    public static func tensors(_ state: LanguageModelState) -> [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = []
        for (l, t) in state.fastWeights.enumerated() { out.append(("state.fast_weights.\(l)", t)) }
        for (l, t) in state.keySums.enumerated() { out.append(("state.key_sums.\(l)", t)) }
        for (l, t) in state.convStates.enumerated() { out.append(("state.conv_states.\(l)", t)) }
        out.append(("state.position", Tensor(shape: [1], storage: [Float(state.position)])))
        return out
    }

    /// The state stored in `extra` (from `Checkpoint.readExtraTensors`), or
    /// nil when the checkpoint holds none. Every tensor is checked against
    /// `model`'s empty state: a mismatch is an `FWError.file` naming `path`.
    public static func read(_ extra: [String: Tensor], model: CharLanguageModel, batchSize: Int, path: String) throws -> LanguageModelState? {
        guard let position = extra["state.position"] else { return nil }
        func fail(_ reason: String) -> FWError { .file(path: path, reason: "carried state: \(reason)") }
        // Float32 holds whole numbers exactly up to 2^24.
        guard position.count == 1, position.storage[0] >= 0, position.storage[0] <= 16_777_216,
              position.storage[0] == position.storage[0].rounded() else {
            throw fail("position is not a whole number in 0...2^24")
        }
        let weights = extra.keys.filter { $0.hasPrefix("state.fast_weights.") }.count
        guard weights > 0, let B = extra["state.fast_weights.0"]?.shape.first, B == batchSize else {
            throw fail("no fast weights for the run's \(batchSize) streams")
        }
        let empty = try LanguageModelState.empty(config: model.config, batchSize: B)
        var state = empty
        state.position = Int(position.storage[0])
        for l in empty.fastWeights.indices {
            guard let t = extra["state.fast_weights.\(l)"], t.shape == empty.fastWeights[l].shape else {
                throw fail("state.fast_weights.\(l) is missing or not of shape \(describeShape(empty.fastWeights[l].shape))")
            }
            state.fastWeights[l] = t
        }
        for l in empty.keySums.indices {
            guard let t = extra["state.key_sums.\(l)"], t.shape == empty.keySums[l].shape else {
                throw fail("state.key_sums.\(l) is missing or not of shape \(describeShape(empty.keySums[l].shape))")
            }
            state.keySums[l] = t
        }
        for l in empty.convStates.indices {
            guard let t = extra["state.conv_states.\(l)"], t.shape == empty.convStates[l].shape else {
                throw fail("state.conv_states.\(l) is missing or not of shape \(describeShape(empty.convStates[l].shape))")
            }
            state.convStates[l] = t
        }
        let expected = 1 + empty.fastWeights.count + empty.keySums.count + empty.convStates.count
        guard extra.keys.filter({ $0.hasPrefix("state.") }).count == expected else {
            throw fail("tensors that do not belong to this model's state")
        }
        return state
    }
}
