import ActivationStore
import BlockwiseTraining
import XCTest

final class TrainingConfigRegimeTests: XCTestCase {
    /// `external` names activations of a model trained elsewhere: a training configuration rejects it.
    func testExternalIsNotTrainable() {
        var c = TrainingConfig()
        for r in Regime.trainable {
            c.regime = r
            XCTAssertFalse(c.problems().contains { $0.contains("regime external") }, "\(r)")
        }
        c.regime = .external
        XCTAssertTrue(c.problems().contains { $0.contains("regime external") })
        XCTAssertThrowsError(try c.validate())
    }
}
