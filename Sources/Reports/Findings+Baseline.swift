import AnalysisCommands
import Foundation
import RepresentationMetrics

extension Findings {
    // MARK: - Finding 0: the end-to-end baseline

    /// Smallest rise of an e2e run's mean probe accuracy from its first block end to its last.
    public static let baselineRise = 0.05
    /// Smallest ratio of the best motion or relational target's final-block accuracy to its measured chance.
    public static let baselineChanceRatio = 1.5
    /// Smallest margin of the final-block retrieval mAP over its chance level, on `baselineRetrievalSet`.
    public static let baselineMAPMargin = 0.05
    /// The probe set of the retrieval check.
    public static let baselineRetrievalSet = "actions"
    /// Largest within-clip patch similarity allowed at depths 1 … L − 3.
    public static let baselinePatchSimilarity = 0.6
    /// Largest linear CKA allowed between depth 0 and depth L.
    public static let baselineCKA = 0.8
    /// Targets of the built-in probe sets that are about motion or about relations between parts of a
    /// clip: the actions' `motion` and the double gratings' relational targets (the authors' names).
    public static let motionOrRelationalTargets: [String: Set<String>] = [
        "actions": ["motion"],
        "double-gratings": ["sf_delta", "sf_higher_side", "spatial_freq_match", "orientation_delta", "orientation_match"],
    ]

    /// Finding 0: the end-to-end runs develop depth-wise structure, as the paper's e2e baselines do. The
    /// comparisons of findings 1–4 say little about blockwise training when it fails.
    ///
    /// Checks, per e2e condition (its runs are seeds; each quantity per seed, the point the mean over
    /// seeds, the interval over seeds and clips) at the runs' latest step, on the probe sets of finding 2 (`emergenceProbeSets`):
    /// - the mean probe accuracy rises from block 1 to the final block by ≥ `baselineRise`, with the
    ///   paired interval of the rise above 0 (reproduced when both hold, not reproduced when the whole
    ///   interval lies below `baselineRise`);
    /// - the best motion or relational target (`motionOrRelationalTargets`) reaches
    ///   ≥ `baselineChanceRatio` × its shuffled-label chance at the final block;
    /// - on `baselineRetrievalSet`, the final-block mAP exceeds its exact chance level
    ///   (`Metric.retrievalMAPChance`) by ≥ `baselineMAPMargin`;
    /// - patch similarity ≤ `baselinePatchSimilarity` at every depth 1 … L − 3, and linear CKA(0, L) ≤
    ///   `baselineCKA`.
    /// The last three are decided on their intervals as in findings 1–4.
    public static func baseline(records: [MetricRecord], runs: [RunInfo]) -> Finding {
        let x = RecordIndex(records: records, runs: runs)
        var f = Finding(
            id: 0, title: "End-to-end baseline develops depth-wise structure",
            paper: "e2e probe accuracy rises with depth (double drifting gratings 75% -> 94%, UCF101 34% -> 43%, Small); within-clip patch similarity 0.13-0.26 in blocks 1-3",
            criterion: "for every e2e condition (its runs are seeds; each quantity taken per seed, its point the mean over seeds) on each of \(emergenceProbeSets.joined(separator: ", ")): mean probe accuracy at the final block minus block 1 >= \(baselineRise) with its 95% interval above 0 (not reproduced when the interval lies wholly below \(baselineRise)); the best motion or relational target at the final block >= \(baselineChanceRatio) x its shuffled-label chance (ratio and maximum within each seed and resample); patch similarity <= \(baselinePatchSimilarity) at every depth 1 ... L-3 (largest within each seed and resample); linear CKA(depth 0, depth L) <= \(baselineCKA); and on \(baselineRetrievalSet) final-block retrieval mAP minus its exact chance level >= \(baselineMAPMargin). These decided on their 95% intervals over seeds and clips; reproduced when every check is, not reproduced when any check is, inconclusive otherwise.")
        let sets = emergenceProbeSets.filter { x.probeSets.contains($0) }
        for (condition, e2e) in x.conditions where e2e[0].isEndToEnd {
            guard let first = e2e[0].blockEnds.first, let last = e2e[0].blockEnds.last, first < last else { continue }
            var ratios: [(probeSet: String, estimate: Replicated, best: [String])] = []
            for p in sets {
                if let rise = x.replicate([e2e], { x.difference(x.accuracy($0[0], p, depth: last), x.accuracy($0[0], p, depth: first)) }) {
                    let means = [first, last].map { d in x.pairedMean([e2e], member: 0) { x.accuracy($0, p, depth: d)?.point } }
                    f.checks.append(riseCheck("probe accuracy rise depth \(first) -> \(last) of \(condition) [\(p)]", rise,
                                              detail: "seed means \(fmt(means[0])) -> \(fmt(means[1]))"))
                }
                // Best motion or relational target relative to its measured chance, maximum within each seed and resample.
                var best: [String] = []
                let ratio = x.replicate([e2e]) { one -> Estimate? in
                    var perTarget: [(String, Estimate)] = []
                    for t in (motionOrRelationalTargets[p] ?? []).sorted() {
                        guard let acc = x.value(.probeAccuracy, one[0], p, depth: last, target: t),
                              let chance = x.value(.probeAccuracyShuffled, one[0], p, depth: last, target: t), chance.point > 0 else { continue }
                        perTarget.append((t, Estimate.combine([acc, chance]) { $0[1] > 0 ? $0[0] / $0[1] : .nan }))
                    }
                    guard let top = perTarget.max(by: { $0.1.point < $1.1.point }) else { return nil }
                    best.append(top.0)
                    return Estimate.combine(perTarget.map(\.1)) { $0.max()! }
                }
                if let ratio { ratios.append((p, ratio, best)) }
                if let top = x.replicate([e2e], { one -> Estimate? in
                    let shallow = (1...max(1, last - 3)).compactMap { x.value(.patchSimilarity, one[0], p, depth: $0) }
                    return shallow.isEmpty ? nil : Estimate.combine(shallow) { $0.max()! }
                }) {
                    f.checks.append(check("largest patch similarity at depths 1-\(max(1, last - 3)) of \(condition) [\(p)]", kind: "patch similarity, depths 1 to L-3 (e2e)",
                                          top, .atMost(baselinePatchSimilarity), criterion: "<= \(baselinePatchSimilarity)", paper: "0.13-0.26 (blocks 1-3)"))
                }
                if let c = x.replicate([e2e], { x.cka($0[0], p, 0, last) }) {
                    f.checks.append(check("linear CKA depth 0 vs \(last) of \(condition) [\(p)]", kind: "CKA(depth 0, depth L) (e2e)", c, .atMost(baselineCKA),
                                          criterion: "<= \(baselineCKA)", paper: "representations change with depth"))
                }
            }
            // One target anywhere suffices: the probe set whose best target is furthest above chance (seed mean).
            if let top = ratios.max(by: { $0.estimate.point < $1.estimate.point }) {
                f.checks.append(check("best motion/relational target of \(condition) at depth \(last) over its chance [\(top.probeSet)]",
                                      kind: "motion/relational target over chance (e2e, final block)", top.estimate, .atLeast(baselineChanceRatio),
                                      criterion: ">= \(baselineChanceRatio) x chance", paper: "motion and relations decodable late",
                                      detail: "best target per seed: \(top.best.joined(separator: ", "))"))
            }
            let p = baselineRetrievalSet
            if x.probeSets.contains(p), let targets = x.targetsByMetric[Metric.retrievalMAPChance.name]?[p], !targets.isEmpty {
                var chanceValues: [Double] = []
                let margin = x.replicate([e2e]) { one -> Estimate? in
                    guard let m = x.finalMAP(one[0], p) else { return nil }
                    let chances = targets.sorted().compactMap { x.value(.retrievalMAPChance, one[0], p, depth: last, target: $0)?.point }
                    guard chances.count == targets.count else { return nil }
                    let chance = mean(chances)
                    chanceValues.append(chance)
                    return Estimate(point: m.point - chance, replicates: m.replicates?.map { $0.map { $0 - chance } }, clipSet: m.clipSet)
                }
                if let margin {
                    f.checks.append(check("final-block retrieval mAP of \(condition) minus chance [\(p)]", kind: "retrieval mAP over chance (e2e, final block)",
                                          margin, .atLeast(baselineMAPMargin), criterion: ">= \(baselineMAPMargin)", paper: "retrieval improves with depth",
                                          detail: "mAP \(fmt(margin.point + mean(chanceValues))) (seed mean), chance \(fmt(mean(chanceValues)))"))
                }
            }
        }
        if f.checks.isEmpty {
            f.notes.append(x.runs.contains { $0.isEndToEnd }
                ? "no e2e run with records at its first and last block ends on \(emergenceProbeSets.joined(separator: " or "))"
                : "no e2e run")
        } else {
            f.notes += x.replicationNotes
        }
        f.decide()
        return f
    }

    /// The rise check: reproduced when the point is ≥ `baselineRise` and the interval lies above 0; not
    /// reproduced when the interval lies wholly below `baselineRise`; inconclusive otherwise.
    static func riseCheck(_ name: String, _ rise: Replicated, detail: String? = nil) -> Finding.Check {
        let ci = rise.interval
        let meets = Rule.atLeast(baselineRise).holds(rise.point)
        let verdict: String
        if let ci {
            verdict = meets && Rule.above(0).verdict(ci.low, ci.high) == Finding.reproducedVerdict ? Finding.reproducedVerdict
                : Rule.rounded(ci.high) < baselineRise ? Finding.notReproducedVerdict : Finding.inconclusiveVerdict
        } else {
            verdict = Finding.inconclusiveVerdict
        }
        var c = Finding.Check(name: name, kind: "probe accuracy rise block 1 -> final block (e2e)", measured: rise.point, ciLow: ci?.low, ciHigh: ci?.high,
                              criterion: ">= \(baselineRise), interval above 0", passed: meets, verdict: verdict,
                              paper: "+0.19 (double gratings 0.75 -> 0.94), +0.09 (UCF101 0.34 -> 0.43)")
        rise.describe(&c)
        c.detail = detail
        return c
    }
}
