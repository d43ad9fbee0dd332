import FWCore

/// A lookup table: row `ids[i]` of `table [vocabularySize, dimensions]` for
/// each of `n` integer ids.
///
/// ```
/// out[i, :] = table[ids[i], :]          forward
/// dtable[ids[i], :] += dout[i, :]       backward (scatter-add; repeated ids add up)
/// ```
///
/// Ids are `Int32` (llm.c's `int` tokens; compact for token streams) and must
/// lie in `0..<vocabularySize`: the raw functions stop on an id out of range,
/// the Tensor-level ones throw `FWError.invalidArgument`.
public struct Embedding: Sendable {
    /// Number of rows of the table.
    public let vocabularySize: Int
    /// Width of a row.
    public let dimensions: Int
    /// `table [vocabularySize, dimensions]`, named `<name>.weight`.
    public let table: ParameterSlice

    /// Registers `<name>.weight` `[vocabularySize, dimensions]` in `store`
    /// (default `N(0, 1)` entries, as PyTorch's `nn.Embedding`).
    public init(_ vocabularySize: Int, _ dimensions: Int, name: String,
                store: inout ParameterStore, rng: inout SeededRNG,
                initializer: ParameterInitializer = .normal(std: 1)) {
        precondition(vocabularySize > 0 && dimensions > 0,
                     "Embedding: sizes must be positive, got \(vocabularySize) x \(dimensions)")
        self.vocabularySize = vocabularySize
        self.dimensions = dimensions
        self.table = store.register("\(name).weight", shape: [vocabularySize, dimensions], initializer: initializer, rng: &rng)
    }

    /// `out[i, :] = table[ids[i], :]` for `i < n`; `out` is `[n, dimensions]`.
    public static func forward(out: UnsafeMutablePointer<Float>,
                               ids: UnsafePointer<Int32>, table: UnsafePointer<Float>,
                               n: Int, vocabularySize: Int, dimensions: Int) {
        for i in 0..<n {
            let id = Int(ids[i])
            precondition(id >= 0 && id < vocabularySize, "Embedding.forward: id \(id) at row \(i) outside 0..<\(vocabularySize)")
            (out + i * dimensions).update(from: table + id * dimensions, count: dimensions)
        }
    }

    /// `dtable[ids[i], :] += dout[i, :]` for `i < n`.
    public static func backward(dtable: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, ids: UnsafePointer<Int32>,
                                n: Int, vocabularySize: Int, dimensions: Int) {
        for i in 0..<n {
            let id = Int(ids[i])
            precondition(id >= 0 && id < vocabularySize, "Embedding.backward: id \(id) at row \(i) outside 0..<\(vocabularySize)")
            let row = dtable + id * dimensions
            let d = dout + i * dimensions
            for j in 0..<dimensions { row[j] += d[j] }
        }
    }

    /// The rows for `ids`, as `[ids.count, dimensions]`.
    public func callAsFunction(_ ids: [Int32], _ store: ParameterStore) throws -> Tensor {
        try check(ids)
        var out = Tensor(shape: [ids.count, dimensions])
        if ids.isEmpty { return out }
        store.withValues { p in
            ids.withUnsafeBufferPointer { idb in
                out.withUnsafeMutableBufferPointer { ob in
                    Embedding.forward(out: ob.baseAddress!, ids: idb.baseAddress!, table: p + table.offset,
                                      n: ids.count, vocabularySize: vocabularySize, dimensions: dimensions)
                }
            }
        }
        return out
    }

    /// Scatter-adds `dy [ids.count, dimensions]` into the table's gradient in `store`.
    public func backward(_ dy: Tensor, ids: [Int32], store: inout ParameterStore) throws {
        try check(ids)
        try dy.checkShape("Embedding dy", [ids.count, dimensions])
        if ids.isEmpty { return }
        store.withPointers { p in
            ids.withUnsafeBufferPointer { idb in
                dy.withUnsafeBufferPointer { db in
                    Embedding.backward(dtable: p.gradient(table), dout: db.baseAddress!, ids: idb.baseAddress!,
                                       n: ids.count, vocabularySize: vocabularySize, dimensions: dimensions)
                }
            }
        }
    }

    private func check(_ ids: [Int32]) throws {
        if let i = ids.firstIndex(where: { $0 < 0 || Int($0) >= vocabularySize }) {
            throw FWError.invalidArgument("Embedding '\(table.name)': id \(ids[i]) at position \(i) is outside 0..<\(vocabularySize)")
        }
    }
}
