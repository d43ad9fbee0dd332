import FastWeights
import Foundation

/// The rules for a training run's output folder (`fwp train`, and the
/// children of `fwp reproduce`), so that a failed run never destroys an
/// earlier one:
///
/// * A **new run** into a folder that already holds a run's files
///   (`log.csv`, `checkpoint.safetensors`, `summary.json`) is refused, with
///   the way out named: `--resume` the checkpoint, `--force`, or another
///   `--out`. Nothing in the folder is touched.
/// * With **`--force`** the new run trains in a hidden staging folder inside
///   it (`DIR/.fwp-new-run/`) and replaces the old run's files only when it
///   has finished: if it fails, the old files are byte-for-byte as they were.
/// * A **resumed run** continues in the checkpoint's own folder, after the
///   checkpoint has been checked completely; its log grows and its checkpoint
///   is replaced (atomically) at every evaluation, as the run it continues.
/// * A run file that is a folder (say a directory named
///   `checkpoint.safetensors`) is never removed: such a folder is refused.
/// * A new run that fails before it wrote a checkpoint removes what it wrote
///   (and the folder, if it made it); one that fails later keeps its log and
///   last checkpoint, which `--resume` continues.
final class RunFolder {
    /// The folder the user named.
    let path: String
    /// Where this run writes: `path`, or the staging folder with `--force`.
    let workPath: String
    private var createdFolder = false
    private var isResume = false

    /// The hidden folder a `--force` run trains in.
    static let stagingName = ".fwp-new-run"
    /// Every file name any run writes (all are checked for a new run).
    static let runFiles = ["log.csv", "checkpoint.safetensors", "summary.json"]

    private init(path: String, workPath: String) {
        self.path = path
        self.workPath = workPath
    }

    func file(_ name: String) -> String { (workPath as NSString).appendingPathComponent(name) }

    /// The run files present in `path` (any kind), in `runFiles` order.
    static func existingRunFiles(_ path: String) -> [String] {
        runFiles.filter { FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent($0)) }
    }

    /// Checks `path` for a new run (nothing is written): refuses a file in
    /// the way, a run file that is a folder, and (unless `force`) a folder
    /// that holds a run.
    static func checkNewRun(_ path: String, force: Bool) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw FWError.file(path: path, reason: "--out exists and is not a folder") }
            guard access(path, W_OK) == 0 else { throw FWError.file(path: path, reason: "--out is not writable") }
            for name in runFiles {
                let p = (path as NSString).appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: p, isDirectory: &isDir), isDir.boolValue {
                    throw FWError.file(path: p, reason: "is a folder where the run writes a file; move it away (fwp never removes it)")
                }
            }
            let present = existingRunFiles(path)
            if !force, !present.isEmpty {
                let resume = present.contains("checkpoint.safetensors")
                    ? "--resume \((path as NSString).appendingPathComponent("checkpoint.safetensors")) to continue it, " : ""
                throw FWError.file(path: path, reason: "holds a run (\(present.joined(separator: ", "))); use \(resume)--force to replace it when the new run succeeds, or another --out")
            }
        } else {
            try OutputTransaction.checkDestination((path as NSString).appendingPathComponent("log.csv"), createFolder: true)
        }
    }

    /// A new run into `path` (see the type's rules); creates the folder it writes in.
    static func newRun(_ path: String, force: Bool) throws -> RunFolder {
        try checkNewRun(path, force: force)
        let replacing = !existingRunFiles(path).isEmpty
        let staging = (path as NSString).appendingPathComponent(stagingName)
        let folder = RunFolder(path: path, workPath: replacing ? staging : path)
        if !FileManager.default.fileExists(atPath: path) {
            let tx = OutputTransaction()
            try tx.makeFolder(path)
            try tx.commit()
            folder.createdFolder = true
        }
        if replacing {
            // A staging folder left by an interrupted --force run is ours to clear.
            try? FileManager.default.removeItem(atPath: staging)
            guard mkdir(staging, 0o755) == 0 else {
                throw FWError.file(path: staging, reason: "cannot create the staging folder: \(String(cString: strerror(errno)))")
            }
        }
        return folder
    }

    /// A resumed run in the folder of its checkpoint, or in `out` when given
    /// and different (then `out` follows the new-run rules, without --force).
    static func resumedRun(checkpoint: String, out: String?) throws -> RunFolder {
        let ownFolder = FilePaths.folder(of: checkpoint)
        if let out, URL(fileURLWithPath: out).standardizedFileURL.path != URL(fileURLWithPath: ownFolder).standardizedFileURL.path {
            return try newRun(out, force: false)
        }
        let folder = RunFolder(path: ownFolder, workPath: ownFolder)
        folder.isResume = true
        return folder
    }

    /// The run finished: with staging, its files replace the old run's
    /// (all or nothing) and the staging folder goes.
    func finish() throws {
        guard workPath != path else { return }
        try OutputTransaction.run { tx in
            for name in Self.runFiles {
                let staged = file(name)
                let final = (path as NSString).appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: staged) {
                    try tx.stage(try AtomicFile.read(staged), to: final)
                } else {
                    tx.remove(final)   // an old run file the new run does not write
                }
            }
        }
        try? FileManager.default.removeItem(atPath: workPath)
    }

    /// The run failed: see the type's rules. Never touches an earlier run.
    func abandon() {
        let fm = FileManager.default
        if isResume { return }
        if workPath != path {
            try? fm.removeItem(atPath: workPath)
            return
        }
        // A new run started in a folder without run files: every run file there is its own.
        if fm.fileExists(atPath: file("checkpoint.safetensors")) { return }   // resumable: keep
        for name in Self.runFiles { try? fm.removeItem(atPath: file(name)) }
        if createdFolder { rmdir(path) }
    }

    /// Runs `body(workPath)`, then `finish`; on any error `abandon` and rethrow.
    func run<R>(_ body: (String) throws -> R) throws -> R {
        do {
            let result = try body(workPath)
            try finish()
            return result
        } catch {
            abandon()
            throw error
        }
    }
}
