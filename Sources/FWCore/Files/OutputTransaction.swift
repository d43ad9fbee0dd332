import Foundation

/// Writes a set of output files all or nothing.
///
/// A command stages every file it will write (the bytes go to a temporary
/// name beside the destination), and only when all are staged does
/// `commit` move them into place. An existing file is first moved aside to
/// a backup name, so that if any later step fails, every destination is
/// put back exactly as it was; on success the backups are deleted. Folders
/// the transaction created are removed again when it fails, and a
/// destination that is a directory (or whose folder cannot be made) is an
/// error before anything is written.
///
///     try OutputTransaction.run { tx in
///         try tx.stage(NPY.encode(y), to: "out/y.npy")
///         try tx.stage(NPY.encode(state), to: "out/state.npy")
///     }   // both files appear, or neither changes
///
/// Rename is atomic on one file system, so a crash leaves each destination
/// either old or new, never half-written (and at worst hidden `.tmp-` or
/// `.bak-` files beside it).
public final class OutputTransaction {
    private struct Staged { var temp: String; var final: String }
    private var staged: [Staged] = []
    private var removals: [String] = []
    private var createdFolders: [String] = []
    private let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    private var finished = false

    public init() {}

    /// Runs `body` with a new transaction and commits it; on any error the
    /// transaction is rolled back (nothing changed) and the error rethrown.
    public static func run<R>(_ body: (OutputTransaction) throws -> R) throws -> R {
        let tx = OutputTransaction()
        do {
            let result = try body(tx)
            try tx.commit()
            return result
        } catch {
            tx.rollback()
            throw error
        }
    }

    /// Makes `folder` and any missing parents (remembered, so that a failed
    /// transaction removes them again). Throws `FWError.file` when something
    /// that is not a folder is in the way or the folder cannot be made.
    public func makeFolder(_ folder: String) throws {
        let path = folder.isEmpty ? "." : folder
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            if !isDir.boolValue { throw FWError.file(path: path, reason: "exists and is not a folder") }
            return
        }
        let parent = FilePaths.folder(of: path)
        if parent != path && parent != "." && parent != "/" { try makeFolder(parent) }
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw FWError.file(path: path, reason: "cannot create the folder: \(String(cString: strerror(errno)))")
        }
        createdFolders.append(path)
    }

    /// Throws `FWError.file` unless `path` could be written now: its folder
    /// exists (or `createFolder` may make it) and is writable, and `path` is
    /// not a folder. Nothing is written. Commands call it for every
    /// destination before doing any work.
    public static func checkDestination(_ path: String, createFolder: Bool = false) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw FWError.file(path: path, reason: "is a folder, not a file that can be written")
        }
        let folder = FilePaths.folder(of: path)
        // The nearest existing ancestor must be a writable folder.
        var probe = folder
        while !FileManager.default.fileExists(atPath: probe, isDirectory: &isDir) {
            guard createFolder else { throw FWError.file(path: path, reason: "no such folder '\(folder)'") }
            let up = FilePaths.folder(of: probe)
            if up == probe { break }
            probe = up
        }
        _ = FileManager.default.fileExists(atPath: probe, isDirectory: &isDir)
        guard isDir.boolValue else { throw FWError.file(path: path, reason: "'\(probe)' is not a folder") }
        guard access(probe, W_OK) == 0 else { throw FWError.file(path: path, reason: "folder '\(probe)' is not writable") }
    }

    /// Writes `bytes` to a temporary file beside `path` (made visible at `commit`).
    public func stage(_ bytes: [UInt8], to path: String) throws {
        precondition(!finished, "OutputTransaction: stage after commit or rollback")
        try Self.checkDestination(path)
        let url = URL(fileURLWithPath: path)
        let temp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(tag)").path
        guard FileManager.default.createFile(atPath: temp, contents: Data(bytes)) else {
            throw FWError.file(path: path, reason: "cannot write: \(String(cString: strerror(errno)))")
        }
        staged.append(Staged(temp: temp, final: path))
    }

    /// Moves the existing file at `path` (if any) away at `commit`: deleted
    /// when the transaction succeeds, restored when it fails.
    public func remove(_ path: String) {
        removals.append(path)
    }

    /// Moves every staged file into place (see the type's description).
    public func commit() throws {
        precondition(!finished, "OutputTransaction: commit twice")
        var backups: [(backup: String, original: String)] = []
        var placed: [String] = []
        func backup(_ path: String) throws {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return }
            if isDir.boolValue { throw FWError.file(path: path, reason: "is a folder, not a file that can be replaced") }
            let url = URL(fileURLWithPath: path)
            let b = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).bak-\(tag)").path
            guard rename(path, b) == 0 else {
                throw FWError.file(path: path, reason: "cannot replace: \(String(cString: strerror(errno)))")
            }
            backups.append((b, path))
        }
        do {
            for path in removals { try backup(path) }
            for s in staged {
                try backup(s.final)
                guard rename(s.temp, s.final) == 0 else {
                    throw FWError.file(path: s.final, reason: "cannot write: \(String(cString: strerror(errno)))")
                }
                placed.append(s.final)
            }
        } catch {
            // Undo in reverse: new files out, old files back.
            for p in placed.reversed() { unlink(p) }
            for b in backups.reversed() { rename(b.backup, b.original) }
            throw error
        }
        for b in backups { unlink(b.backup) }
        staged = []
        createdFolders = []
        finished = true
    }

    /// Removes every staged file and every folder this transaction made.
    public func rollback() {
        if finished { return }
        for s in staged { unlink(s.temp) }
        staged = []
        for folder in createdFolders.reversed() { rmdir(folder) }   // only when empty
        createdFolders = []
        finished = true
    }

    deinit { rollback() }
}

/// Path helpers that do not go through `NSString.deletingLastPathComponent`,
/// which traps on a path without a slash in this toolchain's Foundation.
public enum FilePaths {
    /// The folder part of `path`: `a/b/c` -> `a/b`, `/c` -> `/`, `c` -> `.`.
    public static func folder(of path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        if slash == p.startIndex { return "/" }
        var head = p[..<slash]
        while head.count > 1 && head.hasSuffix("/") { head = head.dropLast() }
        return String(head)
    }
}
