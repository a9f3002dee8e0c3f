import AnalysisCommands
@testable import Reports
import RepresentationMetrics
import XCTest

/// The measure-robustness section: re-runs of the CKA checks with calibrated thresholds, decided by
/// the findings' rules on intervals over seeds, and the final-block table.
final class MeasureRobustnessTests: XCTestCase {
    let n = 200, d = 16

    func runs() -> [RunInfo] {
        (0..<3).flatMap { (s: Int) -> [RunInfo] in
            [RunInfo(run: "e2e-s\(s)", regime: "e2e", blockEnds: [3, 6], steps: [10], seed: s),
             RunInfo(run: "sim-s\(s)", regime: "simultaneous", blockEnds: [3, 6], steps: [10], seed: s)]
        }
    }

    func record(_ m: Metric, _ run: String, _ a: Int, _ b: Int, _ v: Double, runB: String? = nil, probeSet: String = "actions") -> MetricRecord {
        MetricRecord(metric: m.name, run: run, file: "\(run).h5", probeSet: probeSet, step: 10, depth: a, runB: runB ?? run, depthB: b, value: v)
    }

    func testRerunsUseCalibratedThresholdsAndTheFindingsRules() throws {
        let angle95 = try SimilarityCalibration.threshold(.procrustesAngle, ckaLevel: Findings.saturationCKA, rows: n, features: d)
        let knn80 = try SimilarityCalibration.threshold(.mutualKNN, ckaLevel: Findings.baselineCKA, rows: n, features: d)
        var records: [MetricRecord] = []
        for s in 0..<3 {
            // Finding 3 (sim, depths 3 -> 6): angles well below the threshold, tightly spread: reproduced.
            records.append(record(.procrustesAngle, "sim-s\(s)", 3, 6, angle95 * 0.5 + 0.001 * Double(s)))
            // Its k-NN far below the 0.95 threshold: not reproduced.
            records.append(record(.mutualKNN, "sim-s\(s)", 3, 6, 0.05 + 0.001 * Double(s)))
            // Finding 0 (e2e, depth 0 vs 6): k-NN straddling the 0.8 threshold widely: inconclusive.
            records.append(record(.mutualKNN, "e2e-s\(s)", 0, 6, knn80 + [-0.3, 0.0, 0.3][s]))
            records.append(record(.procrustesAngle, "e2e-s\(s)", 0, 6, 1.2))
            // Final block, sim (A) vs e2e (B) of the same seed.
            records.append(record(.svcca, "sim-s\(s)", 6, 6, 0.9 + 0.01 * Double(s), runB: "e2e-s\(s)"))
        }
        let r = MeasureRobustness.evaluate(records: records, runs: runs(), findings: []) { _, _ in (rows: self.n, features: self.d) }
        XCTAssertEqual(r.notes, [])
        func verdict(_ finding: Int, _ m: Metric) -> String? { r.reruns.first { $0.finding == finding && $0.measure == m.name }?.check.verdict }
        XCTAssertEqual(verdict(3, .procrustesAngle), Finding.reproducedVerdict)
        XCTAssertEqual(verdict(3, .mutualKNN), Finding.notReproducedVerdict)
        XCTAssertEqual(verdict(0, .mutualKNN), Finding.inconclusiveVerdict)
        XCTAssertEqual(verdict(0, .procrustesAngle), Finding.reproducedVerdict, "a large angle: representations change with depth")
        let rerun = try XCTUnwrap(r.reruns.first { $0.finding == 3 && $0.measure == Metric.procrustesAngle.name })
        XCTAssertEqual(rerun.check.seeds, 3)
        XCTAssertEqual(rerun.check.interval, "seeds only")
        XCTAssertEqual(rerun.ckaCheck, "CKA depth 3 -> 6 of simultaneous K=2 [actions]")
        XCTAssertTrue(rerun.check.criterion.hasPrefix("<= \(String(format: "%.4f", angle95))"), rerun.check.criterion)
        XCTAssertTrue(r.thresholds.contains { $0.measure == Metric.mutualKNN.name && $0.ckaLevel == Findings.baselineCKA && $0.value == knn80 })
        let fb = try XCTUnwrap(r.finalBlock.first { $0.measure == Metric.svcca.name })
        XCTAssertEqual(fb.seeds, 3)
        XCTAssertEqual(fb.mean, 0.91, accuracy: 1e-12)
        XCTAssertEqual(fb.condition, "simultaneous K=2")
    }

    func testNoSimilarityRecordsGiveANote() {
        let r = MeasureRobustness.evaluate(records: [], runs: runs(), findings: []) { _, _ in nil }
        XCTAssertTrue(r.reruns.isEmpty)
        XCTAssertFalse(r.notes.isEmpty)
    }
}
