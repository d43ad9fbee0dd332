/// The gradients of a data-parallel step summed across the ranks in
/// buckets, each started as soon as the backward has finished it, so the
/// communication of block l overlaps the backward of blocks l-1 ... 0:
///
/// ```
/// bucket l       = the parameters named "block<l>.*"      started after block l's backward
/// last bucket    = everything else (embedding, final LN, head)   started when the backward ends
/// g             <- (1 / size) * sum over ranks of g      after every bucket has arrived
/// ```
///
/// A bucket is copied into a buffer of this type's own before it is
/// started (the store's arrays may move while the backward goes on).
public final class GradientBuckets {
    /// Per block, the runs of the flat gradient array its parameters hold.
    public let blockRuns: [[Range<Int>]]
    /// The runs no block holds.
    public let restRuns: [Range<Int>]
    private let staging: UnsafeMutablePointer<Float>
    private let count: Int

    /// Buckets for `layers` blocks named `block<l>.` in `store`.
    public init(store: ParameterStore, layers: Int) {
        func runs(_ ranges: [Range<Int>]) -> [Range<Int>] {
            var out: [Range<Int>] = []
            for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) where !r.isEmpty {
                if let last = out.last, last.upperBound == r.lowerBound { out[out.count - 1] = last.lowerBound..<r.upperBound } else { out.append(r) }
            }
            return out
        }
        var byBlock = [[Range<Int>]](repeating: [], count: layers)
        var rest: [Range<Int>] = []
        for slice in store {
            if let l = (0..<layers).first(where: { slice.name.hasPrefix("block\($0).") }) { byBlock[l].append(slice.range) } else { rest.append(slice.range) }
        }
        blockRuns = byBlock.map(runs)
        restRuns = runs(rest)
        count = store.count
        staging = .allocate(capacity: max(1, store.count))
    }

    deinit { staging.deallocate() }

    /// Copies block l's gradients out of `store` and starts their sum.
    public func start(block l: Int, from store: ParameterStore, in group: DataParallelGroup) throws {
        try group.progressStarted()
        try start(blockRuns[l], from: store, in: group)
    }

    /// Starts the rest (and every block too unless `blocksStarted`: one sum
    /// after the backward), waits for every bucket, and writes the mean over
    /// the ranks back into `store.gradients`.
    public func finish(into store: inout ParameterStore, in group: DataParallelGroup, blocksStarted: Bool = true) throws {
        if !blocksStarted { try start(blockRuns.flatMap { $0 }, from: store, in: group) }
        try start(restRuns, from: store, in: group)
        try group.waitForStarted()
        let scale = 1 / Float(group.size)
        let (n, staged) = (count, staging)
        store.withPointers { p in
            for i in 0..<n { p.gradients[i] = staged[i] * scale }
        }
    }

    private func start(_ runs: [Range<Int>], from store: ParameterStore, in group: DataParallelGroup) throws {
        for r in runs {
            store.gradients.withUnsafeBufferPointer { g in
                (staging + r.lowerBound).update(from: g.baseAddress! + r.lowerBound, count: r.count)
            }
            try group.startAllReduceSum(UnsafeMutableBufferPointer(start: staging + r.lowerBound, count: r.count))
        }
    }
}
