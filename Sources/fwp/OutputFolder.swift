import FastWeights
import Foundation

/// Writes a command's output files all or nothing: each file goes to a
/// temporary name in the folder first; only when every one is written are
/// they renamed into place, so an error never leaves a partial output.
enum OutputFolder {
    static func write(_ files: [(name: String, tensor: Tensor)], to folder: String) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: folder, isDirectory: &isDir) {
            if !isDir.boolValue { throw FWError.file(path: folder, reason: "--out exists and is not a folder") }
        } else {
            do { try fm.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            catch { throw FWError.file(path: folder, reason: "cannot create the output folder") }
        }
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var written: [(temp: String, final: String)] = []
        do {
            for (name, tensor) in files {
                let final = (folder as NSString).appendingPathComponent(name)
                let temp = (folder as NSString).appendingPathComponent(".\(name).tmp-\(tag)")
                guard fm.createFile(atPath: temp, contents: Data(NPY.encode(tensor))) else {
                    throw FWError.file(path: final, reason: "cannot write")
                }
                written.append((temp, final))
            }
            for (temp, final) in written where rename(temp, final) != 0 {
                throw FWError.file(path: final, reason: "cannot write: \(String(cString: strerror(errno)))")
            }
        } catch {
            for (temp, _) in written { try? fm.removeItem(atPath: temp) }
            throw error
        }
    }
}
