import FastWeights
import Foundation

/// One point of a synthetic figure: a model at one S.
struct Schlag2021Row: Codable {
    var model: String
    var rule: String
    var phi: String
    var d_dot: Int
    var S: Int
    /// The best evaluation loss of the run.
    var loss: Double
    /// The last evaluation's loss (the paper's notebooks plot this one).
    var final_loss: Double?
    var accuracy_pct: Double
    var steps: Int
    var seconds: Double
    var stop: String
    var reader: String

    init(name: String, result r: SyntheticRunResult) {
        let reader = (try? r.config.reader()) ?? .softmax
        model = name
        rule = reader.ruleName
        phi = reader.featureMap?.description ?? "softmax"
        d_dot = r.dotSize
        S = r.config.size
        loss = r.bestLoss
        final_loss = r.finalLoss ?? r.history.last?.evalLoss
        accuracy_pct = r.bestAccuracyPercent
        steps = r.steps
        seconds = r.seconds
        stop = r.stop.rawValue
        self.reader = r.config.model
    }
}

/// The table, JSON, CSV and figure of one setting.
struct Schlag2021Report {
    var setting: Int
    var scale: Schlag2021.Scale
    var quick: Bool
    var models: [Schlag2021Model]
    var sizes: [Int]
    var rows: [Schlag2021Row]
    var wallSeconds: Double

    /// "Departs from ~0": the first S whose best loss is above this.
    static let departureLoss = 0.01

    var baseName: String { "schlag2021-setting\(setting)" }

    func row(_ m: Schlag2021Model, _ s: Int) -> Schlag2021Row? {
        rows.first { $0.reader == m.model && $0.S == s }
    }

    /// Where `m`'s loss departs from ~0: the smallest S from which on every
    /// S of the sweep has a loss above `departureLoss` (a single bump that
    /// comes back to ~0 at a larger S is noise, not a departure); nil: never.
    func departure(_ m: Schlag2021Model) -> Int? {
        let measured = sizes.filter { row(m, $0) != nil }
        var first: Int?
        for s in measured.reversed() {
            guard let loss = row(m, s)?.loss, loss > Self.departureLoss else { break }
            first = s
        }
        return first
    }

    /// What the paper's figures show for `m` (Figures 2 and 3 have no
    /// table of numbers): where its loss leaves ~0.
    func paperDeparture(_ m: Schlag2021Model) -> String {
        guard let reader = try? SyntheticReader(parsing: m.model) else { return "-" }
        let dDot = rows.first { $0.reader == m.model }?.d_dot
        switch reader {
        case .softmax: return "never"
        case .sumRule(.favor), .deltaRule(.favor): return "small S"
        case .sumRule where setting == 2: return "at once"
        default: return dDot.map { "near \($0)" } ?? "near d_dot"
        }
    }

    /// Rows = models, columns = S; cells the best evaluation loss.
    func table() -> String {
        var lines = ["Schlag et al. 2021, synthetic setting \(setting) (\(setting == 1 ? "capacity: L = S, no replacement" : "updates: L = 2S, with replacement")), scale \(scale.rawValue) (d_key \(scale.keySize))\(quick ? ", quick" : ""): best evaluation loss",
                     ""]
        let nameWidth = max(18, (models.map(\.name.count).max() ?? 0) + 1)
        func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
        func lpad(_ s: String, _ w: Int) -> String { s.count >= w ? s : String(repeating: " ", count: w - s.count) + s }
        lines.append(pad("model", nameWidth) + lpad("d_dot", 6) + sizes.map { lpad("S=\($0)", 8) }.joined() + lpad("departs", 9) + lpad("paper", 11))
        for m in models {
            let dDot = rows.first { $0.reader == m.model }?.d_dot
            var line = pad(m.name, nameWidth) + lpad(dDot.map(String.init) ?? "-", 6)
            for s in sizes { line += lpad(row(m, s).map { String(format: "%.4f", $0.loss) } ?? "-", 8) }
            line += lpad(departure(m).map { "S=\($0)" } ?? "never", 9)
            line += lpad(paperDeparture(m), 11)
            lines.append(line)
        }
        lines.append("")
        lines.append("departs: the smallest S from which every larger S of the sweep has loss > \(Self.departureLoss); paper: where the paper's Figure \(setting + 1) shows it (each model's loss leaves ~0 near S = d_dot; FAVOR+ is above ~0 even at small S; in setting 2 the sum rule is never at ~0).")
        return lines.joined(separator: "\n")
    }

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(rows)
    }

    func csv() -> String {
        var lines = ["model,rule,phi,d_dot,S,loss,final_loss,accuracy_pct,steps,seconds,stop"]
        for r in rows {
            lines.append("\"\(r.model)\",\(r.rule),\(r.phi),\(r.d_dot),\(r.S),\(r.loss),\(r.final_loss.map { String($0) } ?? ""),\(r.accuracy_pct),\(r.steps),\(String(format: "%.2f", r.seconds)),\(r.stop)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes `<base>.json`, `<base>.csv`, `<base>.md` (the table) and `<base>.svg` into `dir`.
    /// Writes the JSON, CSV, Markdown and SVG into `dir`, all or none.
    func write(to dir: String) throws {
        func path(_ ext: String) -> String { (dir as NSString).appendingPathComponent("\(baseName).\(ext)") }
        let json = Array(try json()) + [UInt8(ascii: "\n")]
        try OutputTransaction.run { tx in
            try tx.stage(json, to: path("json"))
            try tx.stage(Array(csv().utf8), to: path("csv"))
            try tx.stage(Array(("```\n" + table() + "\n```\n").utf8), to: path("md"))
            try tx.stage(Array(LossVersusSizeSVG(report: self).render().utf8), to: path("svg"))
        }
    }
}
