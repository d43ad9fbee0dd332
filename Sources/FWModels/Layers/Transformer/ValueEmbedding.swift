import FWCore

/// The fixed one-hot embedding of values used by the synthetic retrieval
/// task of Schlag et al. (2021): an identity table `I [size, size]` that is
/// never trained (so it has no parameters and no backward).
///
/// ```
/// out[i, :] = e_{ids[i]}          out [n, size], e_j the j-th unit vector
/// ```
///
/// The task feeds these rows in as values and uses them as regression
/// targets of the squared-error head (`TransformerModel.squaredError`).
public struct ValueEmbedding: Sendable, Equatable {
    /// The number of distinct values S (the width of a row).
    public let size: Int

    /// The one-hot embedding of `size` values.
    public init(size: Int) {
        precondition(size > 0, "ValueEmbedding: size must be positive, got \(size)")
        self.size = size
    }

    /// One-hot rows `[ids.count, size]` for `ids` in `0..<size`.
    ///
    /// - Throws: `FWError.invalidArgument` naming the first id out of range and its position.
    public func callAsFunction(_ ids: [Int32]) throws -> Tensor {
        try ValueEmbedding.oneHot(ids, size: size)
    }

    /// One-hot rows `[ids.count, size]`: row i is 1 at column `ids[i]`, 0 elsewhere.
    ///
    /// - Throws: `FWError.invalidArgument` ("ValueEmbedding: id 7 at position 2
    ///   is outside 0..<5") for an id out of range.
    public static func oneHot(_ ids: [Int32], size: Int) throws -> Tensor {
        guard size > 0 else { throw FWError.invalidArgument("ValueEmbedding: size must be positive, got \(size)") }
        if let i = ids.firstIndex(where: { $0 < 0 || Int($0) >= size }) {
            throw FWError.invalidArgument("ValueEmbedding: id \(ids[i]) at position \(i) is outside 0..<\(size)")
        }
        var out = Tensor(shape: [ids.count, size])
        for (i, id) in ids.enumerated() { out.storage[i * size + Int(id)] = 1 }
        return out
    }
}
