import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Who owns the cores: the one place that decides it.
///
/// The engine's batched ops run B*H independent sequences. Either our loop
/// over sequences uses the cores (each worker calls OpenBLAS single-threaded),
/// or OpenBLAS uses them inside each call (and we run the sequences one after
/// another) — never both, so the 2 cores are never oversubscribed.
///
/// Policy: with at least as many sequences as workers, we own the threads and
/// OpenBLAS is set to 1 thread for the duration of the loop (and back to all
/// workers after it: outside a sequence loop, e.g. in the model layer's dense
/// projections, OpenBLAS owns them); with fewer sequences OpenBLAS gets all
/// threads and the loop is sequential. The choice
/// is made under a lock, so concurrent callers of batched ops run one at a
/// time rather than fight over OpenBLAS's global thread count.
public enum ThreadOwnership {
    /// Number of worker threads: `FWP_THREADS` if it is a count in
    /// `1...maxWorkers`, else this process's share of the online cores:
    /// all of them, or `cores / n` (at least 1) when an MPI launcher started
    /// `n` processes on this machine, so ranks never oversubscribe the cores.
    /// (`fwp` rejects any other `FWP_THREADS` with a message; the library
    /// falls back quietly.)
    public static let workers: Int = {
        if let s = ProcessInfoLite.environment["FWP_THREADS"], let n = parseWorkerCount(s) { return n }
        return max(1, onlineCores / localProcesses)
    }()

    /// The processes an MPI launcher started on this machine (Open MPI's
    /// `OMPI_COMM_WORLD_LOCAL_SIZE`, MPICH's `MPI_LOCALNRANKS`), else 1.
    public static var localProcesses: Int {
        let env = ProcessInfoLite.environment
        for key in ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"] {
            if let s = env[key], let n = Int(s), n >= 1 { return n }
        }
        return 1
    }

    /// The most worker threads `FWP_THREADS` may ask for.
    public static let maxWorkers = 256

    /// The online cores (at least 1).
    public static var onlineCores: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// The worker count `text` spells (decimal, `1...maxWorkers`), or nil.
    public static func parseWorkerCount(_ text: String) -> Int? {
        guard let n = Int(text), (1...maxWorkers).contains(n) else { return nil }
        return n
    }

    /// The raw `FWP_THREADS` value, if set (for the tool's own check).
    public static var requestedWorkers: String? { ProcessInfoLite.environment["FWP_THREADS"] }

    private static let lock = PThreadMutex()

    /// OpenBLAS's thread count is ours from the first BLAS call on: set to
    /// `workers` once (OpenBLAS would otherwise start with every core, even
    /// in a process told `FWP_THREADS=1`). The BLAS wrappers and every loop
    /// below touch it first, so it is settled before any worker runs.
    private static let blasThreadsClaimed: Bool = {
        BLASCore.setThreads(workers)
        return true
    }()

    /// Settles OpenBLAS's thread count (see `blasThreadsClaimed`); cheap after the first call.
    public static func claimBLASThreads() { _ = blasThreadsClaimed }

    /// Runs `body(i)` for every `i` in `0..<count`, in parallel over sequences
    /// when `count >= workers`, otherwise sequentially with multi-threaded BLAS.
    /// `body` must only touch memory that belongs to sequence `i`.
    public static func forEachSequence(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        claimBLASThreads()
        lock.lock()
        defer { lock.unlock() }
        if workers > 1 && count >= workers {
            BLASCore.setThreads(1)
            // Static blocks of sequences per worker: equal work per sequence.
            withoutActuallyEscaping(body) { body in
                let box = UncheckedSendable(body)
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    var i = w
                    while i < count { box.value(i); i += workers }
                }
            }
            BLASCore.setThreads(workers)
        } else {
            BLASCore.setThreads(workers)
            for i in 0..<count { body(i) }
        }
    }

    /// Runs `body` with OpenBLAS using `threads` threads inside each call
    /// (under the same lock), e.g. to measure sgemm peak at a given count.
    public static func withBLASThreads<R>(_ threads: Int, _ body: () throws -> R) rethrows -> R {
        claimBLASThreads()
        lock.lock()
        defer { lock.unlock(); BLASCore.setThreads(workers) }
        BLASCore.setThreads(threads)
        return try body()
    }

    /// Runs `body(team)` with every worker in one team (OpenBLAS
    /// single-threaded inside each call, under the same lock): for one
    /// sequence whose stages the workers split between them
    /// (`WorkerTeam.parallel`), when there are fewer sequences than workers.
    /// Like every entry here it takes the one lock, which is not recursive:
    /// `body` must not call `forEachSequence`, `withTeam` or `withBLASThreads`.
    public static func withTeam<R>(_ body: (WorkerTeam) throws -> R) rethrows -> R {
        claimBLASThreads()
        lock.lock()
        defer { BLASCore.setThreads(workers); lock.unlock() }
        BLASCore.setThreads(1)
        return try body(WorkerTeam(size: workers))
    }

    /// Runs `body(w)` on `n` threads at once with single-threaded BLAS inside
    /// each (used to measure the aggregate sgemm peak of the sequence loop).
    public static func onWorkers(_ n: Int, _ body: (Int) -> Void) {
        claimBLASThreads()
        lock.lock()
        defer { lock.unlock() }
        BLASCore.setThreads(1)
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: n) { box.value($0) }
        }
        BLASCore.setThreads(workers)
    }
}

/// Wraps a value that is safe to share by construction (each worker touches
/// disjoint memory) but that Swift cannot prove Sendable.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}

/// A plain pthread mutex (FWCore links no Foundation).
final class PThreadMutex: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>
    init() {
        m = .allocate(capacity: 1)
        var attr = pthread_mutexattr_t()
        pthread_mutexattr_init(&attr)
        pthread_mutexattr_settype(&attr, Int32(PTHREAD_MUTEX_RECURSIVE))
        pthread_mutex_init(m, &attr)
        pthread_mutexattr_destroy(&attr)
    }
    func lock() { pthread_mutex_lock(m) }
    func unlock() { pthread_mutex_unlock(m) }
}

/// The workers splitting one sequence's stages between them
/// (`ThreadOwnership.withTeam`): each stage is a `parallel` call over
/// independent items (the chunks of a stage, or the value parts of the
/// state pass), and returns when every item is done.
public struct WorkerTeam: Sendable {
    /// Worker threads in the team.
    public let size: Int

    /// A team of `size` threads (>= 1); `ThreadOwnership.withTeam` makes the
    /// engine's own (tests may make others: the results do not depend on it).
    public init(size: Int) {
        precondition(size >= 1, "WorkerTeam: size \(size) < 1")
        self.size = size
    }

    /// Runs `body(item, worker)` for every `item` in `0..<count` on
    /// `min(size, count)` threads, statically strided (worker w takes items
    /// w, w + n, ...); `worker` indexes per-thread scratch. `body` must only
    /// write memory that belongs to its item or its worker.
    public func parallel(_ count: Int, _ body: (_ item: Int, _ worker: Int) -> Void) {
        if count <= 0 { return }
        let n = min(size, count)
        if n == 1 {
            for i in 0..<count { body(i, 0) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: n) { w in
                var i = w
                while i < count { box.value(i, w); i += n }
            }
        }
    }
}
