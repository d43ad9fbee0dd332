/// A dense row-major (C order) Float32 array: a shape and contiguous storage.
///
/// There is no autodiff here: every op in the package has an explicit forward
/// and backward that read and write tensors (llm.c style). `Tensor` has value
/// semantics (copy on write through `Array`).
///
/// Layout conventions used across the package (docs/contract.md section 1):
/// sequences are `[B, H, T, D]`, fast-weight states `[B, H, Dv, Dphi]`,
/// gates `[B, H, T]`.
public struct Tensor: Equatable, Sendable {
    /// The extent of each axis, outermost first.
    public private(set) var shape: [Int]
    /// `shape.reduce(1, *)` numbers, row-major. Elements may be written in
    /// place; replacing the array with one of another count traps (the shape
    /// would no longer describe it: use `init(shape:storage:)` or `reshaped`).
    ///
    /// (Accessors, not a `didSet`: an observed property is copied on every
    /// element write from another module, which made per-element loops
    /// quadratic. `_modify` yields the array in place and checks its count
    /// after the write.)
    public var storage: [Float] {
        @inlinable _read { yield _storage }
        @inlinable set {
            precondition(newValue.count == _storage.count,
                         "Tensor: storage of \(newValue.count) numbers set on a tensor of shape \(shape)")
            _storage = newValue
        }
        @inlinable _modify {
            let n = _storage.count
            yield &_storage
            precondition(_storage.count == n, "Tensor: storage resized from \(n) to \(_storage.count) numbers on a tensor of shape \(shape)")
        }
    }
    /// The numbers behind `storage`.
    @usableFromInline internal var _storage: [Float]

    /// A tensor of `shape` filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative extent in shape \(shape)")
        self.shape = shape
        self._storage = [Float](repeating: value, count: shape.reduce(1, *))
    }

    /// A tensor of `shape` holding `storage` (row-major); the count must match.
    public init(shape: [Int], storage: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative extent in shape \(shape)")
        precondition(shape.reduce(1, *) == storage.count,
                     "Tensor: shape \(shape) holds \(shape.reduce(1, *)) numbers, storage has \(storage.count)")
        self.shape = shape
        self._storage = storage
    }

    /// Number of elements.
    public var count: Int { storage.count }

    /// Number of axes.
    public var rank: Int { shape.count }

    /// The same numbers under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, storage: storage)
    }

    /// Element at a full multi-index (slow; for tests and small tools).
    public subscript(_ index: Int...) -> Float {
        get { storage[flatIndex(index)] }
        set { storage[flatIndex(index)] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "Tensor: index \(index) for shape \(shape)")
        var flat = 0
        for (i, n) in zip(index, shape) {
            precondition(i >= 0 && i < n, "Tensor: index \(index) out of range for shape \(shape)")
            flat = flat * n + i
        }
        return flat
    }

    /// Largest absolute value (0 for an empty tensor).
    public var maxAbs: Float { storage.reduce(0) { max($0, abs($1)) } }

    /// True when every element is finite.
    public var isFinite: Bool { storage.allSatisfy { $0.isFinite } }

    /// Read-only access to the storage.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer(body)
    }

    /// Mutable access to the storage.
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try storage.withUnsafeMutableBufferPointer(body)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor\(shape)" }
}

/// Renders a shape the way error messages show it: `[4, 8, 1024, 64]`.
public func describeShape(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ", ") + "]"
}
