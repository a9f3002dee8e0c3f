import AnalysisCommands
import Foundation
import LinearAlgebra
import Reports
import XCTest

/// Records constructed so that each finding holds; tests then break one quantity at a time.
struct Scenario {
    var runs: [RunInfo] = [
        RunInfo(run: "e2e", regime: "e2e", blockEnds: [3, 6, 9, 12], steps: [100, 200]),
        RunInfo(run: "sim-k4", regime: "simultaneous", blockEnds: [3, 6, 9, 12], steps: [100, 200]),
        RunInfo(run: "seq-k4", regime: "sequential", blockEnds: [3, 6, 9, 12], steps: [200]),
        RunInfo(run: "sim-k6", regime: "simultaneous", blockEnds: [2, 4, 6, 8, 10, 12], steps: [200]),
    ]
    var probeSets = ["double-gratings", "actions"]
    var finalAccuracy: [String: Double] = ["e2e": 0.80, "sim-k4": 0.79, "seq-k4": 0.795, "sim-k6": 0.785]
    var finalMAP: [String: Double] = ["e2e": 0.50, "sim-k4": 0.49, "seq-k4": 0.495, "sim-k6": 0.485]
    /// Accuracy at depths 2 and 3 (block 1 of K=6 and K=4 runs).
    var earlyAccuracy: [String: Double] = ["e2e": 0.50, "sim-k4": 0.60, "seq-k4": 0.62, "sim-k6": 0.58]
    /// Accuracy drop from the final block back to the previous block boundary (negative gain).
    var lastGain = 0.005
    var lastCKA = 0.98
    var patch: [String: Double] = ["e2e": 0.20, "sim-k4": 0.30, "seq-k4": 0.29, "sim-k6": 0.31]
    /// Bootstrap replicates of every record: value + spread·u with u uniform in [-1, 1), drawn per record
    /// (so differences of two records spread over ±2·spread); nil spread = records without replicates.
    var spread: Double? = 0.001
    var resamples = 200
    var clips = 300

    func records() -> [MetricRecord] {
        var out: [MetricRecord] = []
        for run in runs {
            let k = run.blockEnds.count
            for p in probeSets {
                let step = run.latestStep
                func add(_ metric: String, _ depth: Int, _ value: Double, depthB: Int? = nil, target: String? = nil) {
                    var r = MetricRecord(metric: metric, run: run.run, file: "\(run.run)-\(p).h5", probeSet: p, step: step, depth: depth,
                                         runB: depthB == nil ? nil : run.run, depthB: depthB, target: target, value: value)
                    if let spread {
                        var g = SeededGenerator(seed: UInt64(out.count + 1))
                        r.replicates = .init(clips: clips, values: (0..<resamples).map { _ in value + spread * (2 * g.nextUniform() - 1) })
                    }
                    out.append(r)
                }
                add("probe_accuracy_mean_over_targets", 12, finalAccuracy[run.run]!)
                add("probe_accuracy_mean_over_targets", run.blockEnds[k - 2], finalAccuracy[run.run]! - lastGain)
                add("retrieval_map", 12, finalMAP[run.run]!, target: "motion")
                add("retrieval_map", 12, finalMAP[run.run]!, target: "object")
                for d in [2, 3] where d != run.blockEnds[k - 2] { add("probe_accuracy_mean_over_targets", d, earlyAccuracy[run.run]!) }
                add("cka_linear_biased", run.blockEnds[k - 2], lastCKA, depthB: 12)
                for d in run.blockEnds { add("patch_similarity", d, patch[run.run]!) }
                // An earlier step with values that would break every finding: must be ignored.
                if run.steps.count > 1 {
                    out.append(MetricRecord(metric: "probe_accuracy_mean_over_targets", run: run.run, file: "old.h5", probeSet: p,
                                            step: run.steps[0], depth: 12, value: run.regime == "e2e" ? 0.99 : 0.1))
                }
            }
        }
        return out
    }

    func evaluate() -> [Finding] { Findings.evaluate(records: records(), runs: runs) }
}

final class FindingsTests: XCTestCase {
    func testAllFourFindingsHoldOnConstructedRecords() {
        let f = Scenario().evaluate()
        XCTAssertEqual(f.map(\.id), [1, 2, 3, 4])
        for finding in f {
            XCTAssertEqual(finding.reproduced, true, "finding \(finding.id): \(finding.checks.filter { !$0.passed }.map(\.name))")
            XCTAssertFalse(finding.checks.isEmpty)
        }
        // Finding 1 compares 3 BW runs x 2 probe sets (probe + mAP), seq vs sim, K=4 -> K=6 for each set.
        let one = f[0]
        XCTAssertEqual(one.checks.filter { $0.name.hasPrefix("final-block probe gap") }.count, 6)
        XCTAssertEqual(one.checks.filter { $0.name.hasPrefix("final-block retrieval mAP gap") }.count, 6)
        let gap = one.checks.first { $0.name.contains("probe gap simultaneous K=4 vs e2e") }!
        XCTAssertEqual(gap.measured, -0.01, accuracy: 1e-12, "signed: blockwise minus e2e")
        XCTAssertEqual(gap.verdict, "reproduced")
        XCTAssertLessThan(gap.ciLow!, gap.measured)
        XCTAssertGreaterThan(gap.ciHigh!, gap.measured)
        let cost = one.checks.first { $0.name.contains("simultaneous K=4 -> simultaneous K=6") }!
        XCTAssertEqual(cost.measured, 0.79 - 0.785, accuracy: 1e-12)
        // Sequential against simultaneous at the same K only (K=6 has no sequential run).
        XCTAssertEqual(one.checks.filter { $0.kind == "probe gap sequential - simultaneous" }.count, 2)
        let seqSim = one.checks.first { $0.name.hasPrefix("sequential K=4 vs simultaneous K=4") }!
        XCTAssertEqual(seqSim.measured, 0.795 - 0.79, accuracy: 1e-12)
        XCTAssertEqual(seqSim.seeds, 1)
        XCTAssertEqual(seqSim.interval, "clips only", "one training per condition")
        // Finding 2: block 1 of sim-k4 is depth 3; e2e at depth 3 is 0.50.
        let emergence = f[1].checks.first { $0.name.contains("simultaneous K=4") && $0.name.contains("[actions]") }!
        XCTAssertEqual(emergence.measured, 0.10, accuracy: 1e-12)
        XCTAssertEqual(f[2].checks.count, 3 * 2 * 2)
        XCTAssertEqual(f[3].checks.first { $0.name.contains("simultaneous K=6") }!.measured, 0.11, accuracy: 1e-12)
    }

    func testFinding1FailsWhenBlockwiseFallsBehind() {
        var s = Scenario()
        s.finalAccuracy["sim-k4"] = 0.70
        let f = s.evaluate()
        XCTAssertEqual(f[0].reproduced, false)
        XCTAssertEqual(f[0].checks.first { $0.name.contains("probe gap simultaneous K=4 vs e2e") }!.passed, false)
        XCTAssertEqual(f[3].reproduced, false, "pooled metrics no longer agree")
    }

    func testFinding1FailsOnSequentialVsSimultaneousAndBlockCount() {
        var s = Scenario()
        s.finalAccuracy["seq-k4"] = 0.835  // 0.045 from simultaneous K=4, within 0.04 of e2e
        var f = s.evaluate()
        XCTAssertEqual(f[0].reproduced, false)
        XCTAssertEqual(f[0].checks.filter { !$0.passed }.map { $0.kind == "probe gap sequential - simultaneous" }, [true, true])

        s = Scenario()
        s.finalAccuracy["sim-k6"] = 0.765  // K=4 -> K=6 costs 0.025; still within 0.04 of e2e
        f = s.evaluate()
        XCTAssertEqual(f[0].reproduced, false)
        XCTAssertTrue(f[0].checks.filter { !$0.passed }.allSatisfy { $0.kind == "probe cost of more blocks" })
        XCTAssertEqual(f[0].checks.filter { !$0.passed }.count, 2)
    }

    func testFinding2FailsWithoutEarlierEmergence() {
        var s = Scenario()
        s.earlyAccuracy["sim-k6"] = 0.40
        let f = s.evaluate()
        XCTAssertEqual(f[1].reproduced, false)
        XCTAssertEqual(f[1].checks.filter { !$0.passed }.count, 2)  // sim-k6 on both probe sets
    }

    func testFinding3FailsOnLowCKAOrLateGain() {
        var s = Scenario()
        s.lastCKA = 0.90
        XCTAssertEqual(s.evaluate()[2].reproduced, false)
        s = Scenario()
        s.lastGain = 0.03
        let f = s.evaluate()
        XCTAssertEqual(f[2].reproduced, false)
        XCTAssertTrue(f[2].checks.filter { !$0.passed }.allSatisfy { $0.name.hasPrefix("probe gain") })
    }

    func testFinding4FailsWhenPatchSimilarityAgrees() {
        var s = Scenario()
        s.patch = ["e2e": 0.20, "sim-k4": 0.21, "seq-k4": 0.19, "sim-k6": 0.205]
        let f = s.evaluate()
        XCTAssertEqual(f[3].reproduced, false)
        XCTAssertEqual(f[0].reproduced, true)
    }

    func testMissingRunsGiveNoVerdictWithAReason() {
        var s = Scenario()
        s.runs.removeAll { $0.regime == "e2e" }
        var f = s.evaluate()
        for i in [0, 1, 3] {
            XCTAssertNil(f[i].reproduced)
            XCTAssertTrue(f[i].notes.contains("no e2e run"), "\(f[i].notes)")
            XCTAssertTrue(f[i].checks.isEmpty)
        }
        XCTAssertEqual(f[2].reproduced, true, "saturation needs only blockwise runs")

        s = Scenario()
        s.runs.removeAll { $0.isBlockwise }
        f = s.evaluate()
        XCTAssertTrue(f.allSatisfy { $0.reproduced == nil })
        XCTAssertEqual(f[2].notes, ["no blockwise run"])

        s = Scenario()
        s.probeSets = ["gratings"]
        f = s.evaluate()
        XCTAssertNil(f[1].reproduced)
        XCTAssertTrue(f[1].notes[0].hasPrefix("no double-gratings or actions activations"))
        XCTAssertEqual(f[0].reproduced, true)
    }

    func testVerdictWordsFromChecks() {
        func check(_ verdict: String) -> Finding.Check {
            Finding.Check(name: verdict, measured: 0, ciLow: -1, ciHigh: 1, criterion: "", passed: true, verdict: verdict, paper: "")
        }
        func decided(_ verdicts: [String]) -> Finding {
            var f = Finding(id: 1, title: "", paper: "", criterion: "", checks: verdicts.map(check))
            f.decide()
            return f
        }
        let yes = decided(["reproduced", "reproduced"])
        XCTAssertEqual(yes.verdict, "reproduced")
        XCTAssertEqual(yes.reproduced, true)
        let no = decided(["reproduced", "inconclusive", "not reproduced"])
        XCTAssertEqual(no.verdict, "not reproduced")
        XCTAssertEqual(no.reproduced, false)
        XCTAssertEqual(no.reasons.count, 1)
        XCTAssertTrue(no.reasons[0].contains("not reproduced: 0.0000 [-1.0000, 1.0000]"), no.reasons[0])
        let unsure = decided(["reproduced", "inconclusive"])
        XCTAssertEqual(unsure.verdict, "inconclusive")
        XCTAssertNil(unsure.reproduced)
        XCTAssertEqual(unsure.reasons.count, 1)
        XCTAssertEqual(Finding(id: 1, title: "", paper: "", criterion: "").verdict, "not evaluated")
    }

    /// Interval verdicts against hand-placed intervals for every kind of threshold.
    func testIntervalVerdictPerRule() {
        typealias R = Findings.Rule
        let cases: [(R, Double, Double, String)] = [
            (.atMost(0.01), -0.02, 0.01, "reproduced"), (.atMost(0.01), 0.011, 0.05, "not reproduced"), (.atMost(0.01), 0.0, 0.02, "inconclusive"),
            (.below(0.02), -0.1, 0.019, "reproduced"), (.below(0.02), 0.02, 0.03, "not reproduced"), (.below(0.02), 0.01, 0.02, "inconclusive"),
            (.atLeast(0.95), 0.95, 0.99, "reproduced"), (.atLeast(0.95), 0.90, 0.949, "not reproduced"), (.atLeast(0.95), 0.94, 0.96, "inconclusive"),
            (.above(0), 0.001, 0.1, "reproduced"), (.above(0), -0.1, 0, "not reproduced"), (.above(0), -0.01, 0.01, "inconclusive"),
            (.within(0.04), -0.04, 0.04, "reproduced"), (.within(0.04), 0.041, 0.2, "not reproduced"), (.within(0.04), -0.2, -0.05, "not reproduced"),
            (.within(0.04), 0.0, 0.05, "inconclusive"), (.within(0.04), -0.05, 0.05, "inconclusive"),
            // An end equal to the threshold up to float rounding counts as equal.
            (.within(0.04), -0.02, 0.04000000000000001, "reproduced"),
        ]
        for (rule, lo, hi, want) in cases { XCTAssertEqual(rule.verdict(lo, hi), want, "\(rule) [\(lo), \(hi)]") }
    }

    func testWideIntervalsMakeFindingsInconclusive() {
        var s = Scenario()
        s.spread = 0.05  // probe gaps of 0.01 now have intervals about ±0.1 wide: neither inside nor outside ±0.04
        let f = s.evaluate()
        XCTAssertEqual(f[0].verdict, "inconclusive")
        XCTAssertNil(f[0].reproduced)
        let gap = f[0].checks.first { $0.name.contains("probe gap simultaneous K=4 vs e2e") }!
        XCTAssertEqual(gap.measured, -0.01, accuracy: 1e-12)
        XCTAssertTrue(gap.passed, "the point value still meets the criterion")
        XCTAssertEqual(gap.verdict, "inconclusive")
        XCTAssertLessThan(gap.ciLow!, -0.04)
        XCTAssertGreaterThan(gap.ciHigh!, 0.0)
        XCTAssertFalse(f[0].reasons.isEmpty)
        XCTAssertTrue(f[0].reasons.allSatisfy { $0.hasPrefix("interval not decisive") })
    }

    func testRecordsWithoutIntervalsAreInconclusive() {
        var s = Scenario()
        s.spread = nil
        let f = s.evaluate()
        for finding in f {
            XCTAssertEqual(finding.verdict, "inconclusive", "finding \(finding.id)")
            XCTAssertTrue(finding.checks.allSatisfy { $0.ciLow == nil && $0.verdict == "inconclusive" && $0.passed })
        }
    }

    /// The interval of a difference is the percentile interval of the per-resample differences (paired).
    func testIntervalsArePairedPercentilesOfTheReplicates() {
        let s = Scenario()
        let records = s.records()
        func reps(_ run: String, _ depth: Int, _ p: String) -> [Double] {
            records.first { $0.metric == "probe_accuracy_mean_over_targets" && $0.run == run && $0.depth == depth && $0.probeSet == p && $0.step == 200 }!
                .replicates!.values.map { $0! }
        }
        let f = Findings.evaluate(records: records, runs: s.runs)
        let gain = f[2].checks.first { $0.name == "probe gain depth 9 -> 12 of simultaneous K=4 [actions]" }!
        let diffs = zip(reps("sim-k4", 12, "actions"), reps("sim-k4", 9, "actions")).map { $0 - $1 }
        XCTAssertEqual(gain.ciLow!, percentile(diffs, 0.025), accuracy: 1e-15)
        XCTAssertEqual(gain.ciHigh!, percentile(diffs, 0.975), accuracy: 1e-15)
        // Unpaired records (different N) give no interval.
        var other = records
        for i in other.indices where other[i].run == "e2e" && other[i].replicates != nil { other[i].replicates!.clipSet = "order:299" }
        let g = Findings.evaluate(records: other, runs: s.runs)
        XCTAssertNil(g[0].checks.first { $0.name.contains("probe gap simultaneous K=4 vs e2e") }!.ciLow)
        XCTAssertNotNil(g[2].checks.first { $0.name == gain.name }!.ciLow, "within one run still paired")
    }

    /// Three seeds per condition: each check is taken per seed, pairing runs by seed (whatever their
    /// order), its point is the mean over seeds and its interval the seed mean ± t(2)·s/√3 (records
    /// without clip replicates: no shared clip term).
    func testSeedsAreReplicatesPairedBySeed() throws {
        let e2eAcc = [0: 0.80, 1: 0.82, 2: 0.78], simAcc = [0: 0.79, 1: 0.80, 2: 0.80]
        var runs: [RunInfo] = []
        var records: [MetricRecord] = []
        for seed in [2, 0, 1] {
            for (regime, acc) in [("e2e", e2eAcc), ("simultaneous", simAcc)] {
                let run = RunInfo(run: "\(regime)-s\(seed)", regime: regime, blockEnds: [3, 6], steps: [10], seed: seed)
                runs.append(run)
                for d in [3, 6] {
                    records.append(MetricRecord(metric: "probe_accuracy_mean_over_targets", run: run.run, file: "f", probeSet: "actions", step: 10,
                                                depth: d, value: acc[seed]! - (d == 3 ? 0.1 : 0)))
                }
            }
        }
        let gap = try XCTUnwrap(Findings.evaluate(records: records, runs: runs)[0].checks.first { $0.name.hasPrefix("final-block probe gap") })
        XCTAssertEqual(gap.name, "final-block probe gap simultaneous K=2 vs e2e [actions]")
        let diffs = [-0.01, -0.02, 0.02]
        XCTAssertEqual(gap.perSeed?.map(\.seed), ["0", "1", "2"])
        for (p, d) in zip(gap.perSeed!, diffs) { XCTAssertEqual(p.value, d, accuracy: 1e-12) }
        XCTAssertEqual(gap.perSeed?.first?.runs, "simultaneous-s0 - e2e-s0")
        XCTAssertEqual(gap.seeds, 3)
        XCTAssertEqual(gap.interval, "seeds only", "records without clip replicates")
        let mean = diffs.reduce(0, +) / 3
        let sd = (diffs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 2).squareRoot()
        XCTAssertEqual(gap.measured, mean, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(gap.ciHigh) - mean, 4.302652729911275 * sd / 3.0.squareRoot(), accuracy: 1e-9)
        XCTAssertEqual(mean - (try XCTUnwrap(gap.ciLow)), 4.302652729911275 * sd / 3.0.squareRoot(), accuracy: 1e-9)
        // Conditions with no seed in common pair in seed order: still three replicates.
        let shifted = runs.map { r -> RunInfo in var r = r; if r.regime == "e2e" { r.seed = r.seed! + 10 }; return r }
        let unpaired = try XCTUnwrap(Findings.evaluate(records: records, runs: shifted)[0].checks.first { $0.name.hasPrefix("final-block probe gap") })
        XCTAssertEqual(unpaired.seeds, 3)
        XCTAssertEqual(unpaired.perSeed?.map(\.seed), ["0/10", "1/11", "2/12"])
        XCTAssertEqual(unpaired.measured, mean, accuracy: 1e-12)
    }

    /// Conditions of the same regime and K but different depth are named apart, each blockwise condition
    /// is compared with the e2e runs of its own depth, and intervals without clip replicates say so.
    func testConditionsOfDifferentDepthStayApart() throws {
        var runs: [RunInfo] = []
        var records: [MetricRecord] = []
        for (layers, e2eAcc, bwAcc) in [(4, 0.70, 0.69), (8, 0.90, 0.80)] {
            for seed in [0, 1] {
                for (regime, acc) in [("e2e", e2eAcc), ("simultaneous", bwAcc)] {
                    let run = RunInfo(run: "\(regime)-L\(layers)-s\(seed)", regime: regime, blockEnds: [layers / 2, layers], steps: [1], seed: seed)
                    runs.append(run)
                    for d in [layers / 2, layers] {
                        records.append(MetricRecord(metric: "probe_accuracy_mean_over_targets", run: run.run, file: "f", probeSet: "p", step: 1,
                                                    depth: d, value: acc + Double(seed) * 0.01))
                    }
                }
            }
        }
        let gaps = Findings.evaluate(records: records, runs: runs)[0].checks.filter { $0.kind == "probe gap BW - E2E (final block)" }
        XCTAssertEqual(gaps.map(\.name).sorted(), ["final-block probe gap simultaneous K=2 L=4 vs e2e [p]", "final-block probe gap simultaneous K=2 L=8 vs e2e [p]"])
        let deep = try XCTUnwrap(gaps.first { $0.name.contains("L=8") })
        XCTAssertEqual(deep.measured, -0.10, accuracy: 1e-12, "compared with the e2e runs of depth 8 only")
        XCTAssertEqual(deep.perSeed?.first?.runs, "simultaneous-L8-s0 - e2e-L8-s0")
        XCTAssertEqual(deep.interval, "seeds only", "records without clip replicates")
        let table = ReportConditions(table: ReportTable(records: records, runs: runs), runs: runs)
        XCTAssertEqual(Set(table.rows.map(\.condition)), ["e2e K=2 L=4", "e2e K=2 L=8", "simultaneous K=2 L=4", "simultaneous K=2 L=8"])
        XCTAssertTrue(table.rows.allSatisfy { $0.perSeed.count == 2 })
    }

    /// numpy's default percentile (linear interpolation), written out independently of `Bootstrap`.
    func percentile(_ values: [Double], _ q: Double) -> Double {
        let s = values.sorted()
        let pos = q * Double(s.count - 1)
        let i = Int(pos)
        return i + 1 < s.count ? s[i] * (1 - (pos - Double(i))) + s[i + 1] * (pos - Double(i)) : s[i]
    }
}

/// The page's final-block mAP is the value findings.json uses (`RecordIndex.finalMAP`).
final class FinalBlockMAPTests: XCTestCase {
    func mapColumn(_ records: [MetricRecord], _ runs: [RunInfo]) -> [String] {
        let col = ReportHTML.finalBlockHeader.firstIndex(of: "retrieval mAP")!
        return ReportHTML.finalBlockRows(ReportTable(records: records, runs: runs), runs: runs).map { $0[col] }
    }

    func testThePageShowsTheMeanOverTargets() {
        var s = Scenario()
        s.runs = s.runs.map { var r = $0; r.probeSets = s.probeSets; return r }
        // Both targets hold the run's final mAP, so the mean over targets is that value.
        XCTAssertEqual(mapColumn(s.records(), s.runs), s.runs.flatMap { r in s.probeSets.map { _ in String(format: "%.4f", s.finalMAP[r.run]!) } })
    }

    func testATargetAnotherRunRetrievedButThisOneLacksMakesItUndefined() {
        let runs = [RunInfo(run: "a", regime: "e2e", blockEnds: [2], steps: [1], probeSets: ["p"]),
                    RunInfo(run: "b", regime: "simultaneous", blockEnds: [2], steps: [1], probeSets: ["p"])]
        func rec(_ run: String, _ target: String, _ v: Double) -> MetricRecord {
            MetricRecord(metric: "retrieval_map", run: run, file: "\(run).h5", probeSet: "p", step: 1, depth: 2, target: target, value: v)
        }
        let records = [rec("a", "x", 0.5), rec("a", "y", 0.7), rec("b", "x", 0.4)]
        XCTAssertEqual(mapColumn(records, runs), ["0.6000", "n/a"])
        let findings = Findings.evaluate(records: records, runs: runs)
        XCTAssertFalse(findings[0].checks.contains { $0.kind.hasPrefix("mAP gap") }, "findings use the same rule: no mAP for b")
    }
}
