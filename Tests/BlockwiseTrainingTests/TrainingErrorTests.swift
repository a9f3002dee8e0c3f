import BlockwiseTraining
import XCTest

final class TrainingErrorTests: XCTestCase {
    func testDescriptionIsTheMessage() {
        XCTAssertEqual("\(TrainingError("--blocks 5 does not divide 12 layers"))", "--blocks 5 does not divide 12 layers")
    }
}
