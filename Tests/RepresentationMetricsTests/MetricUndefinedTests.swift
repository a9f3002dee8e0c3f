import RepresentationMetrics
import XCTest

final class MetricUndefinedTests: XCTestCase {
    func testDescriptionIsTheReason() {
        XCTAssertEqual("\(MetricUndefined("zero variance at depth 3"))", "zero variance at depth 3")
    }
}
