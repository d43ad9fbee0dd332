import Foundation

/// Renders benchmark rows as a fixed-width text table (stdout) or Markdown (README).
public enum BenchTable {
    static let headers = ["op", "algo", "pass", "B", "H", "T", "dk", "dv", "tokens/s", "GFLOP/s", "peak", "of peak", "of machine", "RSS MiB", "threads", "vs 1 thread"]

    static func cells(_ r: BenchRow) -> [String] {
        [r.op, r.algo + (r.chunk.map { "(\($0))" } ?? ""), r.pass, "\(r.B)", "\(r.H)", "\(r.T)", "\(r.dk)", "\(r.dv)",
         String(format: "%.0f", r.tokens_per_s), String(format: "%.1f", r.gflops),
         String(format: "%.1f", r.sgemm_peak_gflops), String(format: "%.0f%%", 100 * r.peak_fraction),
         String(format: "%.0f%%", 100 * r.machine_peak_fraction), String(format: "%.0f", r.peak_rss_mib),
         "\(r.threads)", r.gain_over_one_thread.map { String(format: "%.2fx", $0) } ?? ""]
    }

    /// A fixed-width table for a terminal.
    public static func text(_ rows: [BenchRow]) -> String {
        let all = [headers] + rows.map(cells)
        let widths = headers.indices.map { i in all.map { $0[i].count }.max()! }
        return all.map { row in
            row.indices.map { i in
                i < 3 ? row[i].padding(toLength: widths[i], withPad: " ", startingAt: 0)
                      : String(repeating: " ", count: widths[i] - row[i].count) + row[i]
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// A Markdown table.
    public static func markdown(_ rows: [BenchRow]) -> String {
        var lines = ["| " + headers.joined(separator: " | ") + " |",
                     "|" + headers.indices.map { $0 < 3 ? "---" : "---:" }.joined(separator: "|") + "|"]
        lines += rows.map { "| " + cells($0).joined(separator: " | ") + " |" }
        return lines.joined(separator: "\n")
    }

    /// The rows as a JSON array (pretty-printed, keys sorted).
    public static func json(_ rows: [BenchRow]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(rows)
    }
}
