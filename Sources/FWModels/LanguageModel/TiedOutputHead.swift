import FWCore

/// The output projection that reuses the embedding table (weight tying,
/// Press & Wolf 2017; lmtool-fwp's default `tie_weight`), over `n` rows:
///
/// ```
/// logits[n, V] = h[n, D] E^T + b          E [V, D] = the embedding's "<embedding>.weight", b [V] = "<name>.bias"
/// ```
///
/// Backward (accumulating):
///
/// ```
/// dh  += dlogits E                [n, D]
/// dE  += dlogits^T h              [V, D]  (into the embedding's gradient, beside its scatter-add)
/// db  += sum over rows dlogits    [V]
/// ```
///
/// It is `Linear`'s forward and backward with the embedding table as the weight.
public struct TiedOutputHead: Sendable {
    /// V, the number of logits per row.
    public let vocabularySize: Int
    /// D, the width of an input row.
    public let dimensions: Int
    /// The embedding table `[V, D]` (registered by the `Embedding`, not by the head).
    public let table: ParameterSlice
    /// The bias `[V]`, named `<name>.bias` (zeros).
    public let bias: ParameterSlice

    /// Registers `<name>.bias` `[V]` (zeros); the weight is `embedding.table`.
    public init(tiedTo embedding: Embedding, name: String, store: inout ParameterStore) {
        vocabularySize = embedding.vocabularySize
        dimensions = embedding.dimensions
        table = embedding.table
        bias = store.register("\(name).bias", shape: [embedding.vocabularySize], initializer: .zeros)
    }

    /// `logits [..., V] = h [..., D] E^T + b`.
    ///
    /// - Throws: `FWError.shapeMismatch` naming `TiedOutputHead h` unless the last axis is D.
    public func callAsFunction(_ h: Tensor, _ store: ParameterStore) throws -> Tensor {
        let n = try rows(of: h)
        var logits = Tensor(shape: Array(h.shape.dropLast()) + [vocabularySize])
        if n == 0 { return logits }
        store.withValues { p in
            h.withUnsafeBufferPointer { hp in
                logits.withUnsafeMutableBufferPointer { lp in
                    Linear.forward(out: lp.baseAddress!, inp: hp.baseAddress!, weight: p + table.offset,
                                   bias: p + bias.offset, n: n, inputs: dimensions, outputs: vocabularySize)
                }
            }
        }
        return logits
    }

    /// Accumulates dE (into the embedding table's gradient) and db, and returns `dh [..., D]`.
    ///
    /// - Throws: `FWError.shapeMismatch` naming `TiedOutputHead h` or `TiedOutputHead dlogits`.
    public func backward(_ dlogits: Tensor, input h: Tensor, store: inout ParameterStore) throws -> Tensor {
        let n = try rows(of: h)
        try dlogits.checkShape("TiedOutputHead dlogits", Array(h.shape.dropLast()) + [vocabularySize])
        var dh = Tensor(shape: h.shape)
        if n == 0 { return dh }
        store.withPointers { p in
            h.withUnsafeBufferPointer { hp in
                dlogits.withUnsafeBufferPointer { gp in
                    dh.withUnsafeMutableBufferPointer { dp in
                        Linear.backward(dinp: dp.baseAddress!, dweight: p.gradient(table), dbias: p.gradient(bias),
                                        dout: gp.baseAddress!, inp: hp.baseAddress!, weight: p.value(table),
                                        n: n, inputs: dimensions, outputs: vocabularySize)
                    }
                }
            }
        }
        return dh
    }

    private func rows(of h: Tensor) throws -> Int {
        guard h.rank >= 1, h.shape.last == dimensions else {
            throw FWError.shapeMismatch(tensor: "TiedOutputHead h", expected: "[..., \(dimensions)]", got: h.shape)
        }
        return h.count / dimensions
    }
}
