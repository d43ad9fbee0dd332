import Foundation

/// Writes files whole or not at all: the bytes go to a temporary file in the
/// same folder, which is then renamed over the destination (rename is atomic
/// on one file system), so a crash never leaves a half-written file.
public enum AtomicFile {
    /// Writes `bytes` to `path` atomically. Throws `FWError.file` naming the path.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent()
        let temp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try Data(bytes).write(to: temp)
            if rename(temp.path, url.path) != 0 {
                let reason = String(cString: strerror(errno))
                try? FileManager.default.removeItem(at: temp)
                throw FWError.file(path: path, reason: "cannot write: \(reason)")
            }
        } catch let error as FWError {
            throw error
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw FWError.file(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }

    /// Reads a whole file. Throws `FWError.file` naming the path when it is missing or unreadable.
    public static func read(_ path: String) throws -> [UInt8] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw FWError.file(path: path, reason: "no such file")
        }
        if isDir.boolValue { throw FWError.file(path: path, reason: "is a directory, not a file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FWError.file(path: path, reason: "cannot read")
        }
        return [UInt8](data)
    }
}
