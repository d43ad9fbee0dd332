import ArgumentParser
import FastWeights
import FWBench
import Foundation

/// `fwp bench`: the benchmark table of `make bench`.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark the ops: tokens/s, GFLOP/s and the fraction of this run's sgemm peak.")

    @Option(help: "Also write the rows as a JSON array to this file.") var json: String?
    @Option(help: "Also write the table as Markdown to this file.") var markdown: String?
    @Option(help: "Sequence length of the fast weight programmer rows.") var T: Int = 1024
    @Flag(help: "Only d = 64 and the crossover rows (a quick look).") var quick = false
    @Flag(help: "Only the decode rows (generation at batch 1).") var decode = false
    @Flag(name: .customLong("lm-step"), help: "Only the LM training-step rows (one whole step per mixer).") var lmStep = false
    @Flag(name: .customLong("one-sequence"), help: "Only the one-long-document rows (B = H = 1, T = 65,536, d = 64 and 128), and again on one thread.")
    var oneSequence = false
    @Option(help: "Only the fast weight programmer rows (d = 64) of these rules, e.g. delta,gated-delta.")
    var rules: String?
    @Option(help: "With --rules: the head sizes d (dk = dv) of the rows, e.g. 16,32,64,128 (default 64).")
    var dims: String?
    @Option(help: "With --rules: only the rows of these algorithms, recurrent and/or chunked (default both).")
    var algos: String?
    @Option(help: "With --lm-step: only the training-step rows of these mixers, e.g. softmax,linear (default all).")
    var mixers: String?

    func run() throws {
        try SizeLimits.check(T, in: 1...Self.maxT, "--T")
        // --quick only shortens the op and decode rows; each of the others picks one kind of row.
        let picked = [("--decode", decode), ("--lm-step", lmStep), ("--rules", rules != nil),
                      ("--one-sequence", oneSequence)].filter(\.1).map(\.0)
        if picked.count > 1 { throw FWError.invalidArgument("\(picked.joined(separator: " and ")) exclude each other") }
        if quick && (lmStep || rules != nil || oneSequence) {
            throw FWError.invalidArgument("--quick cannot be combined with \(lmStep ? "--lm-step" : oneSequence ? "--one-sequence" : "--rules")")
        }
        if mixers != nil && !lmStep { throw FWError.invalidArgument("--mixers needs --lm-step") }
        let stepMixers = try mixers.map { try $0.split(separator: ",", omittingEmptySubsequences: false).map { try LanguageModelMixer(parsing: String($0)) } } ?? LanguageModelMixer.allCases
        // The largest rows (B = 4, H = 8, d = 128): inputs, outputs, gradients and the op's own buffers.
        try MemoryBudget.check(MemoryBudget.floats(4 * 8 * Double(T) * 128 * 24), "fwp bench at --T \(T)")
        // Every destination is checked before the first benchmark runs.
        for path in [json, markdown].compactMap({ $0 }) { try OutputTransaction.checkDestination(path) }
        let threads = ThreadOwnership.workers
        log("fwp bench: \(BLASCoreFix.description), \(threads) worker threads (OpenBLAS single-threaded inside each)")
        if BLASCore.isOlderThanCPU {
            // fwp re-runs itself with the matching kernels unless the caller chose them (BLASCoreFix).
            let chosen = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"].map { ", OPENBLAS_CORETYPE=\($0) set by the caller" } ?? ""
            log("fwp bench: warning: OpenBLAS kernels \(BLASCore.name) are older than this CPU (recommended \(BLASCore.recommendedCore)\(chosen))")
        }
        var peaks: [Int: Double] = [:]
        func peak(_ n: Int) -> Double {
            if let p = peaks[n] { return p }
            let p = Measure.sgemmPeak(n: n, threads: threads)
            log(String(format: "fwp bench: sgemm peak n=%d on %d threads: %.1f GFLOP/s", n, threads, p))
            peaks[n] = p
            return p
        }
        // Decoding at batch 1 runs on one thread: its peak is the one-thread sgemm.
        var peaks1: [Int: Double] = [:]
        func peak1(_ n: Int) -> Double {
            if let p = peaks1[n] { return p }
            let p = Measure.sgemmPeak(n: n, threads: 1)
            log(String(format: "fwp bench: sgemm peak n=%d on 1 thread: %.1f GFLOP/s", n, p))
            peaks1[n] = p
            return p
        }
        // The machine's limit, beside every row's own-size peak.
        let machinePeak1024 = Measure.sgemmPeak(n: Self.machinePeakSize, threads: threads)
        log(String(format: "fwp bench: sgemm n=%d on %d threads: %.1f GFLOP/s", Self.machinePeakSize, threads, machinePeak1024))
        var rows: [BenchRow] = []
        if let rules {
            let chosen = try rules.split(separator: ",").map { try FastWeightRule(parsing: String($0)) }
            let dimList = try (dims ?? "64").split(separator: ",").map { text -> Int in
                guard let d = Int(text), (1...1024).contains(d) else {
                    throw FWError.invalidArgument("--dims: '\(text)' is not a head size in 1...1024")
                }
                return d
            }
            let algoList = try (algos ?? "recurrent,chunked").split(separator: ",").map { text -> String in
                guard ["recurrent", "chunked"].contains(text) else {
                    throw FWError.invalidArgument("--algos: '\(text)' is not recurrent or chunked")
                }
                return String(text)
            }
            let cases = FWPBenchmarks.standardCases(dims: dimList, T: T)
                .filter { chosen.contains($0.rule) && algoList.contains($0.algorithm.name) }
            for (i, c) in cases.enumerated() {
                let row = try FWPBenchmarks.run(c, peak: peak(c.d))
                log(String(format: "[%d/%d] %@ %@ %@ d=%d: %.4f s, %.0f tokens/s, %.1f GFLOP/s", i + 1, cases.count,
                           row.op, row.algo, row.pass, row.dk, row.seconds, row.tokens_per_s, row.gflops))
                rows.append(row)
            }
            print(BenchTable.text(rows))
            return
        }
        if oneSequence {
            try measureOneSequence(into: &rows, peak: peak)
        } else if !decode && !lmStep {
            try measureOps(into: &rows, peak: peak, threads: threads)
            if !quick { try measureOneSequence(into: &rows, peak: peak) }
        }
        if lmStep || (!decode && !quick && !oneSequence) {
            let stepCases = LanguageModelStepBenchmarks.standardCases().filter { stepMixers.contains($0.mixer) }
            for (i, c) in stepCases.enumerated() {
                let row = try LanguageModelStepBenchmarks.run(c, peak: peak(c.modelSize))
                log(String(format: "[%d/%d] LM training step %@: %.0f tokens/s, %.1f GFLOP/s", i + 1, stepCases.count, row.algo,
                           row.tokens_per_s, row.gflops))
                rows.append(row)
            }
        }
        let decodeCases = lmStep || oneSequence ? [] : DecodeBenchmarks.standardCases(contexts: quick ? [256, 2048] : [256, 2048, 16_384])
        for (i, c) in decodeCases.enumerated() {
            let row = try ThreadOwnership.withBLASThreads(1) { try DecodeBenchmarks.run(c, peak: peak1(c.modelSize)) }
            log(String(format: "[%d/%d] decode %@ context %d: %.0f tokens/s", i + 1, decodeCases.count, row.algo, row.T, row.tokens_per_s))
            rows.append(row)
        }
        // On some machines sgemm runs faster at a smaller n (in cache) than at 1024: the limit is the best seen.
        let machinePeak = ([machinePeak1024] + Array(peaks.values)).max()!
        for i in rows.indices {
            rows[i].machine_peak_gflops = machinePeak
            rows[i].machine_peak_fraction = rows[i].gflops / machinePeak
        }
        print(BenchTable.text(rows))
        print(String(format: "peak: this run's sgemm at the row's size class and threads; of machine: of %.1f GFLOP/s, the best %d-thread sgemm of this run (n = %d gave %.1f)", machinePeak, threads, Self.machinePeakSize, machinePeak1024))
        print("")
        if !decode && !lmStep && !oneSequence { print(FWPBenchmarks.crossoverSummary(rows)) }
        if !lmStep && !oneSequence { print(DecodeBenchmarks.crossoverSummary(rows)) }
        let jsonBytes = try json.map { _ in [UInt8](try BenchTable.json(rows)) }
        try OutputTransaction.run { tx in
            if let json, let jsonBytes { try tx.stage(jsonBytes, to: json) }
            if let markdown { try tx.stage(Array(BenchTable.markdown(rows).utf8), to: markdown) }
        }
    }

    /// n of the machine-peak sgemm.
    static let machinePeakSize = 1024

    /// The longest sequence `--T` may ask for.
    static let maxT = 1 << 20

    /// The one-long-document rows (`FWPBenchmarks.oneSequenceCases`) on
    /// every worker, then, with more than one, the same rows from this tool
    /// run again under `FWP_THREADS=1` (appended, and their rates set as
    /// `one_thread_tokens_per_s` / `gain_over_one_thread` of the others).
    private func measureOneSequence(into rows: inout [BenchRow], peak: (Int) -> Double) throws {
        let cases = FWPBenchmarks.oneSequenceCases()
        var measured: [BenchRow] = []
        for (i, c) in cases.enumerated() {
            let row = try FWPBenchmarks.run(c, peak: peak(c.d))
            log(String(format: "[%d/%d] one sequence %@ %@ %@ d=%d T=%d: %.0f tokens/s, %.1f GFLOP/s", i + 1, cases.count,
                       row.op, row.algo, row.pass, row.dk, row.T, row.tokens_per_s, row.gflops))
            measured.append(row)
        }
        guard ThreadOwnership.workers > 1 else {
            rows += measured
            return
        }
        log("fwp bench: the one-sequence rows again on one thread (fwp bench --one-sequence under FWP_THREADS=1)")
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("fwp-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let jsonPath = scratch + "/one-thread.json"
        let outcome = try ChildProcess.run("/proc/self/exe", ["bench", "--one-sequence", "--json", jsonPath],
                                           scratch: scratch, environment: ["FWP_THREADS": "1"])
        guard outcome.status == 0, let data = FileManager.default.contents(atPath: jsonPath) else {
            throw FWError.invalidArgument("fwp bench: the one-thread run failed: \(outcome.reason)")
        }
        let single = try JSONDecoder().decode([BenchRow].self, from: data)
        for i in measured.indices {
            let r = measured[i]
            if let one = single.first(where: { $0.op == r.op && $0.algo == r.algo && $0.chunk == r.chunk && $0.pass == r.pass
                                               && $0.dk == r.dk && $0.T == r.T }) {
                measured[i].one_thread_tokens_per_s = one.tokens_per_s
                measured[i].gain_over_one_thread = r.tokens_per_s / one.tokens_per_s
            }
        }
        rows += measured + single
    }

    /// The op, fast-weights RNN and attention-layer rows.
    private func measureOps(into rows: inout [BenchRow], peak: (Int) -> Double, threads: Int) throws {
        let dims = quick ? [64] : [64, 128]
        let cases = FWPBenchmarks.standardCases(dims: dims, T: T)
            + FWPBenchmarks.crossoverCases(dims: [4, 8, 16, 32], T: T) + FWPBenchmarks.shortSequenceCases()
        for (i, c) in cases.enumerated() {
            let row = try FWPBenchmarks.run(c, peak: peak(c.d))
            log(String(format: "[%d/%d] %@ %@ %@ d=%d: %.0f tokens/s, %.1f GFLOP/s (%.0f%% of peak)",
                       i + 1, cases.count, row.op, row.algo, row.pass, row.dk, row.tokens_per_s, row.gflops,
                       100 * row.peak_fraction))
            rows.append(row)
        }
        let rnnCases = FastRNNBenchmarks.standardCases(lengths: quick ? [64] : [64, 512])
        for (i, c) in rnnCases.enumerated() {
            let row = try FastRNNBenchmarks.run(c, peak: peak(c.N))
            log(String(format: "[%d/%d] fast-rnn %@ %@ T=%d: %.0f tokens/s, %.1f GFLOP/s (%.0f%% of peak)",
                       i + 1, rnnCases.count, row.algo, row.pass, row.T, row.tokens_per_s, row.gflops,
                       100 * row.peak_fraction))
            rows.append(row)
        }
        let layerCases = AttentionLayerBenchmarks.standardCases(lengths: quick ? [256, 1024] : [256, 1024, 4096])
        for (i, c) in layerCases.enumerated() {
            let row = try AttentionLayerBenchmarks.run(c, peak: peak(c.D))
            log(String(format: "[%d/%d] %@ fwd+bwd T=%d: %.0f tokens/s, %.1f GFLOP/s", i + 1, layerCases.count,
                       row.op, row.T, row.tokens_per_s, row.gflops))
            rows.append(row)
        }
    }

    private func log(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8)!) }
}
