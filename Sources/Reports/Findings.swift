import ActivationStore
import AnalysisCommands
import Foundation
import RepresentationMetrics

/// The paper's four findings, evaluated from tidy records by stated criteria.
///
/// Pure: reads only `records` and `runs`. Every comparison uses each run's LATEST dumped step;
/// "final block" is a run's last block end (depth L), "block 1" its first block end. Where a
/// regime has several runs (seeds), blockwise runs are compared one by one against the mean of
/// the end-to-end runs. Accuracies are `Metric.probeAccuracyMeanOverTargets`; mAP is the mean over
/// targets of `Metric.retrievalMAP` (`RecordIndex.finalMAP`, also on the page); CKA is
/// `Metric.ckaLinearBiased` within one run.
public enum Findings {
    /// Final-block probe accuracy gap allowed between blockwise and end-to-end (paper: 0.02 Tiny, 0.04 Small; we use the looser).
    public static let probeGapTolerance = 0.04
    /// Final-block retrieval mAP gap allowed (paper: 0.015 Tiny, 0.02 Small; we use the looser).
    public static let mapGapTolerance = 0.02
    /// Sequential vs simultaneous: the paper reports < 0.01; our small model on small probe sets has
    /// fold-to-fold spreads of about 0.01-0.02, so we accept <= 0.02 (stated looser tolerance).
    public static let regimeGapTolerance = 0.02
    /// Accuracy lost going from fewer to more blocks (K=4 -> K=6 in the paper): < 0.02.
    public static let blockCountCostTolerance = 0.02
    /// Consecutive linear CKA between the last two block boundaries of a blockwise run (paper 0.985-0.99).
    public static let saturationCKA = 0.95
    /// Largest probe gain from block K-1 to K still counted as saturation (paper: near zero, sometimes negative).
    public static let saturationGain = 0.01
    /// Smallest patch-similarity difference counted as a token-level shift (paper: 0.03-0.14).
    public static let patchDifference = 0.02
    /// Probe sets on which finding 2 (earlier emergence) is checked.
    public static let emergenceProbeSets = ["double-gratings", "actions"]

    /// Coverage of the intervals the verdicts use.
    public static let intervalLevel = 0.95

    /// Evaluates findings 1-4.
    ///
    /// - Parameters:
    ///   - records: tidy records of the report (any steps; the latest step of each run is used), with
    ///     bootstrap replicates where the analyses computed them.
    ///   - runs: the runs, with regime, block ends and steps.
    /// - Complexity: O(records) to index, then O(runs² · probe sets · blocks · resamples).
    public static func evaluate(records: [MetricRecord], runs: [RunInfo]) -> [Finding] {
        let index = RecordIndex(records: records, runs: runs)
        return [convergence(index), emergence(index), saturation(index), tokenShift(index)]
    }

    /// Which side of a threshold the paper's finding lies on.
    public enum Rule: Sendable {
        /// statistic ≤ t.
        case atMost(Double)
        /// statistic < t.
        case below(Double)
        /// statistic ≥ t.
        case atLeast(Double)
        /// statistic > t.
        case above(Double)
        /// |statistic| ≤ t for a signed difference: the paper's side is the band [−t, t].
        case within(Double)

        static func rounded(_ x: Double) -> Double { (x * 1e12).rounded() / 1e12 }

        public func holds(_ x: Double) -> Bool {
            let x = Rule.rounded(x)
            switch self {
            case .atMost(let t): return x <= t
            case .below(let t): return x < t
            case .atLeast(let t): return x >= t
            case .above(let t): return x > t
            case .within(let t): return abs(x) <= t
            }
        }

        /// The verdict of an interval [lo, hi]: every point on the paper's side, every point on the other side, or neither.
        ///
        /// The ends are first rounded to 12 decimals: accuracies are multiples of 1/N, and an end that
        /// equals a threshold (e.g. a gap of exactly 0.04) must not be decided by float rounding.
        public func verdict(_ lo: Double, _ hi: Double) -> String {
            let lo = Rule.rounded(lo), hi = Rule.rounded(hi)
            let paperSide: Bool, otherSide: Bool
            switch self {
            case .atMost(let t): paperSide = hi <= t; otherSide = lo > t
            case .below(let t): paperSide = hi < t; otherSide = lo >= t
            case .atLeast(let t): paperSide = lo >= t; otherSide = hi < t
            case .above(let t): paperSide = lo > t; otherSide = hi <= t
            case .within(let t): paperSide = lo >= -t && hi <= t; otherSide = lo > t || hi < -t
            }
            return paperSide ? Finding.reproducedVerdict : otherSide ? Finding.notReproducedVerdict : Finding.inconclusiveVerdict
        }
    }

    /// A check of `estimate` against `rule`, its verdict decided on the interval.
    static func check(_ name: String, kind: String, _ estimate: Estimate, _ rule: Rule, criterion: String, paper: String) -> Finding.Check {
        let ci = estimate.interval(level: intervalLevel)
        return Finding.Check(name: name, kind: kind, measured: estimate.point, ciLow: ci?.low, ciHigh: ci?.high, criterion: criterion,
                             passed: rule.holds(estimate.point), verdict: ci.map { rule.verdict($0.low, $0.high) } ?? Finding.inconclusiveVerdict,
                             paper: paper)
    }

    // MARK: - Finding 1

    static func convergence(_ x: RecordIndex) -> Finding {
        var f = Finding(
            id: 1, title: "Convergence / closeness of blockwise to end-to-end",
            paper: "final-block probe accuracy within 0.02 (Tiny) / 0.04 (Small) of E2E; retrieval mAP within 0.015 / 0.02; sequential vs simultaneous < 0.01; K=4 -> K=6 costs < 0.02",
            criterion: "for every probe set with both regimes and every blockwise run: the signed difference acc_BW - mean acc_E2E at the final block within +-\(probeGapTolerance), and mAP_BW - mean mAP_E2E within +-\(mapGapTolerance) where retrieval exists; mean acc_sequential - mean acc_simultaneous within +-\(regimeGapTolerance) (looser than the paper's 0.01, stated for the small model and small probe sets); for blockwise runs of one regime with fewer vs more blocks (K=4 vs K=6 in the paper): acc(fewer) - acc(more) < \(blockCountCostTolerance). Each check is decided on its 95% bootstrap interval (paired over the same clips): reproduced when the interval lies inside the band (or below the cost threshold), not reproduced when it lies wholly outside; the finding is reproduced when every check is, not reproduced when any check is, inconclusive otherwise. Not evaluated without both an e2e and a blockwise run on a common probe set.")
        var comparedBWvsE2E = false
        for p in x.probeSets {
            let e2e = x.runs.filter { $0.isEndToEnd }
            let bw = x.runs.filter { $0.isBlockwise }
            let e2eAcc = e2e.compactMap { x.finalAccuracy($0, p) }
            let e2eMap = e2e.compactMap { x.finalMAP($0, p) }
            for b in bw {
                if let acc = x.finalAccuracy(b, p), !e2eAcc.isEmpty {
                    comparedBWvsE2E = true
                    let gap = Estimate.combine([acc] + e2eAcc) { $0[0] - mean(Array($0.dropFirst())) }
                    f.checks.append(check("final-block probe gap \(b.run) (\(b.regime)) vs e2e [\(p)]", kind: "probe gap BW - E2E (final block)", gap, .within(probeGapTolerance),
                                          criterion: "|gap| <= \(probeGapTolerance)", paper: "<= 0.02 (Tiny) / 0.04 (Small)"))
                }
                if let m = x.finalMAP(b, p), !e2eMap.isEmpty {
                    let gap = Estimate.combine([m] + e2eMap) { $0[0] - mean(Array($0.dropFirst())) }
                    f.checks.append(check("final-block retrieval mAP gap \(b.run) (\(b.regime)) vs e2e [\(p)]", kind: "mAP gap BW - E2E (final block)", gap, .within(mapGapTolerance),
                                          criterion: "|gap| <= \(mapGapTolerance)", paper: "<= 0.015 (Tiny) / 0.02 (Small)"))
                }
            }
            let seq = x.runs.filter { $0.knownRegime == .sequential }.compactMap { x.finalAccuracy($0, p) }
            let sim = x.runs.filter { $0.knownRegime == .simultaneous }.compactMap { x.finalAccuracy($0, p) }
            if !seq.isEmpty && !sim.isEmpty {
                let gap = Estimate.combine(seq + sim) { mean(Array($0.prefix(seq.count))) - mean(Array($0.dropFirst(seq.count))) }
                f.checks.append(check("sequential vs simultaneous final-block probe gap [\(p)]", kind: "probe gap sequential - simultaneous", gap, .within(regimeGapTolerance),
                                      criterion: "|gap| <= \(regimeGapTolerance) (paper < 0.01)", paper: "< 0.01"))
            }
            for regime in [Regime.simultaneous, .sequential] {
                let byK = Dictionary(grouping: x.runs.filter { $0.knownRegime == regime }, by: { $0.blockEnds.count })
                let ks = byK.keys.sorted()
                for (i, ka) in ks.enumerated() {
                    for kb in ks[(i + 1)...] {
                        let a = byK[ka]!.compactMap { x.finalAccuracy($0, p) }, b = byK[kb]!.compactMap { x.finalAccuracy($0, p) }
                        guard !a.isEmpty, !b.isEmpty else { continue }
                        let cost = Estimate.combine(a + b) { mean(Array($0.prefix(a.count))) - mean(Array($0.dropFirst(a.count))) }
                        f.checks.append(check("\(regime.rawValue) K=\(ka) -> K=\(kb) final-block probe cost [\(p)]", kind: "probe cost of more blocks", cost, .below(blockCountCostTolerance),
                                              criterion: "< \(blockCountCostTolerance)", paper: "< 0.02 (K=4 -> K=6)"))
                    }
                }
            }
        }
        if !comparedBWvsE2E {
            f.checks = []
            f.notes.append(x.missingRegimeReason(probeSets: x.probeSets))
            f.decide()
            return f
        }
        if !f.checks.contains(where: { $0.name.hasPrefix("sequential vs simultaneous") }) {
            f.notes.append("sequential vs simultaneous not evaluated: needs both regimes on one probe set")
        }
        if !f.checks.contains(where: { $0.name.contains(" -> K=") }) {
            f.notes.append("block-count cost not evaluated: needs blockwise runs of one regime with different K")
        }
        f.decide()
        return f
    }

    // MARK: - Finding 2

    static func emergence(_ x: RecordIndex) -> Finding {
        var f = Finding(
            id: 2, title: "Earlier emergence of higher-level structure in blockwise runs",
            paper: "block-1 probe accuracy BW > E2E: double gratings ~0.86 vs ~0.75 (Small); actions ~0.39 vs ~0.34",
            criterion: "on each of the probe sets \(emergenceProbeSets.joined(separator: ", ")) present with both regimes, every blockwise run's probe accuracy at its first block boundary minus the mean E2E accuracy at the same depth > 0. Decided on the 95% bootstrap interval of each difference (paired over the same clips): reproduced when every interval lies above 0, not reproduced when any lies wholly at or below 0, inconclusive otherwise.")
        let sets = emergenceProbeSets.filter { x.probeSets.contains($0) }
        for p in sets {
            let e2e = x.runs.filter { $0.isEndToEnd }
            for b in x.runs where b.isBlockwise {
                guard let depth = b.blockEnds.first, let acc = x.accuracy(b, p, depth: depth) else { continue }
                let ref = e2e.compactMap { x.accuracy($0, p, depth: depth) }
                guard !ref.isEmpty else { continue }
                let diff = Estimate.combine([acc] + ref) { $0[0] - mean(Array($0.dropFirst())) }
                f.checks.append(check("block-1 (depth \(depth)) probe accuracy \(b.run) (\(b.regime)) minus e2e [\(p)]: \(fmt(acc.point)) vs \(fmt(mean(ref.map(\.point))))", kind: "block-1 probe accuracy BW - E2E",
                                      diff, .above(0), criterion: "> 0",
                                      paper: p == "actions" ? "+0.05 (0.39 vs 0.34)" : "+0.11 (0.86 vs 0.75)"))
            }
        }
        if f.checks.isEmpty {
            if sets.isEmpty {
                f.notes.append("no \(emergenceProbeSets.joined(separator: " or ")) activations (probe sets present: \(x.probeSets.joined(separator: ", ")))")
            } else {
                f.notes.append(x.missingRegimeReason(probeSets: sets))
            }
        }
        f.decide()
        return f
    }

    // MARK: - Finding 3

    static func saturation(_ x: RecordIndex) -> Finding {
        var f = Finding(
            id: 3, title: "Late saturation of blockwise runs, geometry preserved",
            paper: "consecutive linear CKA block 3 -> 4 of BW runs ~0.985-0.99; probe gain block 3 -> 4 near zero (sometimes negative)",
            criterion: "for every blockwise run with K >= 2 blocks and every probe set: linear CKA (biased, clip vectors) between the last two block boundaries >= \(saturationCKA) (paper 0.985-0.99), and probe accuracy gain from block K-1 to K <= \(saturationGain). Decided on 95% bootstrap intervals (the gain paired over the same clips): reproduced when every interval lies on the paper's side, not reproduced when any lies wholly on the other side, inconclusive otherwise.")
        for b in x.runs where b.isBlockwise && b.blockEnds.count >= 2 {
            let d1 = b.blockEnds[b.blockEnds.count - 2], d2 = b.blockEnds[b.blockEnds.count - 1]
            for p in x.probeSets {
                if let c = x.cka(b, p, d1, d2) {
                    f.checks.append(check("CKA depth \(d1) -> \(d2) of \(b.run) (\(b.regime)) [\(p)]", kind: "CKA between the last two block ends", c, .atLeast(saturationCKA),
                                          criterion: ">= \(saturationCKA)", paper: "0.985-0.99"))
                }
                if let a1 = x.accuracy(b, p, depth: d1), let a2 = x.accuracy(b, p, depth: d2) {
                    let gain = Estimate.combine([a2, a1]) { $0[0] - $0[1] }
                    f.checks.append(check("probe gain depth \(d1) -> \(d2) of \(b.run) (\(b.regime)) [\(p)]", kind: "probe gain over the last block", gain, .atMost(saturationGain),
                                          criterion: "<= \(saturationGain)", paper: "~0 (sometimes negative)"))
                }
            }
        }
        if f.checks.isEmpty {
            f.notes.append(x.runs.contains { $0.isBlockwise } ? "no blockwise run with at least 2 blocks and CKA/probe records at its last two block boundaries" : "no blockwise run")
        }
        f.decide()
        return f
    }

    // MARK: - Finding 4

    static func tokenShift(_ x: RecordIndex) -> Finding {
        var f = Finding(
            id: 4, title: "Token-level shifts where pooled metrics agree",
            paper: "within-clip patch similarity (Tiny) BW ~0.24 vs E2E ~0.17-0.21 in blocks 1-3; ~0.67 vs ~0.53 at block 4, while final-block probe accuracies agree",
            criterion: "for every probe set with both regimes and every blockwise run: max over its block boundaries of |patch_sim_BW - mean patch_sim_E2E| >= \(patchDifference), while the final-block probe accuracy gap acc_BW - mean acc_E2E lies within +-\(probeGapTolerance) (finding 1's tolerance). Decided on 95% bootstrap intervals paired over the same clips (the maximum is taken within each resample): reproduced when every interval lies on the paper's side, not reproduced when any lies wholly on the other side, inconclusive otherwise.")
        for p in x.probeSets {
            let e2e = x.runs.filter { $0.isEndToEnd }
            guard !e2e.isEmpty else { continue }
            for b in x.runs where b.isBlockwise {
                var diffs: [(depth: Int, diff: Estimate)] = []
                for d in b.blockEnds {
                    guard let s = x.value(.patchSimilarity, b, p, depth: d) else { continue }
                    let ref = e2e.compactMap { x.value(.patchSimilarity, $0, p, depth: d) }
                    guard !ref.isEmpty else { continue }
                    diffs.append((d, Estimate.combine([s] + ref) { $0[0] - mean(Array($0.dropFirst())) }))
                }
                guard !diffs.isEmpty else { continue }
                let best = diffs.max { abs($0.diff.point) < abs($1.diff.point) }!
                let largest = Estimate.combine(diffs.map(\.diff)) { $0.map(abs).max()! }
                f.checks.append(check("largest |patch-similarity difference| \(b.run) (\(b.regime)) - e2e over block boundaries (point at depth \(best.depth)) [\(p)]", kind: "largest |patch similarity BW - E2E|",
                                      largest, .atLeast(patchDifference), criterion: ">= \(patchDifference)",
                                      paper: "0.03-0.07 (blocks 1-3), 0.14 (block 4)"))
                let e2eAcc = e2e.compactMap { x.finalAccuracy($0, p) }
                if let acc = x.finalAccuracy(b, p), !e2eAcc.isEmpty {
                    let gap = Estimate.combine([acc] + e2eAcc) { $0[0] - mean(Array($0.dropFirst())) }
                    f.checks.append(check("final-block probe gap \(b.run) (\(b.regime)) vs e2e [\(p)] (pooled metrics agree)", kind: "probe gap BW - E2E (pooled metrics agree)", gap,
                                          .within(probeGapTolerance), criterion: "|gap| <= \(probeGapTolerance)", paper: "<= 0.02-0.04"))
                }
            }
        }
        if f.checks.isEmpty {
            f.notes.append(x.missingRegimeReason(probeSets: x.probeSets))
        }
        f.decide()
        return f
    }

    static func mean(_ xs: [Double]) -> Double { xs.reduce(0, +) / Double(max(1, xs.count)) }
    static func fmt(_ v: Double) -> String { String(format: "%.3f", v) }
}

/// Latest-step records indexed for the findings.
struct RecordIndex {
    struct Key: Hashable {
        var metric: String, run: String, probeSet: String, depth: Int?, depthB: Int?, target: String?
    }
    var runs: [RunInfo]
    var probeSets: [String]
    var values: [Key: Estimate] = [:]
    var targetsByMetric: [String: [String: Set<String>]] = [:]  // metric -> probe set -> targets

    init(records: [MetricRecord], runs: [RunInfo]) {
        self.runs = runs.sorted { $0.run < $1.run }
        let latest = Dictionary(runs.map { ($0.run, $0.latestStep) }, uniquingKeysWith: max)
        var sets = Set<String>()
        for r in records where latest[r.run] == r.step && r.head == nil {
            if r.runB != nil && r.runB != r.run { continue }
            sets.insert(r.probeSet)
            if let t = r.target { targetsByMetric[r.metric, default: [:]][r.probeSet, default: []].insert(t) }
            guard let v = r.value else { continue }
            values[Key(metric: r.metric, run: r.run, probeSet: r.probeSet, depth: r.depth, depthB: r.depthB, target: r.target)] =
                Estimate(point: v, replicates: r.replicates?.values, clipSet: r.replicates?.clipSet)
        }
        probeSets = sets.sorted()
    }

    func value(_ metric: Metric, _ run: RunInfo, _ p: String, depth: Int, target: String? = nil) -> Estimate? {
        values[Key(metric: metric.name, run: run.run, probeSet: p, depth: depth, depthB: nil, target: target)]
    }

    func accuracy(_ run: RunInfo, _ p: String, depth: Int) -> Estimate? {
        value(.probeAccuracyMeanOverTargets, run, p, depth: depth)
    }

    func finalAccuracy(_ run: RunInfo, _ p: String) -> Estimate? {
        guard let d = run.blockEnds.last else { return nil }
        return accuracy(run, p, depth: d)
    }

    /// Mean over targets of retrieval mAP at the final block (the run's last block end) at the latest
    /// step; nil when any target retrieved in the probe set (by any run) is undefined or missing for
    /// this run. findings.json and the page's final-block table both use this value.
    func finalMAP(_ run: RunInfo, _ p: String) -> Estimate? {
        guard let d = run.blockEnds.last, let targets = targetsByMetric[Metric.retrievalMAP.name]?[p], !targets.isEmpty else { return nil }
        var vs: [Estimate] = []
        for t in targets.sorted() {
            guard let v = value(.retrievalMAP, run, p, depth: d, target: t) else { return nil }
            vs.append(v)
        }
        return Estimate.combine(vs) { Findings.mean($0) }
    }

    func cka(_ run: RunInfo, _ p: String, _ a: Int, _ b: Int) -> Estimate? {
        values[Key(metric: Metric.ckaLinearBiased.name, run: run.run, probeSet: p, depth: a, depthB: b, target: nil)]
            ?? values[Key(metric: Metric.ckaLinearBiased.name, run: run.run, probeSet: p, depth: b, depthB: a, target: nil)]
    }

    func missingRegimeReason(probeSets: [String]) -> String {
        let hasE2E = runs.contains { $0.isEndToEnd }, hasBW = runs.contains { $0.isBlockwise }
        switch (hasE2E, hasBW) {
        case (false, false): return "no e2e run and no blockwise run"
        case (false, true): return "no e2e run"
        case (true, false): return "no blockwise run"
        case (true, true): return "no probe set (of \(probeSets.joined(separator: ", "))) with probe/patch records of both an e2e and a blockwise run at their latest steps"
        }
    }
}

/// A compared quantity: its point value and, where known, its bootstrap replicates.
struct Estimate {
    var point: Double
    /// One value per resample (nil where undefined); nil when the quantity has no interval.
    var replicates: [Double?]?
    /// Which clips were resampled (`MetricRecord.Replicates.clipSet`).
    var clipSet: String?

    /// f applied to the points, and to each resample's values when every input has replicates over the
    /// same clips (so the same resampled clips: the comparison is paired); otherwise no replicates.
    static func combine(_ xs: [Estimate], _ f: ([Double]) -> Double) -> Estimate {
        let point = f(xs.map(\.point))
        guard let first = xs.first, let clipSet = first.clipSet, let count = first.replicates?.count,
              xs.allSatisfy({ $0.clipSet == clipSet && $0.replicates?.count == count }) else {
            return Estimate(point: point, replicates: nil, clipSet: nil)
        }
        let reps = (0..<count).map { r -> Double? in
            var vs: [Double] = []
            for x in xs {
                guard let v = x.replicates![r] else { return nil }
                vs.append(v)
            }
            return f(vs)
        }
        return Estimate(point: point, replicates: reps, clipSet: clipSet)
    }

    /// The percentile interval of the replicates; nil without replicates or when one is undefined.
    func interval(level: Double) -> (low: Double, high: Double)? {
        guard let replicates else { return nil }
        return Bootstrap(resamples: replicates.count, level: level).interval(replicates)
    }
}
