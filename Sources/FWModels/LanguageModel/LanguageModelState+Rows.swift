import FWCore

/// A state's streams as rows: the share of one data-parallel rank, and the
/// whole state put back together from the ranks' shares (so a checkpoint
/// holds the same state whatever the number of processes).
extension LanguageModelState {
    /// The streams `rows` (a sub-range of `0..<batchSize`), in order.
    public func rows(_ rows: Range<Int>) -> LanguageModelState {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= batchSize && !rows.isEmpty, "LanguageModelState.rows: \(rows) of \(batchSize)")
        func cut(_ t: Tensor) -> Tensor {
            let per = t.count / batchSize
            return Tensor(shape: [rows.count] + Array(t.shape.dropFirst()),
                          storage: Array(t.storage[(rows.lowerBound * per)..<(rows.upperBound * per)]))
        }
        return LanguageModelState(fastWeights: fastWeights.map(cut), keySums: keySums.map(cut),
                                  convStates: convStates.map(cut), batchSize: rows.count, position: position)
    }

    /// Every number of the state, tensor after tensor (fast weights, key sums, then conv windows).
    public var flattened: [Float] {
        fastWeights.flatMap(\.storage) + keySums.flatMap(\.storage) + convStates.flatMap(\.storage)
    }

    /// The state of `parts` ranks' consecutive shares, given all their
    /// `flattened` numbers back to back in rank order (an all-gather) and
    /// one share as the template of the shapes.
    public static func joining(_ all: [Float], shares parts: Int, like share: LanguageModelState) -> LanguageModelState {
        let each = share.flattened.count
        precondition(all.count == parts * each, "LanguageModelState.joining: \(all.count) numbers for \(parts) x \(each)")
        var offset = 0   // within one share
        func join(_ t: Tensor) -> Tensor {
            var storage: [Float] = []
            storage.reserveCapacity(parts * t.count)
            for r in 0..<parts { storage += all[(r * each + offset)..<(r * each + offset + t.count)] }
            offset += t.count
            return Tensor(shape: [parts * t.shape[0]] + Array(t.shape.dropFirst()), storage: storage)
        }
        let weights = share.fastWeights.map(join)
        let sums = share.keySums.map(join)
        let convs = share.convStates.map(join)
        return LanguageModelState(fastWeights: weights, keySums: sums, convStates: convs,
                                  batchSize: parts * share.batchSize, position: share.position)
    }
}
