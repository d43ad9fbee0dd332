extension Array where Element == Float {
    /// An array of `count` floats whose contents are left as they are in
    /// memory: for buffers that a kernel overwrites entirely. Zero-filling
    /// tens of MiB that are overwritten anyway cost the batched ops a third
    /// of their time at the benchmark shape.
    @inlinable
    public static func uninitialized(count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }
}

extension Tensor {
    /// A tensor of `shape` whose contents are left as they are in memory (see
    /// `Array.uninitialized(count:)`); every element must be written before it is read.
    @inlinable
    public static func uninitialized(shape: [Int]) -> Tensor {
        Tensor(shape: shape, storage: .uninitialized(count: shape.reduce(1, *)))
    }
}
