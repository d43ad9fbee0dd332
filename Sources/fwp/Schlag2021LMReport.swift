import FastWeights
import Foundation

/// One finished row of the language-modelling table, read from its run's summary.json.
struct Schlag2021LMRow {
    var plan: Schlag2021LMRowPlan
    var params: Int
    var validBPC: Double
    var testBPC: Double
    var steps: Int
    var seconds: Double
    var tokensPerSecond: Double
    var finalTrainLoss: Double?
    /// Periodic validation bpc: (step, bpc).
    var curve: [(Double, Double)]
    var reused = false
    /// The step at which training stopped on a non-finite number (the row diverged), and why.
    var divergedAtStep: Int?
    var divergence: String?

    /// A row whose child stopped with `message`: diverged when the message is a
    /// non-finite number at a step (`step 812: loss is NaN`), else nil (a failure).
    /// The curve is what its log holds, if anything.
    static func diverged(_ dir: String, plan: Schlag2021LMRowPlan, message: String) -> Schlag2021LMRow? {
        guard message.hasPrefix("step "), let step = Int(message.dropFirst(5).prefix { $0.isNumber }),
              message.contains("NaN") || message.contains("Inf") || message.contains("non-finite") else { return nil }
        var curve: [(Double, Double)] = []
        if let text = try? String(contentsOfFile: (dir as NSString).appendingPathComponent("log.csv"), encoding: .utf8) {
            for line in text.split(separator: "\n").dropFirst() {
                let f = line.split(separator: ",")
                if f.count >= 5, let s = Double(f[0]), let b = Double(f[4]) { curve.append((s, b)) }
            }
        }
        return Schlag2021LMRow(plan: plan, params: 0, validBPC: .nan, testBPC: .nan, steps: step, seconds: 0,
                               tokensPerSecond: 0, finalTrainLoss: nil, curve: curve, divergedAtStep: step, divergence: message)
    }

    /// The row's summary in `dir`, if there is a readable one.
    static func read(_ dir: String, plan: Schlag2021LMRowPlan) -> Schlag2021LMRow? {
        guard let data = FileManager.default.contents(atPath: (dir as NSString).appendingPathComponent("summary.json")),
              let s = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let valid = s["valid_bpc"] as? Double, let test = s["test_bpc"] as? Double else { return nil }
        let curve = (s["validation_curve"] as? [[Double]] ?? []).compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
        return Schlag2021LMRow(plan: plan, params: s["params"] as? Int ?? 0, validBPC: valid, testBPC: test,
                               steps: s["steps"] as? Int ?? 0, seconds: s["seconds"] as? Double ?? 0,
                               tokensPerSecond: s["tokens_per_s"] as? Double ?? 0,
                               finalTrainLoss: s["final_train_loss"] as? Double, curve: curve)
    }

    var line: String {
        if let d = divergedAtStep { return "\(plan.name): diverged at step \(d) (\(divergence ?? ""))" }
        return String(format: "%@: valid %.4f / test %.4f bpc, %d steps, %.0f s, %.0f tok/s", plan.name, validBPC, testBPC, steps, seconds, tokensPerSecond)
    }

    /// `3.1234`, or `diverged (step N)`.
    func bpc(_ x: Double) -> String { divergedAtStep.map { "diverged (step \($0))" } ?? String(format: "%.4f", x) }
}

/// The table of `fwp reproduce schlag2021-lm`: JSON, CSV, Markdown (beside
/// the paper's Table 2 and Table 4) and an SVG of validation bpc vs step.
struct Schlag2021LMReport {
    var rows: [Schlag2021LMRow]
    var quick: Bool
    var wallSeconds: Double
    var config: LanguageModelRunConfig
    var blasCore: String

    static let fileNames = ["schlag2021-lm.json", "schlag2021-lm.csv", "schlag2021-lm.md", "schlag2021-lm.svg"]

    static func phi(_ m: LanguageModelMixer) -> String {
        switch m {
        case .softmax: return "softmax"
        case .linear, .delta: return "elu1"
        case .dpfpSum, .dpfpDelta: return "dpfp:2"
        case .favorSum, .favorDelta: return "favor"
        case .deltaNet, .gatedDeltaNet: return "conv+silu,l2"
        }
    }

    func jsonRows() -> [[String: Any]] {
        rows.map { r in
            var o: [String: Any] = ["model": r.plan.name, "mixer": r.plan.mixer.rawValue, "phi": r.plan.phiName,
                                    "mode": r.plan.mode.rawValue,
                                    "normalization": r.plan.normalizationName, "params": r.params, "steps": r.steps, "seconds": r.seconds,
                                    "tokens_per_s": r.tokensPerSecond,
                                    "validation_curve": r.curve.filter { $0.1.isFinite }.map { [$0.0, $0.1] }]
            // JSON has no NaN: a diverged row says so instead of a number.
            o["valid_bpc"] = r.validBPC.isFinite ? r.validBPC : "diverged"
            o["test_bpc"] = r.testBPC.isFinite ? r.testBPC : "diverged"
            if let d = r.divergedAtStep { o["diverged_at_step"] = d; o["divergence"] = r.divergence ?? "" }
            if let l = r.finalTrainLoss { o["final_train_loss"] = l }
            if let p = Schlag2021LM.paper(r.plan) {
                o["paper_valid_ppl"] = p.valid.isFinite ? p.valid : "diverged (> 260)"
                o["paper_test_ppl"] = p.test.isFinite ? p.test : "diverged (> 260)"
            }
            return o
        }
    }

    func json() throws -> Data {
        let m = config.model
        let top: [String: Any] = [
            "quick": quick, "wall_seconds": wallSeconds, "blas_core": blasCore,
            "shared_config": ["layers": m.layers, "model_size": m.modelSize, "heads": m.heads, "feed_forward": m.feedForwardSize,
                              "context": config.context, "batch": config.batchSize, "steps": config.maxSteps,
                              "lr": Double(config.learningRate), "clip": Double(config.clipNorm), "dropout": Double(m.dropout),
                              "data": config.data] as [String: Any],
            "rows": jsonRows(),
        ]
        return try JSONSerialization.data(withJSONObject: top, options: [.prettyPrinted, .sortedKeys])
    }

    func csv() -> String {
        var lines = ["model,mixer,phi,mode,params,valid_bpc,test_bpc,steps,seconds,tokens_per_s"]
        for r in rows {
            let bpc = r.divergedAtStep == nil ? String(format: "%.4f,%.4f", r.validBPC, r.testBPC) : "diverged,diverged"
            lines.append("\"\(r.plan.name)\",\(r.plan.mixer.rawValue),\(r.plan.phiName),\(r.plan.mode.rawValue),\(r.params),"
                         + bpc + String(format: ",%d,%.1f,%.0f", r.steps, r.seconds, r.tokensPerSecond))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func ppl(_ p: Double) -> String { p.isFinite ? String(format: "%.1f", p) : "> 260 (diverged)" }

    func markdown() -> String {
        var lines = ["| model | mixer | mode | params | valid bpc | test bpc | paper valid / test ppl | steps | tokens/s |",
                     "|---|---|---|---:|---:|---:|---|---:|---:|"]
        for r in rows {
            let paper = Schlag2021LM.paper(r.plan).map { "\(Self.ppl($0.valid)) / \(Self.ppl($0.test))" } ?? "-"
            lines.append("| \(r.plan.name) | \(r.plan.mixer.rawValue) | \(r.plan.mode.rawValue) | \(r.params) | "
                         + "\(r.bpc(r.validBPC)) | \(r.bpc(r.testBPC))" + " | \(paper) | \(r.steps) | "
                         + String(format: "%.0f", r.tokensPerSecond) + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    func table() -> String { markdown() }

    func write(to dir: String) throws {
        func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
        let json = [UInt8](try json()) + [10]
        try OutputTransaction.run { tx in
            try tx.stage(json, to: path("schlag2021-lm.json"))
            try tx.stage(Array(csv().utf8), to: path("schlag2021-lm.csv"))
            try tx.stage(Array(markdown().utf8), to: path("schlag2021-lm.md"))
            try tx.stage(Array(BPCCurvesSVG(rows: rows, quick: quick).render().utf8), to: path("schlag2021-lm.svg"))
        }
    }
}

/// Validation bpc against step, one line per row (hand-written SVG).
struct BPCCurvesSVG {
    var rows: [Schlag2021LMRow]
    var quick: Bool

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#ff7f0e", "#000000", "#aec7e8"]

    func render() -> String {
        let (width, height) = (900.0, 460.0)
        let (left, right, top, bottom) = (64.0, 260.0, 36.0, 52.0)
        let plotW = width - left - right, plotH = height - top - bottom
        let points = rows.flatMap(\.curve).filter { $0.1.isFinite }
        let maxStep = max(1, points.map(\.0).max() ?? 1)
        let lo = max(0, (points.map(\.1).min() ?? 0) - 0.1), hi = min(8, (points.map(\.1).max() ?? 8) + 0.1)
        func x(_ s: Double) -> Double { left + plotW * s / maxStep }
        func y(_ b: Double) -> Double { top + plotH * (1 - (min(max(b, lo), hi) - lo) / max(1e-9, hi - lo)) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var svg = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\(f(left))\" y=\"22\" font-size=\"14\">Character-level LM (Shakespeare): validation bpc vs training step\(quick ? " (quick run)" : "")</text>",
        ]
        let yTick = LearningCurvesSVG.niceStep((hi - lo) / 6)
        for b in stride(from: (lo / yTick).rounded(.up) * yTick, through: hi, by: yTick) {
            svg.append("<line x1=\"\(f(left))\" y1=\"\(f(y(b)))\" x2=\"\(f(left + plotW))\" y2=\"\(f(y(b)))\" stroke=\"#ddd\"/>")
            svg.append("<text x=\"\(f(left - 8))\" y=\"\(f(y(b) + 4))\" text-anchor=\"end\">\(String(format: "%.2f", b))</text>")
        }
        let tick = LearningCurvesSVG.niceStep(maxStep / 5)
        for s in stride(from: 0.0, through: maxStep, by: tick) {
            svg.append("<text x=\"\(f(x(s)))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\">\(Int(s))</text>")
        }
        svg.append("<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#333\"/>")
        svg.append("<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">training step</text>")
        svg.append("<text transform=\"translate(18 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">validation bits per character</text>")
        var legendY = top + 8
        for (i, r) in rows.enumerated() {
            let color = Self.colors[i % Self.colors.count]
            let dash: String
            switch r.plan.mode {
            case .truncated: dash = ""
            case .carry: dash = " stroke-dasharray=\"6,3\""
            case .streams: dash = " stroke-dasharray=\"2,3\""
            }
            let pts = r.curve.filter { $0.1.isFinite }.map { "\(f(x($0.0))),\(f(y($0.1)))" }.joined(separator: " ")
            svg.append("<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash) points=\"\(pts)\"><title>\(r.plan.name)</title></polyline>")
            let lx = left + plotW + 16
            svg.append("<line x1=\"\(f(lx))\" y1=\"\(f(legendY))\" x2=\"\(f(lx + 30))\" y2=\"\(f(legendY))\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>")
            svg.append("<text x=\"\(f(lx + 36))\" y=\"\(f(legendY + 4))\">\(r.plan.name): \(r.divergedAtStep == nil ? String(format: "%.3f", r.testBPC) : "diverged")</text>")
            legendY += 18
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }
}
