#if canImport(Glibc)
import Glibc
#endif
import CMPI
import Foundation
import FWCore
import FWModels

/// The ranks of `MPI_COMM_WORLD` as a `DataParallelGroup`: the processes
/// `mpirun -np N` (or `srun`) started, one model replica each.
///
/// MPI errors come back as `FWError.invalidArgument` naming the call
/// (the communicator's error handler is set to `MPI_ERRORS_RETURN`), so a
/// rank can print one line and then `abort` the whole run; a rank that dies
/// makes the launcher end the others. One group per process: `start()`
/// calls `MPI_Init`, `finish()` `MPI_Finalize`.
public final class MPIGroup: DataParallelGroup {
    public let rank: Int
    public let size: Int
    private let comm: MPI_Comm
    /// The reductions started and not yet waited for.
    private var started: [MPI_Request?] = []

    /// Whether this process was started by an MPI launcher (Open MPI's or
    /// PMI's rank variable is set). Without one, `start()` makes a group of one.
    public static var launchedByMPI: Bool {
        ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"].contains { (name: String) in getenv(name) != nil }
    }

    /// Initialises MPI (`MPI_Init`) and returns the world group.
    ///
    /// Without a launcher (a group of one), Open MPI's session directory goes
    /// under a fresh private folder (`OMPI_MCA_orte_tmpdir_base`, unless the
    /// caller set it): two such processes starting at once otherwise race to
    /// create the same `/tmp/ompi.<host>.<uid>` and one fails in `MPI_Init`.
    /// `finish()` and `abort(code:)` remove the folder.
    public static func start() throws -> MPIGroup {
        var initialised: Int32 = 0
        MPI_Initialized(&initialised)
        if initialised == 0 {
            if !launchedByMPI && getenv("OMPI_MCA_orte_tmpdir_base") == nil {
                let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
                var template = Array("\(base)/fwp-mpi-XXXXXX".utf8CString)
                if let dir = mkdtemp(&template) {
                    privateSessionBase = String(cString: dir)
                    setenv("OMPI_MCA_orte_tmpdir_base", dir, 1)
                }
            }
            try check(MPI_Init(nil, nil), "MPI_Init")
        }
        guard let comm = fw_mpi_comm_world() else { throw FWError.invalidArgument("MPI_COMM_WORLD is null") }
        try check(MPI_Comm_set_errhandler(comm, fw_mpi_errors_return()), "MPI_Comm_set_errhandler")
        var r: Int32 = 0, s: Int32 = 0
        try check(MPI_Comm_rank(comm, &r), "MPI_Comm_rank")
        try check(MPI_Comm_size(comm, &s), "MPI_Comm_size")
        return MPIGroup(comm: comm, rank: Int(r), size: Int(s))
    }

    private init(comm: MPI_Comm, rank: Int, size: Int) {
        self.comm = comm
        self.rank = rank
        self.size = size
    }

    /// The private session folder `start()` made, if any.
    nonisolated(unsafe) private static var privateSessionBase: String?

    /// Removes the private session folder and what Open MPI left in it (its
    /// singleton daemon may still be removing its own files when
    /// `MPI_Finalize` returns: a few tries, 5 ms apart).
    private static func removePrivateSessionBase() {
        guard let dir = privateSessionBase else { return }
        privateSessionBase = nil
        for _ in 0..<40 {
            try? FileManager.default.removeItem(atPath: dir)
            if access(dir, F_OK) != 0 { return }
            usleep(5_000)
        }
    }

    /// `MPI_Finalize` (call once, after the last collective).
    public func finish() {
        MPI_Finalize()
        Self.removePrivateSessionBase()
    }

    /// Ends every process of the run with `code` (`MPI_Abort`; a group of
    /// one just finalizes and exits, without MPI's multi-line notice).
    public func abort(code: Int32) -> Never {
        if size == 1 {
            MPI_Finalize()
            Self.removePrivateSessionBase()
        } else {
            MPI_Abort(comm, code)
        }
        exit(code)
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        try Self.inPieces(buffer) { p, n in
            try Self.check(MPI_Allreduce(fw_mpi_in_place(), p, n, fw_mpi_float(), fw_mpi_sum(), comm), "MPI_Allreduce of \(n) floats")
        }
    }

    /// `body(start, count)` over pieces of at most 2^30 numbers (MPI counts are Int32).
    static func inPieces(_ buffer: UnsafeMutableBufferPointer<Float>, _ body: (UnsafeMutablePointer<Float>, Int32) throws -> Void) rethrows {
        var offset = 0
        while offset < buffer.count {
            let n = min(buffer.count - offset, 1 << 30)
            try body(buffer.baseAddress! + offset, Int32(n))
            offset += n
        }
    }

    public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        try Self.inPieces(buffer) { p, n in
            var request: MPI_Request? = nil
            try Self.check(MPI_Iallreduce(fw_mpi_in_place(), p, n, fw_mpi_float(), fw_mpi_sum(), comm, &request), "MPI_Iallreduce of \(n) floats")
            started.append(request)
        }
    }

    public func progressStarted() throws {
        if started.isEmpty { return }
        var done: Int32 = 0
        try Self.check(MPI_Testall(Int32(started.count), &started, &done, nil), "MPI_Testall")
    }

    public func waitForStarted() throws {
        if started.isEmpty { return }
        defer { started.removeAll(keepingCapacity: true) }
        try Self.check(MPI_Waitall(Int32(started.count), &started, nil), "MPI_Waitall")
    }

    public func allReduceSum(_ values: [Double]) throws -> [Double] {
        var out = values
        if out.isEmpty { return out }
        try out.withUnsafeMutableBufferPointer { p in
            try Self.check(MPI_Allreduce(fw_mpi_in_place(), p.baseAddress!, Int32(p.count), fw_mpi_double(), fw_mpi_sum(), comm),
                           "MPI_Allreduce of \(p.count) doubles")
        }
        return out
    }

    public func allGather(_ local: [Float]) throws -> [Float] {
        guard local.count * size <= Int(Int32.max) else {
            throw FWError.invalidArgument("MPI_Allgather of \(size) x \(local.count) floats is beyond MPI's Int32 counts")
        }
        var all = [Float](repeating: 0, count: local.count * size)
        if local.isEmpty { return all }
        try local.withUnsafeBufferPointer { l in
            try all.withUnsafeMutableBufferPointer { a in
                try Self.check(MPI_Allgather(l.baseAddress!, Int32(l.count), fw_mpi_float(), a.baseAddress!, Int32(l.count), fw_mpi_float(), comm),
                               "MPI_Allgather of \(l.count) floats")
            }
        }
        return all
    }

    public func allAgree(_ value: UInt64) throws -> Bool {
        var v = value, low: UInt64 = 0, high: UInt64 = 0
        try Self.check(MPI_Allreduce(&v, &low, 1, fw_mpi_uint64(), fw_mpi_min(), comm), "MPI_Allreduce (min)")
        try Self.check(MPI_Allreduce(&v, &high, 1, fw_mpi_uint64(), fw_mpi_max(), comm), "MPI_Allreduce (max)")
        return low == high
    }

    public func barrier() throws {
        try Self.check(MPI_Barrier(comm), "MPI_Barrier")
    }

    /// Throws unless `code` is `MPI_SUCCESS`, with MPI's own words for it.
    static func check(_ code: Int32, _ call: String) throws {
        if code == MPI_SUCCESS { return }
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &text, &length)
        let words = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        throw FWError.invalidArgument("\(call) failed: \(words) (MPI error \(code))")
    }
}
