import FastWeights
import Foundation

/// A command's output folder of `.npy` files (`fwp op`), written all or
/// nothing through `OutputTransaction`: on any failure the folder is left
/// exactly as it was (and is not created if it did not exist).
enum OutputFolder {
    /// Throws unless `folder` can take output files: an existing folder, or
    /// a path whose nearest existing parent is a writable folder. Called
    /// before any work is done.
    static func check(_ folder: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) {
            guard isDir.boolValue else { throw FWError.file(path: folder, reason: "--out exists and is not a folder") }
            guard access(folder, W_OK) == 0 else { throw FWError.file(path: folder, reason: "--out is not writable") }
            return
        }
        try OutputTransaction.checkDestination((folder as NSString).appendingPathComponent("probe"), createFolder: true)
    }

    /// Writes every `(name, tensor)` as `folder/name` (creating the folder).
    static func write(_ files: [(name: String, tensor: Tensor)], to folder: String) throws {
        try OutputTransaction.run { tx in
            try tx.makeFolder(folder)
            for (name, tensor) in files {
                try tx.stage(NPY.encode(tensor), to: (folder as NSString).appendingPathComponent(name))
            }
        }
    }

    /// Reads a `.npy` input and rejects NaN/Inf entries, naming the file and the index.
    static func readFinite(_ path: String) throws -> Tensor {
        let t = try NPY.read(path)
        do { try t.checkFinite(path) } catch let FWError.nonFinite(message) {
            throw FWError.invalidArgument(message + " (inputs must be finite)")
        }
        return t
    }
}
