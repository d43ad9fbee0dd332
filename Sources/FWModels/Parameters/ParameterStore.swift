import FWCore

/// Every trainable number of a model in one flat allocation (llm.c style).
///
/// Parameters are registered by name with a shape and an initialiser; each
/// gets a `ParameterSlice` (an offset into the flat arrays). `values` holds
/// them back to back in registration order and `gradients` is its twin of
/// the same layout, so an optimiser is one loop over both and Adam's `m` and
/// `v` share the layout too.
///
/// Gradients *accumulate*: every layer's backward adds into `gradients`;
/// `zeroGradients()` is the one reset, called once per step.
///
/// ```swift
/// var rng = SeededRNG(seed: 1)
/// var store = ParameterStore()
/// let w = store.register("out.W", shape: [10, 64], initializer: .uniformFanIn, rng: &rng)
/// store.withPointers { p in /* p.value(w), p.gradient(w) */ }
/// ```
///
/// `count` is the total number of scalars; iterating the store (`for s in
/// store`) yields the slices in registration order.
public struct ParameterStore: Sequence, Sendable {
    /// All parameter values, `count` numbers, slices back to back in registration order.
    public internal(set) var values: [Float] = []
    /// dL/d(values), same layout; accumulated by backward passes.
    public internal(set) var gradients: [Float] = []
    /// The registered parameters, in registration order.
    public private(set) var slices: [ParameterSlice] = []
    private var indexByName: [String: Int] = [:]

    /// An empty store.
    public init() {}

    /// Total number of scalar parameters (the length of `values`).
    public var count: Int { values.count }

    /// The parameter names, in registration order.
    public var names: [String] { slices.map(\.name) }

    /// Registers a parameter of `shape` named `name`, filled by `initializer`
    /// (random ones draw from `rng`), with zero gradient. Returns its slice.
    ///
    /// Names must be unique and non-empty (a programming error otherwise).
    @discardableResult
    public mutating func register(_ name: String, shape: [Int],
                                  initializer: ParameterInitializer,
                                  rng: inout SeededRNG) -> ParameterSlice {
        precondition(!name.isEmpty, "ParameterStore.register: empty name")
        precondition(indexByName[name] == nil, "ParameterStore.register: '\(name)' is already registered")
        precondition(shape.allSatisfy { $0 >= 0 }, "ParameterStore.register: negative extent in \(describeShape(shape)) for '\(name)'")
        let n = shape.reduce(1, *)
        let slice = ParameterSlice(name: name, shape: shape, offset: values.count, count: n, index: slices.count)
        values.append(contentsOf: repeatElement(0, count: n))
        gradients.append(contentsOf: repeatElement(0, count: n))
        values.withUnsafeMutableBufferPointer { buffer in
            initializer.fill(buffer.baseAddress! + slice.offset, shape: shape, rng: &rng)
        }
        indexByName[name] = slices.count
        slices.append(slice)
        return slice
    }

    /// Registers a parameter whose initialiser draws no random numbers
    /// (`.zeros`, `.ones`, `.constant`, `.values`).
    @discardableResult
    public mutating func register(_ name: String, shape: [Int], initializer: ParameterInitializer) -> ParameterSlice {
        var unused = SeededRNG(seed: 0)
        return register(name, shape: shape, initializer: initializer, rng: &unused)
    }

    /// Sets every gradient to zero (the one reset per step).
    public mutating func zeroGradients() {
        gradients.withUnsafeMutableBufferPointer { g in
            for i in g.indices { g[i] = 0 }
        }
    }

    // MARK: lookup

    /// The slice named `name`, or nil.
    public func slice(named name: String) -> ParameterSlice? {
        indexByName[name].map { slices[$0] }
    }

    /// The slice named `name`; throws `FWError.invalidArgument` when there is none.
    public func requireSlice(_ name: String) throws -> ParameterSlice {
        guard let s = slice(named: name) else {
            throw FWError.invalidArgument("no parameter named '\(name)' (have: \(names.joined(separator: ", ")))")
        }
        return s
    }

    /// Iterates the slices in registration order.
    public func makeIterator() -> IndexingIterator<[ParameterSlice]> { slices.makeIterator() }

    // MARK: Tensor access

    /// A copy of the values of `slice` as a tensor of its shape.
    public func tensor(_ slice: ParameterSlice) -> Tensor {
        Tensor(shape: slice.shape, storage: Array(values[slice.range]))
    }

    /// A copy of the gradient of `slice` as a tensor of its shape.
    public func gradientTensor(_ slice: ParameterSlice) -> Tensor {
        Tensor(shape: slice.shape, storage: Array(gradients[slice.range]))
    }

    /// A copy of the values of the parameter `name`.
    public func tensor(_ name: String) throws -> Tensor { tensor(try requireSlice(name)) }

    /// A copy of the gradient of the parameter `name`.
    public func gradientTensor(_ name: String) throws -> Tensor { gradientTensor(try requireSlice(name)) }

    /// Overwrites the values of the parameter `name`; throws
    /// `FWError.shapeMismatch` naming it unless `tensor` has its shape.
    public mutating func setTensor(_ name: String, _ tensor: Tensor) throws {
        let s = try requireSlice(name)
        try tensor.checkShape(name, s.shape)
        values.replaceSubrange(s.range, with: tensor.storage)
    }

    /// Overwrites the gradient of the parameter `name` (tests, tools).
    public mutating func setGradientTensor(_ name: String, _ tensor: Tensor) throws {
        let s = try requireSlice(name)
        try tensor.checkShape(name, s.shape)
        gradients.replaceSubrange(s.range, with: tensor.storage)
    }

    /// Overwrites all values at once (`count` numbers, this store's layout).
    public mutating func setValues(_ newValues: [Float]) {
        precondition(newValues.count == values.count, "ParameterStore.setValues: \(newValues.count) numbers for \(values.count)")
        values = newValues
    }

    // MARK: pointer access for layers

    /// Hands `body` mutable pointers to the flat values and gradients; layers
    /// address their parameters with `p.value(slice)` and `p.gradient(slice)`.
    /// The pointers must not escape the closure.
    public mutating func withPointers<R>(_ body: (ParameterPointers) throws -> R) rethrows -> R {
        // An empty array may have no storage; give the closure valid (unused) pointers.
        if values.isEmpty {
            var v: Float = 0, g: Float = 0
            return try withUnsafeMutablePointer(to: &v) { pv in
                try withUnsafeMutablePointer(to: &g) { pg in
                    try body(ParameterPointers(values: pv, gradients: pg))
                }
            }
        }
        return try values.withUnsafeMutableBufferPointer { v in
            try gradients.withUnsafeMutableBufferPointer { g in
                try body(ParameterPointers(values: v.baseAddress!, gradients: g.baseAddress!))
            }
        }
    }

    /// Hands `body` a read-only pointer to the flat values (forward passes
    /// of a store that is not mutated, e.g. evaluation); address a
    /// parameter with `base + slice.offset`.
    public func withValues<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        if values.isEmpty {
            let v: Float = 0
            return try withUnsafePointer(to: v) { try body($0) }
        }
        return try values.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }
}
