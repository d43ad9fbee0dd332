/// Finiteness checks at an API boundary: NaN and Inf inputs are rejected
/// with the tensor's name and the index of the first bad entry, instead of
/// spreading through a recurrence (where the recurrent and chunked forms
/// would spread them differently).
extension Tensor {
    /// The flat index of the first NaN or Inf entry, or nil when all are finite.
    public var firstNonFiniteIndex: Int? {
        storage.withUnsafeBufferPointer { p in
            // A branch-free vector sweep first (x * 0 is NaN exactly for NaN
            // and +-Inf, so one NaN lane marks a bad block); the position is
            // searched only on failure.
            guard let base = p.baseAddress, !allFinite(base, count: p.count) else { return nil }
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

/// True when every one of `count` floats at `p` is finite: sixteen lanes of
/// `x * 0` summed (0 while finite, NaN from the first NaN or Inf on) per
/// block of 4096 floats, so a bad block ends the sweep early.
@inline(never)
func allFinite(_ p: UnsafePointer<Float>, count: Int) -> Bool {
    let raw = UnsafeRawPointer(p)
    let block = 4096
    var start = 0
    while start < count {
        let end = min(count, start + block)
        var acc = SIMD16<Float>(repeating: 0)
        var i = start
        while i + 16 <= end {
            acc += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * 0
            i += 16
        }
        var tail: Float = 0
        while i < end { tail += p[i] * 0; i += 1 }
        if !(acc.sum() + tail).isFinite { return false }
        start = end
    }
    return true
}
