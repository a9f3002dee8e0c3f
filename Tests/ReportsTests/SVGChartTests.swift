import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Reports
import XCTest

/// Parses XML and collects element names and text, failing on malformed documents.
final class XMLCheck: NSObject, XMLParserDelegate {
    var elements: [String] = []
    var text = ""
    var error: Error?

    static func parse(_ xml: String) -> XMLCheck {
        let check = XMLCheck()
        let parser = XMLParser(data: Data(xml.utf8))
        parser.delegate = check
        if !parser.parse() { check.error = parser.parserError ?? NSError(domain: "xml", code: 1) }
        return check
    }

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        elements.append(elementName)
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
}

final class SVGChartTests: XCTestCase {
    func testLineChartIsWellFormedWithTitleAxesTicksAndLegend() {
        var chart = LineChart(title: "Probe <accuracy> & \"depth\"", xLabel: "depth", yLabel: "accuracy (fraction)", series: [
            .init(name: "run-a (e2e)", points: [(0, 0.2), (1, 0.5), (2, nil), (3, 0.9)]),
            .init(name: "run-b & co", points: [(0, 0.3), (1, .nan), (2, 0.7), (3, 0.8)], band: [(0, 0.2, 0.4), (3, 0.7, 0.9)]),
        ])
        chart.markers = [2]
        chart.markerLabel = "block boundary"
        chart.yRange = 0...1
        let svg = chart.render()
        let check = XMLCheck.parse(svg)
        XCTAssertNil(check.error)
        XCTAssertEqual(check.elements.first, "svg")
        XCTAssertTrue(check.text.contains("Probe <accuracy> & \"depth\""), "title is escaped and survives parsing")
        XCTAssertTrue(check.text.contains("accuracy (fraction)"))
        XCTAssertTrue(check.text.contains("run-b & co"))
        XCTAssertTrue(check.text.contains("block boundary"))
        // y ticks 0, 0.2, ..., 1 on a fixed 0...1 range; x ticks 0...3.
        for t in ["0.2", "0.4", "0.6", "0.8", "1", "3"] { XCTAssertTrue(check.text.contains(t), "tick \(t)") }
        XCTAssertTrue(check.elements.contains("polyline"))
        XCTAssertTrue(check.elements.contains("polygon"))
        XCTAssertFalse(svg.contains("nan"), "non-finite values are skipped, not written")
    }

    func testEmptyAndDegenerateChartsStayWellFormed() {
        XCTAssertNil(XMLCheck.parse(LineChart(title: "empty", xLabel: "x", yLabel: "y", series: []).render()).error)
        let flat = LineChart(title: "flat", xLabel: "x", yLabel: "y", series: [.init(name: "one point", points: [(5, 1)])])
        XCTAssertNil(XMLCheck.parse(flat.render()).error)
    }

    func testHeatmapIsWellFormedWithLabelsAndColourBar() {
        var h = Heatmap(title: "CKA <all pairs>", xLabel: "depth", yLabel: "depth", rowLabels: ["0", "1", "2"], columnLabels: ["0", "1", "2"],
                        values: [[1, 0.5, nil], [0.5, 1, 0.25], [nil, 0.25, 1]])
        h.legendLabel = "linear CKA"
        let check = XMLCheck.parse(h.render())
        XCTAssertNil(check.error)
        XCTAssertTrue(check.text.contains("CKA <all pairs>"))
        XCTAssertTrue(check.text.contains("linear CKA"))
        // 9 cells + 20 colour-bar steps + bar frame + background.
        XCTAssertEqual(check.elements.filter { $0 == "rect" }.count, 9 + 20 + 1 + 1)
        XCTAssertTrue(check.text.contains("n/a"), "missing cells carry an n/a tooltip")
    }

    func testNiceTicks() {
        XCTAssertEqual(SVGCanvas.ticks(0, 1, count: 5), [0, 0.2, 0.4, 0.6, 0.8, 1])
        XCTAssertEqual(SVGCanvas.ticks(0, 100, count: 4), [0, 25, 50, 75, 100])
        XCTAssertEqual(SVGCanvas.ticks(3, 3), [3])
    }
}
