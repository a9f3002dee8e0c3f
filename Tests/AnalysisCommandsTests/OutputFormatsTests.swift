import AnalysisCommands
import XCTest

/// The one CSV writer quotes as RFC 4180 says, and the record identity is the one key.
final class OutputFormatsTests: XCTestCase {
    func testFieldsAreQuotedOnlyWhenTheyMustBe() {
        XCTAssertEqual(CSV.escape("plain"), "plain")
        XCTAssertEqual(CSV.escape("a,b"), "\"a,b\"")
        XCTAssertEqual(CSV.escape("say \"hi\""), "\"say \"\"hi\"\"\"")
        XCTAssertEqual(CSV.escape("two\nlines"), "\"two\nlines\"")
        XCTAssertEqual(CSV.escape("carriage\rreturn"), "\"carriage\rreturn\"")
        // CRLF is one Character in Swift; the check runs on Unicode scalars so it is still seen.
        XCTAssertEqual(CSV.escape("crlf\r\nline"), "\"crlf\r\nline\"")
        XCTAssertEqual(CSV.document(header: ["a", "b"], rows: [["1", "x,y"]]), "a,b\n1,\"x,y\"\n")
    }

    func testReportCSVUsesTheRecordIdentityAndValueColumns() {
        var r = MetricRecord(metric: "m", run: "run\r1", file: "f.h5", probeSet: "p", step: 3, depth: 2, target: "t", value: 0.25)
        r.undefined = nil
        let report = MetricReport(command: "c", parameters: [:], conventions: [:], inputs: [], records: [r])
        XCTAssertEqual(MetricReport.csvColumns, MetricRecord.identityColumns + MetricRecord.valueColumns)
        XCTAssertEqual(report.csv, MetricReport.csvColumns.joined(separator: ",") + "\nm,\"run\r1\",f.h5,p,3,2,,,t,,0.25,,\n")
        XCTAssertEqual(r.identity, ["m", "run\r1", "f.h5", "p", "3", "2", "", "", "t", ""])
        XCTAssertEqual(r.key, r.identity.joined(separator: "\u{0}"))
        var other = r
        other.value = 0.5
        XCTAssertEqual(other.key, r.key, "the value is not part of the identity")
        other.head = 0
        XCTAssertNotEqual(other.key, r.key)
    }
}
