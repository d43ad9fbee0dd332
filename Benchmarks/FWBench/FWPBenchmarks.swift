import FastWeights

/// The fast weight programmer rows of `make bench`: every rule of the registry,
/// recurrent and chunked, forward and forward+backward, phi identity, norm l2,
/// at B=4, H=8, T=1024, dk=dv=64 and 128 (the issue's bench shape).
public enum FWPBenchmarks {
    /// One configuration to measure.
    public struct Case: Sendable {
        public var rule: FastWeightRule
        public var algorithm: FWPAlgorithm
        public var backward: Bool
        public var B = 4, H = 8, T = 1024, d = 64
    }

    /// The issue's table.
    public static func standardCases(dims: [Int] = [64, 128], T: Int = 1024) -> [Case] {
        var cases: [Case] = []
        for d in dims {
            for rule in FastWeightRule.allCases {
                for algorithm in [FWPAlgorithm.recurrent, .chunked(size: 32), .chunked(size: 64)] {
                    for backward in [false, true] {
                        cases.append(Case(rule: rule, algorithm: algorithm, backward: backward, T: T, d: d))
                    }
                }
            }
        }
        return cases
    }

    /// One long document, B = H = 1, T = 65,536, at d = 64 and 128: the rows
    /// where the op has fewer sequences than cores, so the cores share one
    /// sequence: the recurrent form cuts its value columns into parts, the
    /// chunked form runs as a team (`FastWeightProgrammer+ValueSplit.swift`,
    /// `Rules/TeamChunked.swift`). `fwp bench` measures them once more on
    /// one thread for the second core's gain.
    public static func oneSequenceCases(T: Int = 65_536) -> [Case] {
        var cases: [Case] = []
        for d in [64, 128] {
            for rule in [FastWeightRule.delta, .sum] {
                for algorithm in [FWPAlgorithm.recurrent, .chunked(size: 64)] {
                    for backward in [false, true] {
                        cases.append(Case(rule: rule, algorithm: algorithm, backward: backward, B: 1, H: 1, T: T, d: d))
                    }
                }
            }
        }
        return cases
    }

    /// Measures one case; `peak` is the sgemm peak (GFLOP/s) of its size class.
    public static func run(_ c: Case, peak: Double) throws -> BenchRow {
        var rng = SeededRNG(seed: 1)
        let shape = [c.B, c.H, c.T, c.d]
        let q = rng.normalTensor(shape), k = rng.normalTensor(shape), v = rng.normalTensor(shape)
        // The rule's gates (registry): beta from U(0, 1), g from U(-0.5, 0).
        var gates = FWPGates()
        if c.rule.needs(.beta) { gates.beta = rng.uniformTensor([c.B, c.H, c.T]) }
        if c.rule.needs(.g) {
            var g = rng.uniformTensor([c.B, c.H, c.T])
            for i in 0..<g.count { g.storage[i] *= -0.5 }
            gates.g = g
        }
        let dy = rng.normalTensor(shape)
        let op = try FastWeightProgrammer(rule: c.rule, featureMap: .identity, normalization: .l2,
                                          algorithm: c.algorithm)
        Measure.resetPeakResident()
        let seconds = Measure.bestSeconds {
            let result = try! op.forward(q: q, k: k, v: v, gates: gates, saveForBackward: c.backward)
            if c.backward {
                _ = try! FastWeightProgrammer.backward(dy: dy, cache: result.cache!)
            }
        }
        let rss = Measure.peakResidentMiB()
        let seq = SequenceShape(T: c.T, dphi: c.d, dv: c.d)
        // Feature map + l2 normalisation: ~4 flops per element of q and k, both passes.
        let phiFlops = Double(c.B * c.H * c.T * c.d) * 2 * 4 * (c.backward ? 2 : 1)
        let flops = Double(c.B * c.H) * FastWeightProgrammer.flops(rule: c.rule, algorithm: c.algorithm,
                                                                   shape: seq, backward: c.backward) + phiFlops
        let chunk: Int? = { if case let .chunked(s) = c.algorithm { return s } else { return nil } }()
        return BenchRow(
            op: c.rule.rawValue, algo: c.algorithm.name, pass: c.backward ? "forward+backward" : "forward",
            B: c.B, H: c.H, T: c.T, dk: c.d, dv: c.d, chunk: chunk, seconds: seconds,
            tokens_per_s: Double(c.B * c.T) / seconds, gflops: flops / seconds / 1e9,
            sgemm_peak_gflops: peak, peak_fraction: flops / seconds / 1e9 / peak,
            peak_rss_mib: rss, blas_core: BLASCore.name, threads: ThreadOwnership.workers)
    }
}

extension FWPBenchmarks {
    /// Forward+backward rows at small d, where the recurrent form may win.
    public static func crossoverCases(dims: [Int], T: Int = 1024) -> [Case] {
        var cases: [Case] = []
        for d in dims {
            for rule in FastWeightRule.allCases {
                for algorithm in [FWPAlgorithm.recurrent, .chunked(size: 32), .chunked(size: 64)] {
                    cases.append(Case(rule: rule, algorithm: algorithm, backward: true, T: T, d: d))
                }
            }
        }
        return cases
    }

    /// Forward+backward at T = 16 and 64, d = 64: where short sequences cross over.
    public static func shortSequenceCases() -> [Case] {
        var cases: [Case] = []
        for T in [16, 64] {
            for rule in FastWeightRule.allCases {
                for algorithm in [FWPAlgorithm.recurrent, .chunked(size: 32)] {
                    cases.append(Case(rule: rule, algorithm: algorithm, backward: true, B: 4, H: 8, T: T, d: 64))
                }
            }
        }
        return cases
    }

    /// One line per (rule, pass, d): which algorithm was faster, and by how much.
    public static func crossoverSummary(_ rows: [BenchRow]) -> String {
        var lines = ["Recurrent vs the fastest chunked row (time ratio recurrent/chunked; > 1 means chunked is faster):"]
        var seen = Set<String>()
        for r in rows where r.algo == "recurrent" {
            let key = "\(r.op) \(r.pass) d=\(r.dk) T=\(r.T)"
            guard !seen.contains(key),
                  let c = rows.filter({ $0.op == r.op && $0.pass == r.pass && $0.dk == r.dk && $0.T == r.T && $0.algo == "chunked" })
                      .min(by: { $0.seconds < $1.seconds })
            else { continue }
            seen.insert(key)
            let ratio = r.seconds / c.seconds
            lines.append(String(format: "  %@ %@ T=%d d=%d: %.2fx -> %@", r.op, r.pass, r.T, r.dk, ratio,
                                ratio > 1 ? "chunked(\(c.chunk ?? 0))" : "recurrent"))
        }
        return lines.joined(separator: "\n")
    }
}
