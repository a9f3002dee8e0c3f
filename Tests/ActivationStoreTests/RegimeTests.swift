import ActivationStore
import XCTest

/// The regime strings are what files and JSON hold: they must not change.
final class RegimeTests: XCTestCase {
    func testRawValuesArePinned() {
        XCTAssertEqual(Regime.allCases.map(\.rawValue), ["e2e", "simultaneous", "sequential", "external"])
        XCTAssertEqual(ActivationMetadata.regimes, ["e2e", "simultaneous", "sequential", "external"])
        XCTAssertEqual(Regime.trainable, [.e2e, .simultaneous, .sequential])
        XCTAssertEqual(Regime.allCases.filter(\.isBlockwise), [.simultaneous, .sequential])
    }

    func testUnknownRegimeStringsStayReadable() {
        let m = ActivationMetadata(run: "r", regime: "distilled", blockEnds: [1], probeSet: "p")
        XCTAssertNil(m.knownRegime)
        XCTAssertEqual(ActivationMetadata(run: "r", regime: "e2e", blockEnds: [1], probeSet: "p").knownRegime, .e2e)
    }
}
