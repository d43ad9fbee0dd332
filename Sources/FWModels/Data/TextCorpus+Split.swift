import FWCore

extension TextCorpus {
    /// Splits by fixed lists of works: the works named in `validation` go to
    /// the validation split, those in `test` to the test split, every other
    /// work to train. Each split keeps the works in the order of `works`.
    ///
    /// Throws `FWError.invalidArgument` when two works share a name, a
    /// listed work is missing or in both lists, or no work is left for train.
    public static func split(works: [TextWork], validation: [String], test: [String], source: String) throws -> TextCorpus {
        try checkUniqueNames(works, source: source)
        let names = Set(works.map(\.name))
        for (list, role) in [(validation, "validation"), (test, "test")] {
            for name in list where !names.contains(name) {
                throw FWError.invalidArgument("\(source): has no work '\(name)' (a \(role) work)")
            }
        }
        if let both = validation.first(where: test.contains) {
            throw FWError.invalidArgument("\(source): work '\(both)' is listed for both validation and test")
        }
        let train = works.filter { !validation.contains($0.name) && !test.contains($0.name) }
        guard !train.isEmpty else {
            throw FWError.invalidArgument("\(source): no work is left for training (\(works.count) works, \(validation.count + test.count) listed for validation and test)")
        }
        return TextCorpus(source: source, train: TextCorpusSplit(train),
                          valid: TextCorpusSplit(works.filter { validation.contains($0.name) }),
                          test: TextCorpusSplit(works.filter { test.contains($0.name) }))
    }

    /// Splits by the share rule (`fwp data text`), deterministic in `works`'
    /// order (a folder's files in name order):
    ///
    /// 1. **Whole works.** Test is the shortest run of works at the end
    ///    holding at least 5% of all bytes; validation the shortest run just
    ///    before it holding at least 5%; train every work before that. Used
    ///    when train keeps at least one work.
    /// 2. **Otherwise** (one work, two, or a last work too large), the works'
    ///    bytes, in order, are cut at two line boundaries: test is the
    ///    shortest tail of whole lines with at least 5% of the bytes,
    ///    validation the shortest run of whole lines before it with at least
    ///    5%, train the rest. A work cut there is listed once per split it
    ///    falls in, as `name:lines A-B` (1-based, inclusive).
    ///
    /// "Bytes" are the split files' bytes (`TextWork.splitBytes`), so a
    /// split's `works` always add up to its file. Throws
    /// `FWError.invalidArgument` for no works, an empty work, two works with
    /// one name, or text of fewer lines than the three splits need.
    public static func split(works: [TextWork], source: String) throws -> TextCorpus {
        try checkUniqueNames(works, source: source)
        guard !works.isEmpty else { throw FWError.invalidArgument("\(source): the corpus is empty (no works)") }
        if let empty = works.first(where: { $0.bytes.isEmpty }) {
            throw FWError.invalidArgument("\(source): work '\(empty.name)' is empty")
        }
        let sizes = works.map(\.splitBytes.count)
        let total = sizes.reduce(0, +)
        func enough(_ bytes: Int) -> Bool { bytes * minimumShareDenominator >= total }
        // Rule 1: runs of whole works from the end.
        func run(before end: Int) -> (start: Int, bytes: Int) {
            var start = end, bytes = 0
            while start > 0 && !enough(bytes) { start -= 1; bytes += sizes[start] }
            return (start, bytes)
        }
        let t = run(before: works.count)
        let v = run(before: t.start)
        if enough(t.bytes) && enough(v.bytes) && v.start > 0 {
            return TextCorpus(source: source, train: TextCorpusSplit(Array(works[..<v.start])),
                              valid: TextCorpusSplit(Array(works[v.start..<t.start])),
                              test: TextCorpusSplit(Array(works[t.start...])))
        }
        return try splitAtLines(works, source: source)
    }

    /// Rule 2 of `split(works:source:)`: two cuts at line starts of the works' joined bytes.
    private static func splitAtLines(_ works: [TextWork], source: String) throws -> TextCorpus {
        let stream = works.flatMap(\.splitBytes)     // ends with "\n"
        let n = stream.count
        var lineStarts = [0]
        for i in 0..<(n - 1) where stream[i] == 0x0A { lineStarts.append(i + 1) }
        func enough(_ bytes: Int) -> Bool { bytes * minimumShareDenominator >= n }
        let testStart = lineStarts.last { enough(n - $0) }!          // 0 always qualifies
        guard let validStart = lineStarts.last(where: { $0 < testStart && enough(testStart - $0) }), validStart > 0 else {
            throw FWError.invalidArgument("\(source): too little text to split at line boundaries (\(lineStarts.count) lines, \(n) bytes): train, validation and test each need whole lines, validation and test at least 5% of the bytes each")
        }
        // Where each work lies in the stream.
        var ranges: [Range<Int>] = []
        var offset = 0
        for w in works {
            let count = w.splitBytes.count
            ranges.append(offset..<(offset + count))
            offset += count
        }
        func lines(_ r: Range<Int>) -> Int { stream[r].reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) } }
        func split(_ r: Range<Int>) -> TextCorpusSplit {
            var names: [String] = []
            for (w, range) in ranges.enumerated() where range.overlaps(r) {
                if r.contains(range.lowerBound) && range.upperBound <= r.upperBound {
                    names.append(works[w].name)
                } else {
                    let part = max(r.lowerBound, range.lowerBound)..<min(r.upperBound, range.upperBound)
                    let first = 1 + lines(range.lowerBound..<part.lowerBound)
                    names.append("\(works[w].name):lines \(first)-\(first + lines(part) - 1)")
                }
            }
            return TextCorpusSplit(works: names, bytes: Array(stream[r]))
        }
        return TextCorpus(source: source, train: split(0..<validStart), valid: split(validStart..<testStart),
                          test: split(testStart..<n))
    }

    private static func checkUniqueNames(_ works: [TextWork], source: String) throws {
        var seen = Set<String>()
        for w in works where !seen.insert(w.name).inserted {
            throw FWError.invalidArgument("\(source): two works are named '\(w.name)'")
        }
    }
}
