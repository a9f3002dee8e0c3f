import Foundation
import TestSupport
import XCTest

/// bwanalyze's typed options: a malformed value is rejected by `validate()` before any file is read,
/// with the message the run-time checks gave (one `bwanalyze: error:` line, status 1).
final class TypedOptionTests: XCTestCase {
    let missing = "/nonexistent/activations.h5"

    func testMalformedListsAreRejectedBeforeReadingFiles() throws {
        for (args, message) in [
            (["probe", missing, "--c-grid", "0,1"], "--c-grid must list positive numbers such as 0.1,1,10"),
            (["retrieval", missing, "--ks", "0,5"], "--ks must be positive integers such as 1,5,10"),
            (["attention", missing, "--layers", "1,a"], "--layers must be a comma-separated list of layer numbers"),
            (["spectrum", missing, "--depth", "x"], "--depth must be 'blocks', 'layers' or a comma-separated list of depths such as 0,3,6 (got 'x')"),
            (["occdrop", missing, missing, "--depth", "0,-1"], "--depth must be 'blocks', 'layers' or a comma-separated list of depths such as 0,3,6 (got '0,-1')"),
        ] {
            let r = try bwanalyze(arguments: args)
            XCTAssertEqual(r.status, 1, "\(args)")
            XCTAssertEqual(r.stderr, "bwanalyze: error: \(message)\n", "\(args)")
        }
    }

    func testEnumeratedOptionsListTheirValues() throws {
        let dtype = try bwanalyze("synth", "--out", missing, "--dtype", "int64")
        XCTAssertNotEqual(dtype.status, 0)
        XCTAssertTrue(dtype.stderr.contains("'float16', 'float32' or 'float64'"), dtype.stderr)
        let rbf = try bwanalyze("cka", missing, "--rbf-bandwidth", "wide")
        XCTAssertNotEqual(rbf.status, 0)
        XCTAssertTrue(rbf.stderr.contains("'paper' and 'kornblith'"), rbf.stderr)
    }

    func testDepthIsOneOptionWithOneHelpText() throws {
        for command in ["cka", "spectrum", "probe", "retrieval", "occdrop", "tokens"] {
            let r = try bwanalyze(command, "--help")
            XCTAssertEqual(r.status, 0, command)
            let help = r.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            XCTAssertTrue(help.contains("'layers' (every depth 0...L) or a list such as 0,3,6. (default: blocks)"), "\(command): \(help)")
            XCTAssertTrue(help.contains("--depth <depth>"), help)
        }
    }

    func testListsWithSpacesStillParse() throws {
        let r = try bwanalyze("retrieval", fixturePath("geometry.h5"), "--ks", "1, 2", "--depth", "0, 3", "--format", "csv")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("retrieval_top2"), r.stdout)
    }
}
