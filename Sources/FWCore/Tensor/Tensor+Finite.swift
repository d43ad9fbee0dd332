/// Finiteness checks at an API boundary: NaN and Inf inputs are rejected
/// with the tensor's name and the index of the first bad entry, instead of
/// spreading through a recurrence (where the recurrent and chunked forms
/// would spread them differently).
extension Tensor {
    /// The flat index of the first NaN or Inf entry, or nil when all are finite.
    public var firstNonFiniteIndex: Int? {
        storage.withUnsafeBufferPointer { p in
            // A vectorisable sweep first; find the position only on failure.
            var bad = false
            for x in p where !x.isFinite { bad = true; break }
            guard bad else { return nil }
            return p.firstIndex { !$0.isFinite }
        }
    }

    /// The multi-index `[i0, i1, ...]` of flat index `flat` in this shape.
    public func multiIndex(_ flat: Int) -> [Int] {
        var rest = flat
        var index = [Int](repeating: 0, count: shape.count)
        for axis in shape.indices.reversed() where shape[axis] > 0 {
            index[axis] = rest % shape[axis]
            rest /= shape[axis]
        }
        return index
    }

    /// Throws `FWError.nonFinite("<name>: non-finite value nan at [0, 1, 3, 2]")`
    /// unless every entry is finite.
    public func checkFinite(_ name: String) throws {
        if let i = firstNonFiniteIndex {
            let x = storage[i]
            let text = x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf")
            throw FWError.nonFinite("\(name): non-finite value \(text) at index \(describeShape(multiIndex(i)))")
        }
    }
}
