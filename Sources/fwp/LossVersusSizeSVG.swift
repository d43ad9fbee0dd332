import FastWeights
import Foundation

/// Schlag et al. 2021's synthetic figures as a hand-written SVG: the best
/// evaluation loss against S, one line per model, with each fast weight model's
/// d_dot marked by a dotted vertical line in its colour.
struct LossVersusSizeSVG {
    var report: Schlag2021Report

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

    func render() -> String {
        let (width, height) = (940.0, 460.0)
        let (left, right, top, bottom) = (64.0, 250.0, 36.0, 52.0)
        let plotW = width - left - right, plotH = height - top - bottom
        let maxS = Double(report.sizes.max() ?? 1)
        let maxLoss = max(0.1, (report.rows.map(\.loss).filter(\.isFinite).max() ?? 0.5))
        let yTick = LearningCurvesSVG.niceStep(maxLoss / 5)
        let yTop = (maxLoss / yTick).rounded(.up) * yTick
        func x(_ s: Double) -> Double { left + plotW * s / maxS }
        func y(_ l: Double) -> Double { top + plotH * (1 - min(max(l, 0), yTop) / yTop) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        let title = "Synthetic setting \(report.setting) (Schlag et al. 2021), scale \(report.scale.rawValue)\(report.quick ? ", quick" : ""): best evaluation loss vs S"
        var svg = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\(f(left))\" y=\"22\" font-size=\"14\">\(title)</text>",
        ]
        for i in 0...Int((yTop / yTick).rounded()) {
            let l = Double(i) * yTick
            svg.append("<line x1=\"\(f(left))\" y1=\"\(f(y(l)))\" x2=\"\(f(left + plotW))\" y2=\"\(f(y(l)))\" stroke=\"#ddd\"/>")
            svg.append("<text x=\"\(f(left - 8))\" y=\"\(f(y(l) + 4))\" text-anchor=\"end\">\(String(format: "%g", (l * 1000).rounded() / 1000))</text>")
        }
        let xTick = LearningCurvesSVG.niceStep(maxS / 6)
        for s in stride(from: 0.0, through: maxS, by: xTick) {
            svg.append("<line x1=\"\(f(x(s)))\" y1=\"\(f(top + plotH))\" x2=\"\(f(x(s)))\" y2=\"\(f(top + plotH + 5))\" stroke=\"#333\"/>")
            svg.append("<text x=\"\(f(x(s)))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\">\(Int(s))</text>")
        }
        svg.append("<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#333\"/>")
        svg.append("<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">S (number of unique keys)</text>")
        svg.append("<text transform=\"translate(18 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">best evaluation loss</text>")

        var legendY = top + 8
        for (i, m) in report.models.enumerated() {
            let color = Self.palette[i % Self.palette.count]
            let points = report.sizes.compactMap { s in report.row(m, s).map { (Double(s), $0.loss) } }
            guard !points.isEmpty else { continue }
            let dDot = report.rows.first { $0.reader == m.model }?.d_dot ?? 0
            if m.model != "softmax", Double(dDot) <= maxS {
                svg.append("<line x1=\"\(f(x(Double(dDot))))\" y1=\"\(f(top))\" x2=\"\(f(x(Double(dDot))))\" y2=\"\(f(top + plotH))\" stroke=\"\(color)\" stroke-dasharray=\"2,4\"/>")
            }
            let path = points.map { "\(f(x($0.0))),\(f(y($0.1)))" }.joined(separator: " ")
            svg.append("<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(path)\"><title>\(m.name)</title></polyline>")
            for p in points {
                svg.append("<circle cx=\"\(f(x(p.0)))\" cy=\"\(f(y(p.1)))\" r=\"2.5\" fill=\"\(color)\"/>")
            }
            let lx = left + plotW + 16
            svg.append("<line x1=\"\(f(lx))\" y1=\"\(f(legendY))\" x2=\"\(f(lx + 30))\" y2=\"\(f(legendY))\" stroke=\"\(color)\" stroke-width=\"2\"/>")
            svg.append("<text x=\"\(f(lx + 36))\" y=\"\(f(legendY + 4))\">\(m.name) (d_dot \(dDot))</text>")
            legendY += 18
        }
        svg.append("<text x=\"\(f(left + plotW + 16))\" y=\"\(f(legendY + 12))\" fill=\"#555\">dotted: d_dot of each model</text>")
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }
}
