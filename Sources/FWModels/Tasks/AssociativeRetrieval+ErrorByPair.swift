import FWCore

/// Where a retrieval model fails: the error split by which of the K pairs
/// the query asks for (pair 1 is the oldest, written 2K + 1 steps before
/// the query is read; pair K the newest). A model that never retrieves one
/// position shows ~90% error there (a wrong digit 9 times in 10) and near 0
/// elsewhere; a model on the 61.65% floor shows the floor at every position.
extension AssociativeRetrieval {
    /// The 0-based index of the pair whose key the query (the last token)
    /// names, or nil if no key matches (not a sequence of this task).
    /// `sequence` has `length` tokens.
    public func queriedPair(_ sequence: ArraySlice<Int32>) -> Int? {
        precondition(sequence.count == length, "queriedPair: \(sequence.count) tokens, expected \(length)")
        let query = sequence[sequence.startIndex + length - 1]
        for i in 0..<pairs where sequence[sequence.startIndex + 2 * i] == query { return i }
        return nil
    }

    /// Examples and errors per queried pair, `[pairs]` each, for a split
    /// `tokens [n, length]`, `targets [n]` and the model's `predictions [n]`.
    public func errorsByPair(tokens: [Int32], targets: [Int32], predictions: [Int32]) throws
        -> (count: [Int], errors: [Int]) {
        guard tokens.count == targets.count * length, predictions.count == targets.count else {
            throw FWError.invalidArgument("errorsByPair: tokens \(tokens.count), targets \(targets.count), predictions \(predictions.count) for sequences of \(length)")
        }
        var count = [Int](repeating: 0, count: pairs), errors = [Int](repeating: 0, count: pairs)
        for n in 0..<targets.count {
            guard let i = queriedPair(tokens[(n * length)..<((n + 1) * length)]) else {
                throw FWError.invalidArgument("errorsByPair: sequence \(n) queries no key of its own")
            }
            count[i] += 1
            if predictions[n] != targets[n] { errors[i] += 1 }
        }
        return (count, errors)
    }
}
