import AnalysisCommands
import Foundation
import LinearAlgebra
import Reports
import XCTest

/// Finding 0: records of one e2e run built so that every check holds; tests then move one quantity.
struct BaselineScenario {
    var run = RunInfo(run: "e2e", regime: "e2e", blockEnds: [3, 6, 9, 12], steps: [200])
    var blockOne: [String: Double] = ["double-gratings": 0.55, "actions": 0.40]
    var final: [String: Double] = ["double-gratings": 0.65, "actions": 0.50]
    /// Half-width of the replicates' spread around each value (uniform), per record.
    var spread = 0.005
    /// Extra spread of the final-block accuracy only (widens the rise's interval).
    var finalSpread = 0.0
    var motion = (accuracy: 0.40, chance: 0.17)
    var patch: [Int: Double] = [1: 0.1, 2: 0.2, 3: 0.3, 4: 0.35, 5: 0.4, 6: 0.45, 7: 0.5, 8: 0.55, 9: 0.58, 10: 0.9, 11: 0.95, 12: 0.99]
    var cka0L = 0.5
    var map = (motion: 0.30, object: 0.40)
    var chance = (motion: 0.17, object: 0.26)
    let resamples = 400

    func records() -> [MetricRecord] {
        var out: [MetricRecord] = []
        for p in ["double-gratings", "actions"] {
            func add(_ metric: String, _ depth: Int, _ value: Double, depthB: Int? = nil, target: String? = nil, spread: Double? = nil) {
                var r = MetricRecord(metric: metric, run: run.run, file: "\(p).h5", probeSet: p, step: 200, depth: depth,
                                     runB: depthB == nil ? nil : run.run, depthB: depthB, target: target, value: value)
                if let spread {
                    var g = SeededGenerator(seed: UInt64(out.count + 1))
                    r.replicates = .init(clips: 500, values: (0..<resamples).map { _ in value + spread * (2 * g.nextUniform() - 1) })
                }
                out.append(r)
            }
            add("probe_accuracy_mean_over_targets", 3, blockOne[p]!, spread: spread)
            add("probe_accuracy_mean_over_targets", 12, final[p]!, spread: spread + finalSpread)
            for (d, v) in patch { add("patch_similarity", d, v, spread: spread) }
            add("cka_linear_biased", 0, cka0L, depthB: 12, spread: spread)
            if p == "actions" {
                add("probe_accuracy", 12, motion.accuracy, target: "motion", spread: spread)
                add("probe_accuracy_shuffled", 12, motion.chance, target: "motion", spread: spread)
                add("probe_accuracy", 12, 0.9, target: "object", spread: spread)  // not a motion target: ignored
                add("probe_accuracy_shuffled", 12, 0.25, target: "object", spread: spread)
                add("retrieval_map", 12, map.motion, target: "motion", spread: spread)
                add("retrieval_map", 12, map.object, target: "object", spread: spread)
                add("retrieval_map_chance", 12, chance.motion, target: "motion")
                add("retrieval_map_chance", 12, chance.object, target: "object")
            } else {
                add("probe_accuracy", 12, 0.45, target: "orientation_match", spread: spread)
                add("probe_accuracy_shuffled", 12, 0.5, target: "orientation_match", spread: spread)
            }
        }
        return out
    }

    func evaluate() -> Finding { Findings.baseline(records: records(), runs: [run]) }
}

final class BaselineFindingTests: XCTestCase {
    func testEveryCheckHoldsOnConstructedRecords() throws {
        let f = BaselineScenario().evaluate()
        XCTAssertEqual(f.id, 0)
        XCTAssertEqual(f.verdict, "reproduced", "\(f.checks.filter { $0.verdict != "reproduced" })")
        // Per probe set: rise, patch similarity, CKA; once: the motion/relational ratio and the mAP margin.
        XCTAssertEqual(f.checks.count, 2 * 3 + 2)
        let rise = try XCTUnwrap(f.checks.first { $0.name.contains("rise") && $0.name.contains("[actions]") })
        XCTAssertEqual(rise.measured, 0.10, accuracy: 1e-12)
        let ratio = try XCTUnwrap(f.checks.first { $0.kind.hasPrefix("motion/relational") })
        XCTAssertEqual(ratio.measured, 0.40 / 0.17, accuracy: 1e-12, "actions motion beats double gratings' orientation_match (0.9x)")
        XCTAssertTrue(ratio.name.contains("[actions]") && ratio.name.contains("motion"), ratio.name)
        let margin = try XCTUnwrap(f.checks.first { $0.kind.hasPrefix("retrieval mAP over chance") })
        XCTAssertEqual(margin.measured, (0.30 + 0.40) / 2 - (0.17 + 0.26) / 2, accuracy: 1e-12)
        let patch = try XCTUnwrap(f.checks.first { $0.name.contains("patch similarity") && $0.name.contains("[actions]") })
        XCTAssertEqual(patch.measured, 0.58, accuracy: 1e-12, "the largest at depths 1-9; depths 10-12 are not checked")
        XCTAssertTrue(patch.name.contains("depths 1-9"), patch.name)
    }

    func testRiseBelowTheBarIsNotReproducedAndAWideIntervalIsInconclusive() throws {
        var s = BaselineScenario()
        s.final["actions"] = 0.43  // rise 0.03: its interval (about ±0.01) lies wholly below 0.05
        var f = s.evaluate()
        XCTAssertEqual(f.verdict, "not reproduced")
        XCTAssertEqual(f.checks.filter { $0.verdict == "not reproduced" }.map(\.name).count, 1)
        XCTAssertTrue(f.reasons.first?.contains("rise") ?? false, "\(f.reasons)")

        s = BaselineScenario()
        s.final["actions"] = 0.46  // rise 0.06 but an interval reaching below 0
        s.finalSpread = 0.1
        f = s.evaluate()
        let rise = try XCTUnwrap(f.checks.first { $0.name.contains("rise") && $0.name.contains("[actions]") })
        XCTAssertTrue(rise.passed)
        XCTAssertLessThan(rise.ciLow!, 0)
        XCTAssertEqual(rise.verdict, "inconclusive")
        XCTAssertEqual(f.verdict, "inconclusive")
    }

    func testTokenCollapseRetrievalAtChanceAndMotionAtChanceFail() {
        var s = BaselineScenario()
        s.patch[5] = 0.9
        XCTAssertEqual(s.evaluate().verdict, "not reproduced")
        s = BaselineScenario()
        s.patch[10] = 1.0  // depth L-2 is not checked
        XCTAssertEqual(s.evaluate().verdict, "reproduced")
        s = BaselineScenario()
        s.cka0L = 0.95
        XCTAssertEqual(s.evaluate().verdict, "not reproduced")
        s = BaselineScenario()
        s.map = (0.19, 0.27)
        XCTAssertEqual(s.evaluate().verdict, "not reproduced")
        s = BaselineScenario()
        s.motion = (0.20, 0.17)
        XCTAssertEqual(s.evaluate().verdict, "not reproduced")
    }

    func testWithoutAnEndToEndRunNothingIsEvaluated() {
        var s = BaselineScenario()
        s.run = RunInfo(run: "sim", regime: "simultaneous", blockEnds: [3, 6, 9, 12], steps: [200])
        let f = s.evaluate()
        XCTAssertEqual(f.verdict, "not evaluated")
        XCTAssertEqual(f.notes, ["no e2e run"])
    }
}
