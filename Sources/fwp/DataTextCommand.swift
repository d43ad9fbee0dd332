import ArgumentParser
import FastWeights
import Foundation

/// `fwp data text --text FILE|DIR --out DIR`.
struct DataTextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text",
        abstract: "Any UTF-8 corpus: a folder's *.txt files (each a work) or one file, split deterministically.",
        discussion: """
            A folder is read as its *.txt files in name order (hidden and empty files skipped), \
            each a work; test is the shortest run of works at the end with at least 5% of the \
            bytes, validation the shortest run before it with at least 5%, train the rest. \
            A single file, or works too few for that, are cut at two line boundaries instead \
            (the last lines holding >= 5% are test, the lines before them holding >= 5% \
            validation); a cut work is listed as name:lines A-B. A folder that already holds \
            a corpus is refused unless --force.
            """)

    @Option(help: "A UTF-8 text file, or a folder of *.txt files.") var text: String
    @Option(help: "Output folder (made if missing; not the --text folder).") var out: String
    @Flag(help: "Replace a corpus in --out, but only once the new one is complete.") var force = false
    @Flag(help: "No progress output on stderr.") var quiet = false

    func run() throws {
        try DataOutput.check(out, force: force)
        func resolved(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }
        if resolved(text) == resolved(out) {
            throw FWError.invalidArgument("--out \(out) is the --text folder: the splits would be read as works next time; choose another --out")
        }
        let works = try TextCorpus.readWorks(at: text)
        let corpus = try TextCorpus.split(works: works, source: text)
        // Progress only once the input has passed every check: bad input is one line.
        if !quiet { printError("read \(DataOutput.worksCount(works.count)) from \(text), \(works.reduce(0) { $0 + $1.bytes.count }) bytes") }
        try DataOutput.write(corpus, to: out, quiet: quiet)
    }
}
