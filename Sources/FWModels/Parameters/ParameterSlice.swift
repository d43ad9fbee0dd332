import FWCore

/// A handle to one named parameter inside a `ParameterStore`: where its
/// numbers sit in the flat `values` array (and, at the same place, in
/// `gradients` and in Adam's `m` and `v`).
///
/// Layers keep their slices and reach the numbers through
/// `ParameterStore.withPointers`; a slice is only meaningful for the store
/// (or a store of the same layout) that returned it.
public struct ParameterSlice: Hashable, Sendable, CustomStringConvertible {
    /// The parameter's name, unique in its store (e.g. `"rnn.W"`).
    public let name: String
    /// Its shape, row-major.
    public let shape: [Int]
    /// Index of its first number in the flat arrays.
    public let offset: Int
    /// Its number of elements, `shape.reduce(1, *)`.
    public let count: Int
    /// Its position in registration order (0 for the first registered).
    public let index: Int

    /// The half-open range `offset..<offset + count` in the flat arrays.
    public var range: Range<Int> { offset..<(offset + count) }

    public var description: String { "\(name)\(describeShape(shape)) @\(offset)" }
}

/// Mutable pointers to a store's values and gradients, valid only inside
/// the `ParameterStore.withPointers` closure that hands them out.
public struct ParameterPointers {
    /// Base of the flat `values` array.
    public let values: UnsafeMutablePointer<Float>
    /// Base of the flat `gradients` array (same layout).
    public let gradients: UnsafeMutablePointer<Float>

    /// The first value of `slice` (row-major, `slice.count` numbers).
    @inlinable
    public func value(_ slice: ParameterSlice) -> UnsafeMutablePointer<Float> { values + slice.offset }

    /// The first gradient of `slice` (row-major, `slice.count` numbers).
    @inlinable
    public func gradient(_ slice: ParameterSlice) -> UnsafeMutablePointer<Float> { gradients + slice.offset }
}
