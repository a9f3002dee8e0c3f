import Foundation

/// A minimal SVG writer: elements appended as text, with XML escaping and compact number formatting.
public struct SVGCanvas: Sendable {
    public var width: Double
    public var height: Double
    private var body: [String] = []

    public init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// Escapes `& < > " '` for XML text and attribute values.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }

    /// A coordinate with at most two decimals.
    static func num(_ v: Double) -> String {
        guard v.isFinite else { return "0" }
        let r = (v * 100).rounded() / 100
        return r == r.rounded() ? String(Int(r)) : String(format: "%.2f", r)
    }

    public mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String = "#000",
                              width w: Double = 1, dash: String? = nil) {
        body.append("<line x1=\"\(Self.num(x1))\" y1=\"\(Self.num(y1))\" x2=\"\(Self.num(x2))\" y2=\"\(Self.num(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(Self.num(w))\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>")
    }

    public mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, stroke: String? = nil, title: String? = nil) {
        let open = "<rect x=\"\(Self.num(x))\" y=\"\(Self.num(y))\" width=\"\(Self.num(w))\" height=\"\(Self.num(h))\" fill=\"\(fill)\"\(stroke.map { " stroke=\"\($0)\"" } ?? "")"
        if let title { body.append(open + "><title>\(Self.escape(title))</title></rect>") } else { body.append(open + "/>") }
    }

    public mutating func circle(_ x: Double, _ y: Double, r: Double, fill: String) {
        body.append("<circle cx=\"\(Self.num(x))\" cy=\"\(Self.num(y))\" r=\"\(Self.num(r))\" fill=\"\(fill)\"/>")
    }

    public mutating func polyline(_ points: [(Double, Double)], stroke: String, width w: Double = 1.5, dash: String? = nil, opacity: Double? = nil) {
        let pts = points.map { "\(Self.num($0.0)),\(Self.num($0.1))" }.joined(separator: " ")
        body.append("<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(Self.num(w))\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")\(opacity.map { " stroke-opacity=\"\(Self.num($0))\"" } ?? "")/>")
    }

    public mutating func polygon(_ points: [(Double, Double)], fill: String, opacity: Double) {
        let pts = points.map { "\(Self.num($0.0)),\(Self.num($0.1))" }.joined(separator: " ")
        body.append("<polygon points=\"\(pts)\" fill=\"\(fill)\" fill-opacity=\"\(Self.num(opacity))\" stroke=\"none\"/>")
    }

    /// Text; `anchor` is start, middle or end; `rotate` in degrees about the anchor point.
    public mutating func text(_ s: String, _ x: Double, _ y: Double, size: Double = 12, anchor: String = "start",
                              rotate: Double? = nil, weight: String? = nil, fill: String = "#222") {
        var attrs = "x=\"\(Self.num(x))\" y=\"\(Self.num(y))\" font-size=\"\(Self.num(size))\" text-anchor=\"\(anchor)\" fill=\"\(fill)\""
        if let weight { attrs += " font-weight=\"\(weight)\"" }
        if let rotate { attrs += " transform=\"rotate(\(Self.num(rotate)) \(Self.num(x)) \(Self.num(y)))\"" }
        body.append("<text \(attrs)>\(Self.escape(s))</text>")
    }

    public mutating func raw(_ element: String) { body.append(element) }

    /// The complete document.
    public func render() -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Self.num(width))\" height=\"\(Self.num(height))\" viewBox=\"0 0 \(Self.num(width)) \(Self.num(height))\" font-family=\"Helvetica, Arial, sans-serif\">\n"
        out += "<rect x=\"0\" y=\"0\" width=\"\(Self.num(width))\" height=\"\(Self.num(height))\" fill=\"#fff\"/>\n"
        out += body.joined(separator: "\n")
        out += "\n</svg>\n"
        return out
    }

    /// Colour-blind-safe palette (Okabe & Ito), cycled.
    public static func colour(_ i: Int) -> String {
        let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
        return palette[((i % palette.count) + palette.count) % palette.count]
    }

    /// About five "nice" tick values (1, 2, 2.5 or 5 × 10^k steps) covering lo...hi.
    public static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        guard lo.isFinite, hi.isFinite, hi > lo else { return [lo] }
        let raw = (hi - lo) / Double(max(1, count))
        let mag = pow(10, floor(log10(raw)))
        let step = [1, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var out: [Double] = []
        let first = ceil(lo / step - 1e-9)
        var k = 0.0
        while (first + k) * step <= hi + step * 1e-9 {
            let v = (first + k) * step
            // Round away binary noise (3 × 0.2 = 0.6000000000000001).
            out.append(abs(v) < step * 1e-9 ? 0 : Double(String(format: "%.12g", v))!)
            k += 1
        }
        return out
    }

    /// A tick label: integers without decimals, otherwise up to 3 significant digits.
    public static func tickLabel(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
        return String(format: "%.3g", v)
    }
}
