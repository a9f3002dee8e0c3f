import AnalysisCommands
import Foundation
import TestSupport
import XCTest

final class CommandLineTests: XCTestCase {
    func testInspectText() throws {
        let path = fixturePath("run-b.h5")
        let r = try bwanalyze("inspect", path)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[0].hasPrefix("\(path)  ("), lines[0])
        XCTAssertEqual(lines[1], "  run        fixture-run-b   regime simultaneous   probe set pair   step 30   seed 405")
        XCTAssertEqual(lines[2], "  blocks     K = 2, ending at layers 2, 4")
        XCTAssertEqual(lines[3], "  layers     L = 4 (depths 0-4, 0 = embedding)   N = 80 clips   T = 6 tokens   D = 10   float32 (chunks of 80 clips)")
        XCTAssertEqual(lines[4], "  attention  none")
        XCTAssertEqual(lines[6], "  targets    motion: 4 classes (20/20/20/20)")
        XCTAssertEqual(lines[7], "             object: 2 classes (40/40)")
        XCTAssertEqual(lines[8], "  training   4 logged steps x 2 block losses")
    }

    func testInspectJSON() throws {
        let r = try bwanalyze("inspect", "--json", fixturePath("attention.h5"), fixturePath("geometry.h5"))
        XCTAssertEqual(r.status, 0, r.stderr)
        let arr = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(arr.count, 2)
        XCTAssertEqual(arr[0]["attention_layers"] as? [Int], [1, 2, 3])
        XCTAssertEqual(arr[0]["attention_heads"] as? Int, 2)
        XCTAssertEqual(arr[1]["clips"] as? Int, 96)
        XCTAssertEqual(arr[1]["block_ends"] as? [Int], [1, 3, 5])
        XCTAssertEqual(arr[1]["token_types"] as? [String], ["float32"])
        let targets = try XCTUnwrap(arr[1]["targets"] as? [[String: Any]])
        XCTAssertEqual(targets.first?["name"] as? String, "planted")
        XCTAssertEqual(targets.first?["counts"] as? [Int], [32, 32, 32])
        let size = try FileManager.default.attributesOfItem(atPath: fixturePath("geometry.h5"))[.size] as? Int
        XCTAssertEqual(arr[1]["file_bytes"] as? Int, size)
    }

    func testValidateJSON() throws {
        let r = try bwanalyze("validate", "--json", fixturePath("spectrum.h5"))
        XCTAssertEqual(r.status, 0)
        let arr = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(arr.first?["violations"] as? [Any] as? [String], [])
        XCTAssertEqual(arr.first?["non_finite_counts"] as? [String: Int], ["0": 0, "1": 0, "2": 0, "3": 0])
    }

    func testHelpListsSubcommands() throws {
        let r = try bwanalyze("--help")
        XCTAssertEqual(r.status, 0)
        for sub in ["inspect", "validate", "fixtures", "synth"] { XCTAssertTrue(r.stdout.contains(sub), r.stdout) }
        let v = try bwanalyze("validate", "--help")
        XCTAssertTrue(v.stdout.contains("counts NaN/Inf per layer"), v.stdout)
    }

    func testUsageErrorsExitNonZero() throws {
        let r = try bwanalyze("inspect")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("Missing expected argument"), r.stderr)
        let s = try bwanalyze("synth", "--out", "/tmp/x.h5", "--clips", "0")
        XCTAssertNotEqual(s.status, 0)
        XCTAssertTrue(s.stderr.contains("must be positive"), s.stderr)
    }

    func testFormatBytes() {
        XCTAssertEqual(FileSummary.formatBytes(512), "512 B")
        XCTAssertEqual(FileSummary.formatBytes(1536), "1.5 KiB")
        XCTAssertEqual(FileSummary.formatBytes(5 << 30), "5.0 GiB")
    }
}
