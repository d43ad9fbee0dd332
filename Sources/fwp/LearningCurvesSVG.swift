import FastWeights
import Foundation

/// Validation error (%) against training step, one line per model and R,
/// as a hand-written SVG (no dependencies): colour by model, dash pattern
/// by R, a legend on the right.
struct LearningCurvesSVG {
    var report: Ba2016Report

    static let colors: [RetrievalModelKind: String] = [
        .irnn: "#1f77b4", .lstm: "#2ca02c", .alstm: "#9467bd", .fastWeights: "#d62728",
    ]
    static let dashes = ["", "6,3", "2,3", "10,3,2,3"]

    func render() -> String {
        let (width, height) = (880.0, 440.0)
        let (left, right, top, bottom) = (64.0, 220.0, 36.0, 52.0)
        let plotW = width - left - right, plotH = height - top - bottom
        let maxStep = max(1, report.rows.flatMap { $0.curve.map(\.0) }.max() ?? 1)
        func x(_ s: Double) -> Double { left + plotW * s / maxStep }
        func y(_ e: Double) -> Double { top + plotH * (1 - min(max(e, 0), 100) / 100) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var svg = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\(f(left))\" y=\"22\" font-size=\"14\">Associative retrieval (Ba et al. 2016): validation error vs training step\(report.quick ? " (quick run)" : "")</text>",
        ]
        // Grid and y axis: 0..100 % every 20.
        for e in stride(from: 0.0, through: 100.0, by: 20.0) {
            svg.append("<line x1=\"\(f(left))\" y1=\"\(f(y(e)))\" x2=\"\(f(left + plotW))\" y2=\"\(f(y(e)))\" stroke=\"#ddd\"/>")
            svg.append("<text x=\"\(f(left - 8))\" y=\"\(f(y(e) + 4))\" text-anchor=\"end\">\(Int(e))</text>")
        }
        // x axis: about 5 round ticks.
        let tick = Self.niceStep(maxStep / 5)
        for s in stride(from: 0.0, through: maxStep, by: tick) {
            svg.append("<line x1=\"\(f(x(s)))\" y1=\"\(f(top + plotH))\" x2=\"\(f(x(s)))\" y2=\"\(f(top + plotH + 5))\" stroke=\"#333\"/>")
            svg.append("<text x=\"\(f(x(s)))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\">\(Int(s))</text>")
        }
        svg.append("<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#333\"/>")
        svg.append("<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">training step</text>")
        svg.append("<text transform=\"translate(18 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">validation error (%)</text>")

        let hidden = report.hiddenSizes
        var legendY = top + 8
        for row in report.rows {
            let color = Self.colors[row.model] ?? "#000"
            let dash = Self.dashes[(hidden.firstIndex(of: row.hidden) ?? 0) % Self.dashes.count]
            let dashAttr = dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\""
            // The curve starts at chance level (90% error for 10 digits) at step 0.
            let points = ([(0.0, 90.0)] + row.curve).map { "\(f(x($0.0))),\(f(y($0.1)))" }.joined(separator: " ")
            let name = "\(row.model.displayName) R=\(row.hidden)"
            svg.append("<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dashAttr) points=\"\(points)\"><title>\(name)</title></polyline>")
            let lx = left + plotW + 16
            svg.append("<line x1=\"\(f(lx))\" y1=\"\(f(legendY))\" x2=\"\(f(lx + 30))\" y2=\"\(f(legendY))\" stroke=\"\(color)\" stroke-width=\"2\"\(dashAttr)/>")
            svg.append("<text x=\"\(f(lx + 36))\" y=\"\(f(legendY + 4))\">\(name): \(Ba2016Report.pct(row.testError))%</text>")
            legendY += 18
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    /// 1, 2 or 5 times a power of ten, at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0 else { return 1 }
        let p = pow(10, floor(log10(raw)))
        for m in [1.0, 2.0, 5.0, 10.0] where m * p >= raw { return m * p }
        return 10 * p
    }
}
