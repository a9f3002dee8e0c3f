import Foundation

/// A line chart rendered as a self-contained SVG: title, axes with labels and ticks, a legend,
/// optional vertical markers (e.g. block boundaries) and optional shaded ranges per series.
public struct LineChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        /// (x, y) points; a nil y breaks the line.
        public var points: [(x: Double, y: Double?)]
        /// Optional (low, high) band per point, drawn shaded.
        public var band: [(x: Double, low: Double, high: Double)]?
        public var dashed: Bool
        /// Palette index of the colour; nil = the series' position.
        public var colour: Int?
        /// A thin, faint line without point markers or legend entry (e.g. one seed beside its condition's mean).
        public var thin: Bool

        public init(name: String, points: [(x: Double, y: Double?)], band: [(x: Double, low: Double, high: Double)]? = nil, dashed: Bool = false,
                    colour: Int? = nil, thin: Bool = false) {
            self.name = name
            self.points = points
            self.band = band
            self.dashed = dashed
            self.colour = colour
            self.thin = thin
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// Vertical dashed lines at these x values.
    public var markers: [Double] = []
    public var markerLabel: String? = nil
    /// Fixed y range; nil fits the data.
    public var yRange: ClosedRange<Double>? = nil
    /// Integer ticks on x (depths, layers).
    public var integerX = true
    public var width = 640.0
    public var height = 400.0

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    public func render() -> String {
        // The legend is as wide as its longest entry (≈ 6.5 px per character at 11 px); the canvas
        // grows so that the plot keeps at least 380 px.
        let longest = (series.filter { !$0.thin }.map(\.name.count) + [markers.isEmpty ? 0 : 14]).max() ?? 0
        let legendWidth = max(150, 44 + 6.5 * Double(longest))
        let left = 70.0, right = legendWidth + 20, top = 45.0, bottom = 60.0
        let width = max(self.width, left + 380 + right)
        var c = SVGCanvas(width: width, height: height)
        let plotW = width - left - right, plotH = height - top - bottom
        let xs = series.flatMap { $0.points.map(\.x) } + markers
        let ys = series.flatMap { s in s.points.compactMap(\.y) + (s.band ?? []).flatMap { [$0.low, $0.high] } }
        var xlo = xs.min() ?? 0, xhi = xs.max() ?? 1
        if xhi <= xlo { xlo -= 0.5; xhi += 0.5 }
        var ylo = yRange?.lowerBound ?? (ys.min() ?? 0), yhi = yRange?.upperBound ?? (ys.max() ?? 1)
        if yRange == nil {
            if yhi <= ylo { ylo -= 0.5; yhi += 0.5 }
            let pad = (yhi - ylo) * 0.05
            ylo -= pad
            yhi += pad
        }
        func px(_ x: Double) -> Double { left + (x - xlo) / (xhi - xlo) * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - ylo) / (yhi - ylo)) * plotH }

        c.text(title, width / 2, 24, size: 15, anchor: "middle", weight: "bold")
        // Axes box and ticks.
        c.rect(left, top, plotW, plotH, fill: "none", stroke: "#444")
        var xticks = SVGCanvas.ticks(xlo, xhi, count: 8)
        if integerX {
            let step = max(1.0, ((xhi - xlo) / 10).rounded(.up))
            xticks = stride(from: ceil(xlo), through: floor(xhi), by: step).map { $0 }
        }
        for t in xticks {
            c.line(px(t), top + plotH, px(t), top + plotH + 5, stroke: "#444")
            c.text(SVGCanvas.tickLabel(t), px(t), top + plotH + 18, size: 11, anchor: "middle")
        }
        for t in SVGCanvas.ticks(ylo, yhi, count: 6) {
            c.line(left - 5, py(t), left, py(t), stroke: "#444")
            c.line(left, py(t), left + plotW, py(t), stroke: "#e4e4e4", width: 0.5)
            c.text(SVGCanvas.tickLabel(t), left - 8, py(t) + 4, size: 11, anchor: "end")
        }
        c.text(xLabel, left + plotW / 2, height - 18, size: 12, anchor: "middle")
        c.text(yLabel, 18, top + plotH / 2, size: 12, anchor: "middle", rotate: -90)
        for m in markers {
            c.line(px(m), top, px(m), top + plotH, stroke: "#999", width: 1, dash: "4 3")
        }
        // Data.
        // Thin lines first, so the means they surround are drawn over them.
        for (i, s) in series.enumerated().sorted(by: { ($0.element.thin ? 0 : 1, $0.offset) < ($1.element.thin ? 0 : 1, $1.offset) }) {
            let colour = SVGCanvas.colour(s.colour ?? i)
            if s.thin {
                var run: [(Double, Double)] = []
                for p in s.points.sorted(by: { $0.x < $1.x }) {
                    if let y = p.y, y.isFinite { run.append((px(p.x), py(y))) } else {
                        if run.count >= 2 { c.polyline(run, stroke: colour, width: 1, dash: s.dashed ? "6 3" : nil, opacity: 0.45) }
                        run = []
                    }
                }
                if run.count >= 2 { c.polyline(run, stroke: colour, width: 1, dash: s.dashed ? "6 3" : nil, opacity: 0.45) }
                continue
            }
            if let band = s.band, band.count >= 2 {
                let upper = band.map { (px($0.x), py($0.high)) }
                let lower = band.reversed().map { (px($0.x), py($0.low)) }
                c.polygon(upper + lower, fill: colour, opacity: 0.18)
            }
            var run: [(Double, Double)] = []
            func flush() {
                if run.count >= 2 { c.polyline(run, stroke: colour, width: 2, dash: s.dashed ? "6 3" : nil) }
                run = []
            }
            for p in s.points.sorted(by: { $0.x < $1.x }) {
                if let y = p.y, y.isFinite {
                    run.append((px(p.x), py(y)))
                    c.circle(px(p.x), py(y), r: 2.5, fill: colour)
                } else {
                    flush()
                }
            }
            flush()
        }
        // Legend.
        let lx = left + plotW + 16
        var ly = top + 8
        for (i, s) in series.enumerated() where !s.thin {
            c.line(lx, ly, lx + 22, ly, stroke: SVGCanvas.colour(s.colour ?? i), width: 2, dash: s.dashed ? "6 3" : nil)
            c.text(s.name, lx + 28, ly + 4, size: 11)
            ly += 18
        }
        if !markers.isEmpty {
            c.line(lx, ly, lx + 22, ly, stroke: "#999", width: 1, dash: "4 3")
            c.text(markerLabel ?? "marker", lx + 28, ly + 4, size: 11)
        }
        return c.render()
    }

    /// Several rendered charts side by side in one SVG document (each kept whole as a nested `<svg>`).
    public static func sideBySide(_ documents: [String], title: String) -> String {
        var x = 0.0, height = 0.0
        var parts: [String] = []
        for d in documents {
            guard let open = d.range(of: "<svg") else { continue }
            let inner = String(d[open.lowerBound...])
            func attribute(_ name: String) -> Double {
                guard let r = inner.range(of: " \(name)=\""), let end = inner[r.upperBound...].firstIndex(of: "\"") else { return 0 }
                return Double(inner[r.upperBound..<end]) ?? 0
            }
            let (w, h) = (attribute("width"), attribute("height"))
            parts.append(inner.replacingOccurrences(of: "<svg xmlns=\"http://www.w3.org/2000/svg\"", with: "<svg x=\"\(SVGCanvas.num(x))\" y=\"30\"",
                                                    options: [.anchored]))
            x += w
            height = max(height, h)
        }
        var c = SVGCanvas(width: max(x, 1), height: height + 30)
        c.text(title, max(x, 1) / 2, 21, size: 16, anchor: "middle", weight: "bold")
        for p in parts { c.raw(p.trimmingCharacters(in: .whitespacesAndNewlines)) }
        return c.render()
    }
}
