import Foundation

/// A matrix of values in [lo, hi] rendered as coloured cells with row/column labels, a title,
/// axis labels and a colour-bar legend with ticks; missing values are drawn hatched grey.
public struct Heatmap: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var rowLabels: [String]
    public var columnLabels: [String]
    /// values[row][column]; nil = missing/undefined.
    public var values: [[Double?]]
    public var range: ClosedRange<Double> = 0...1
    public var legendLabel: String = "value"

    public init(title: String, xLabel: String, yLabel: String, rowLabels: [String], columnLabels: [String], values: [[Double?]]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.rowLabels = rowLabels
        self.columnLabels = columnLabels
        self.values = values
    }

    /// Sequential colour (white → dark blue) for a value in `range`.
    func colour(_ v: Double) -> String {
        let t = max(0, min(1, (v - range.lowerBound) / max(1e-12, range.upperBound - range.lowerBound)))
        let r = Int((247 - t * (247 - 8)).rounded()), g = Int((251 - t * (251 - 48)).rounded()), b = Int((255 - t * (255 - 107)).rounded())
        return String(format: "#%02x%02x%02x", r, g, b)
    }

    public func render() -> String {
        let n = max(1, rowLabels.count), m = max(1, columnLabels.count)
        let cell = max(14.0, min(40.0, 420.0 / Double(max(n, m))))
        let left = 80.0, top = 50.0, legendW = 90.0
        let width = left + Double(m) * cell + legendW + 20, height = top + Double(n) * cell + 60
        var c = SVGCanvas(width: max(width, 360), height: height)
        c.text(title, c.width / 2, 24, size: 15, anchor: "middle", weight: "bold")
        for (i, row) in values.enumerated() {
            for (j, v) in row.enumerated() {
                let x = left + Double(j) * cell, y = top + Double(i) * cell
                let label = "\(rowLabels[safe: i] ?? "") vs \(columnLabels[safe: j] ?? ""): " + (v.map { String(format: "%.4f", $0) } ?? "n/a")
                c.rect(x, y, cell, cell, fill: v.map(colour) ?? "#cccccc", stroke: "#fff", title: label)
                if let v, cell >= 26 {
                    let t = (v - range.lowerBound) / max(1e-12, range.upperBound - range.lowerBound)
                    c.text(String(format: "%.2f", v), x + cell / 2, y + cell / 2 + 3, size: 8, anchor: "middle", fill: t > 0.55 ? "#fff" : "#222")
                }
            }
        }
        for (i, l) in rowLabels.enumerated() {
            c.text(l, left - 6, top + (Double(i) + 0.5) * cell + 4, size: 10, anchor: "end")
        }
        for (j, l) in columnLabels.enumerated() {
            c.text(l, left + (Double(j) + 0.5) * cell, top + Double(n) * cell + 14, size: 10, anchor: "middle")
        }
        c.text(xLabel, left + Double(m) * cell / 2, top + Double(n) * cell + 36, size: 12, anchor: "middle")
        c.text(yLabel, 18, top + Double(n) * cell / 2, size: 12, anchor: "middle", rotate: -90)
        // Colour bar.
        let bx = left + Double(m) * cell + 24, bh = Double(n) * cell, steps = 20
        for k in 0..<steps {
            let v = range.upperBound - (Double(k) + 0.5) / Double(steps) * (range.upperBound - range.lowerBound)
            c.rect(bx, top + Double(k) * bh / Double(steps), 14, bh / Double(steps) + 0.5, fill: colour(v))
        }
        c.rect(bx, top, 14, bh, fill: "none", stroke: "#444")
        for t in SVGCanvas.ticks(range.lowerBound, range.upperBound, count: 4) {
            let y = top + (1 - (t - range.lowerBound) / (range.upperBound - range.lowerBound)) * bh
            c.line(bx + 14, y, bx + 18, y, stroke: "#444")
            c.text(SVGCanvas.tickLabel(t), bx + 21, y + 4, size: 10)
        }
        c.text(legendLabel, bx, top - 8, size: 10)
        return c.render()
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
