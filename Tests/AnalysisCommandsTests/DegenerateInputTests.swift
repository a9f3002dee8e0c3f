import ActivationStore
import Foundation
import TestSupport
import XCTest

/// Degenerate data gives a flagged value with its reason, never a NaN and never a crash.
final class DegenerateInputTests: XCTestCase {
    func writeFileWithNaN(_ path: String) throws {
        let n = 30, t = 2, d = 3
        var g = 0.0
        func values() -> [Float] { (0..<(n * t * d)).map { _ in g += 1; return Float(sin(g * 0.37)) } }
        let w = try ActivationWriter(path: path, metadata: ActivationMetadata(run: "nan", regime: "external", blockEnds: [1, 2], probeSet: "p"))
        try w.writeTokens(depth: 0, values: values(), clips: n, tokens: t, features: d)
        var bad = values()
        bad[7] = .nan
        try w.writeTokens(depth: 1, values: bad, clips: n, tokens: t, features: d)
        try w.writeTokens(depth: 2, values: values(), clips: n, tokens: t, features: d)
        try w.writeLabels("c", (0..<n).map { $0 % 3 })
        try w.commit()
    }

    func testNaNAtOneDepthIsFlaggedWhereItMattersOnly() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("nan.h5")
        try writeFileWithNaN(path)
        let cka = try analyze("cka", path, "--depth", "layers", "--pairs", "all")
        XCTAssertNotNil(cka.value(0, 2), "pairs without the NaN depth are still computed")
        XCTAssertNil(cka.value(0, 1))
        XCTAssertEqual(cka.records.first { $0.depth == 0 && $0.depthB == 1 }?.undefined, "NaN or Inf in \(path) at depth 1")
        let spectrum = try analyze("spectrum", path, "--depth", "layers")
        XCTAssertNotNil(spectrum.records.first { $0.metric == "effective_rank" && $0.depth == 0 }?.value)
        XCTAssertTrue(spectrum.records.first { $0.metric == "effective_rank" && $0.depth == 1 }?.undefined?.contains("NaN") ?? false)
        let probe = try analyze("probe", path, "--depth", "layers")
        XCTAssertTrue(probe.records.first { $0.depth == 1 && $0.metric == "probe_accuracy" }?.undefined?.contains("NaN") ?? false,
                      "\(probe.records)")
        let tokens = try analyze("tokens", path, "--depth", "layers")
        let patch = tokens.records.first { $0.metric == "patch_similarity" && $0.depth == 1 }?.undefined ?? ""
        XCTAssertTrue(patch.hasPrefix("in clips 0..<30: ") && patch.contains("non-finite value at clip 1"), patch)
        for report in [cka, spectrum, probe, tokens] {
            XCTAssertTrue(report.records.allSatisfy { ($0.value == nil) != ($0.undefined == nil) }, "each record has a value or a reason")
            XCTAssertTrue(report.records.allSatisfy { $0.value?.isFinite ?? true })
        }
    }

    func testDepthOutOfRange() throws {
        let r = try bwanalyze("spectrum", fixturePath("run-a.h5"), "--depth", "0,9")
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "bwanalyze: error: \(fixturePath("run-a.h5")): depth 9 is out of range; this file holds depths 0...4\n")
        let bad = try bwanalyze("cka", fixturePath("run-a.h5"), "--depth", "x")
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("--depth must be 'blocks', 'layers' or a comma-separated list"), bad.stderr)
    }

    func testTooFewClipsForTheDebiasedEstimator() throws {
        // attention.h5 holds 4 clips: the debiased estimator needs 4, so it works; 3 clips would not.
        let r = try analyze("cka", fixturePath("attention.h5"), "--estimator", "debiased", "--depth", "layers")
        XCTAssertEqual(r.records.count, 3)
        XCTAssertTrue(r.records.allSatisfy { $0.value != nil || $0.undefined != nil })
    }
}

/// `bench` runs end to end on a tiny generated file and removes it (figures are printed, never asserted).
final class BenchSmokeTests: XCTestCase {
    func testBenchRunsAndCleansUp() throws {
        let dir = TemporaryDirectory()
        let r = try bwanalyze("bench", "--dir", dir.path, "--clips", "24", "--tokens", "4", "--features", "8", "--layers", "4")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("machine: dgemm "), r.stdout)
        for name in ["cka --pool tokens", "spectrum --pool tokens", "tokens (blocks)", "retrieval", "probe"] {
            XCTAssertTrue(r.stdout.contains(name), "\(name) missing from\n\(r.stdout)")
        }
        XCTAssertEqual(dir.contents, [], "the generated file is removed")
    }
}
