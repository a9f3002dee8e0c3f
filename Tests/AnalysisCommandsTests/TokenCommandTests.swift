import Foundation
import TestSupport
import XCTest

final class TokenCommandTests: XCTestCase {
    func testTokenShiftOfThePlantedRotationAndScaling() throws {
        let r = try analyze("tokens", fixturePath("geometry.h5"), "--depth", "layers")
        func shift(_ metric: String, _ a: Int) -> Double? { r.records.first { $0.metric == metric && $0.depth == a }?.value }
        // Depth 1 = depth 0 rotated by π/6 in every plane: 1 − cos = 1 − cos(π/6), relative change 2 sin(π/12).
        XCTAssertEqual(try XCTUnwrap(shift("token_shift_cosine", 0)), 1 - cos(Double.pi / 6), accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(shift("token_shift_relative", 0)), 2 * sin(Double.pi / 12), accuracy: 1e-6)
        XCTAssertEqual(r.records.filter { $0.metric == "patch_similarity" }.count, 6)
        // Patch similarity is invariant to isotropic scaling (depth 2 = 2.5 × depth 0).
        let p = r.records.filter { $0.metric == "patch_similarity" }
        XCTAssertEqual(try XCTUnwrap(p[2].value), try XCTUnwrap(p[0].value), accuracy: 1e-6)
        XCTAssertNotNil(r.conventions["patch_similarity"])
    }

    func testAttentionDistancesOfTheHandMadePatterns() throws {
        let r = try analyze("attention", fixturePath("attention.h5"))
        func v(_ metric: String, _ layer: Int, _ head: Int) throws -> Double {
            try XCTUnwrap(r.records.first { $0.metric == metric && $0.depth == layer && $0.head == head }?.value)
        }
        let uniformSpatial = (64 + 32 * 2.0.squareRoot()) / 8
        XCTAssertEqual(try v("attention_distance_spatial", 1, 0), 0, accuracy: 1e-9)
        XCTAssertEqual(try v("attention_distance_spatial", 1, 1), uniformSpatial, accuracy: 1e-5)
        XCTAssertEqual(try v("attention_distance_temporal", 1, 1), 1, accuracy: 1e-6)
        XCTAssertEqual(try v("attention_entropy", 1, 1), log(8), accuracy: 1e-6)
        XCTAssertEqual(try v("attention_distance_temporal", 2, 0), 2, accuracy: 1e-9)
        XCTAssertEqual(try v("attention_distance_spatial", 2, 1), 16, accuracy: 1e-9)
        XCTAssertEqual(try v("attention_distance_spatial", 3, 0), 8 * 2.0.squareRoot(), accuracy: 1e-5)
        XCTAssertEqual(try v("attention_entropy", 3, 0), log(2), accuracy: 1e-6)
        XCTAssertEqual(r.records.count, 3 * 2 * 3)
        let one = try analyze("attention", fixturePath("attention.h5"), "--layers", "2")
        XCTAssertEqual(Set(one.records.compactMap(\.depth)), [2])
    }

    func testAttentionOnAFileWithoutAttentionIsAClearError() throws {
        let r = try bwanalyze("attention", fixturePath("geometry.h5"))
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "bwanalyze: error: \(fixturePath("geometry.h5")): the file holds no attention (no /layers/LL/attention datasets); dump attention to use this command\n")
        let l = try bwanalyze("attention", fixturePath("attention.h5"), "--layers", "7")
        XCTAssertEqual(l.status, 1)
        XCTAssertTrue(l.stderr.contains("layer 7 stores no attention; layers with attention: 1, 2, 3"), l.stderr)
        let empty = try bwanalyze("attention", fixturePath("attention.h5"), "--layers", "")
        XCTAssertEqual(empty.status, 1)
        XCTAssertEqual(empty.stderr, "bwanalyze: error: --layers must be a comma-separated list of layer numbers\n")
    }
}
