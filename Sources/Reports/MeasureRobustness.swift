import AnalysisCommands
import Foundation
import RepresentationMetrics

/// The report's "measure robustness" section: whether the findings' CKA checks hold under other
/// similarity measures, and the final-block comparison of blockwise and end-to-end runs under each.
///
/// Finding 3's CKA between the last two block ends (≥ `Findings.saturationCKA`) and finding 0's
/// CKA(depth 0, depth L) (≤ `Findings.baselineCKA`) are re-run with Procrustes angle and mutual k-NN.
/// Their thresholds are the values those measures take on synthetic pairs planted at the CKA thresholds
/// (`SimilarityCalibration`): set from the clips' shape (N, D), never from measured values. The verdict
/// rules are the findings' own; the intervals are over seeds only (these measures have no clip
/// bootstrap). The final-block table is descriptive: no verdict.
public struct MeasureRobustness: Codable, Sendable, Equatable {
    /// The measures the CKA checks are re-run with.
    public static let rerunMeasures: [Metric] = [.procrustesAngle, .mutualKNN]

    /// A measure's threshold matching a CKA threshold on planted pairs of the data's shape.
    public struct Threshold: Codable, Sendable, Equatable {
        public var measure: String
        public var ckaLevel: Double
        public var value: Double
        public var rows: Int
        public var features: Int
    }

    /// A CKA check of a finding re-run under another measure.
    public struct Rerun: Codable, Sendable, Equatable {
        public var finding: Int
        public var measure: String
        /// The check as it reads under `measure` (its criterion uses the calibrated threshold).
        public var check: Finding.Check
        /// The CKA check it re-runs, and that check's verdict in the findings.
        public var ckaCheck: String
        public var ckaVerdict: String?
    }

    /// One measure between a blockwise condition and its end-to-end runs at the final block (descriptive).
    public struct FinalBlock: Codable, Sendable, Equatable {
        public var condition: String
        public var probeSet: String
        public var depth: Int
        public var measure: String
        public var seeds: Int
        public var mean: Double
        public var perSeed: [Double]
    }

    public var measures: [String]
    public var thresholds: [Threshold]
    public var reruns: [Rerun]
    public var finalBlock: [FinalBlock]
    public var notes: [String]

    /// Evaluates the section from the report's records.
    ///
    /// - Parameters:
    ///   - shape: the clips (N) and features (D) of a run's probe-set file, for the calibration.
    ///   - findings: the evaluated findings, whose CKA checks' verdicts are shown beside the re-runs.
    public static func evaluate(records: [MetricRecord], runs: [RunInfo], findings: [Finding],
                                shape: (String, String) -> (rows: Int, features: Int)?) -> MeasureRobustness {
        let x = RecordIndex(records: records, runs: runs)
        var out = MeasureRobustness(measures: MetricFamily.similarity.metrics.map(\.name), thresholds: [], reruns: [], finalBlock: [], notes: [])
        var cache: [String: Result<Double, Error>] = [:]
        func threshold(_ m: Metric, _ level: Double, _ run: RunInfo, _ p: String) -> Double? {
            guard let s = shape(run.run, p) else { return nil }
            let key = "\(m.name) \(level) \(s.rows) \(s.features)"
            if cache[key] == nil {
                cache[key] = Result { try SimilarityCalibration.threshold(m, ckaLevel: level, rows: s.rows, features: s.features) }
                if case .success(let v) = cache[key]! {
                    out.thresholds.append(Threshold(measure: m.name, ckaLevel: level, value: v, rows: s.rows, features: s.features))
                } else if case .failure(let e) = cache[key]! {
                    out.notes.append("no \(m.name) threshold for CKA \(level) at N = \(s.rows), D = \(s.features): \(e)")
                }
            }
            return try? cache[key]!.get()
        }
        func value(_ m: Metric, _ run: RunInfo, _ p: String, _ a: Int, _ b: Int) -> Estimate? {
            x.values[RecordIndex.Key(metric: m.name, run: run.run, probeSet: p, depth: a, depthB: b, target: nil)]
                .map { Estimate(point: $0.point, replicates: nil, clipSet: nil) }
        }
        let verdicts = Dictionary(findings.flatMap { f in f.checks.map { ("\(f.id)\u{0}\($0.name)", $0.verdict) } }, uniquingKeysWith: { a, _ in a })
        func rerun(finding: Int, ckaName: String, _ m: Metric, _ est: Replicated, _ rule: Findings.Rule, _ t: Double, level: Double, paper: String) {
            let op: String
            switch rule {
            case .atMost: op = "<="
            case .atLeast: op = ">="
            default: op = "?"
            }
            let c = Findings.check("\(m.name) \(ckaName.replacingOccurrences(of: "linear CKA ", with: "").replacingOccurrences(of: "CKA ", with: ""))",
                                   kind: "\(m.name) re-run of a CKA check", est, rule,
                                   criterion: "\(op) \(String(format: "%.4f", t)) (the value at CKA = \(level) on planted pairs)", paper: paper)
            out.reruns.append(Rerun(finding: finding, measure: m.name, check: c, ckaCheck: ckaName, ckaVerdict: verdicts["\(finding)\u{0}\(ckaName)"]))
        }
        // Finding 0: CKA(depth 0, depth L) of the e2e runs <= baselineCKA.
        for p in Findings.emergenceProbeSets where x.probeSets.contains(p) {
            for (condition, e2e) in x.conditions where e2e[0].isEndToEnd {
                guard let last = e2e[0].blockEnds.last else { continue }
                for m in rerunMeasures {
                    guard let est = x.replicate([e2e], { value(m, $0[0], p, 0, last) }),
                          let t = threshold(m, Findings.baselineCKA, e2e[0], p) else { continue }
                    // Less similar than at the CKA threshold: a larger angle, a smaller neighbour overlap.
                    rerun(finding: 0, ckaName: "linear CKA depth 0 vs \(last) of \(condition) [\(p)]", m, est,
                          m == .procrustesAngle ? .atLeast(t) : .atMost(t), t, level: Findings.baselineCKA, paper: "representations change with depth")
                }
            }
        }
        // Finding 3: CKA between the last two block ends of blockwise runs >= saturationCKA.
        for (condition, bw) in x.conditions where bw[0].isBlockwise && bw[0].blockEnds.count >= 2 {
            let ends = bw[0].blockEnds
            let d1 = ends[ends.count - 2], d2 = ends[ends.count - 1]
            for p in x.probeSets {
                for m in rerunMeasures {
                    guard let est = x.replicate([bw], { value(m, $0[0], p, d1, d2) }),
                          let t = threshold(m, Findings.saturationCKA, bw[0], p) else { continue }
                    rerun(finding: 3, ckaName: "CKA depth \(d1) -> \(d2) of \(condition) [\(p)]", m, est,
                          m == .procrustesAngle ? .atMost(t) : .atLeast(t), t, level: Findings.saturationCKA, paper: "CKA 0.985-0.99")
                }
            }
        }
        if out.reruns.isEmpty {
            out.notes.append("no similarity records at the checks' depth pairs: the re-runs need bwanalyze report's similarity analysis (not run in quick mode)")
        }
        // Final block, blockwise vs e2e of the same seed: the cross-run records (A = blockwise, B = e2e).
        let runMap = Dictionary(runs.map { ($0.run, $0) }, uniquingKeysWith: { a, _ in a })
        for p in x.probeSets {
            for (condition, bw) in x.conditions where bw[0].isBlockwise {
                let e2e = x.endToEnd(for: bw)
                guard let depth = bw[0].blockEnds.last, !e2e.isEmpty else { continue }
                for m in MetricFamily.similarity.metrics + [.ckaLinearBiased] {
                    var per: [Double] = []
                    for pair in x.lineUp([bw, e2e]) {
                        let a = pair[0].run, b = pair[1].run
                        let hit = records.first { r in
                            r.metric == m.name && r.probeSet == p && r.depth == depth && r.depthB == depth && r.value != nil
                                && runMap[r.run]?.latestStep == r.step && ((r.run == a && r.runB == b) || (m != .pwcca && r.run == b && r.runB == a))
                        }
                        if let v = hit?.value { per.append(v) }
                    }
                    guard !per.isEmpty else { continue }
                    out.finalBlock.append(FinalBlock(condition: condition, probeSet: p, depth: depth, measure: m.name, seeds: per.count,
                                                     mean: Findings.mean(per), perSeed: per))
                }
            }
        }
        out.thresholds.sort { ($0.measure, $0.ckaLevel, $0.rows) < ($1.measure, $1.ckaLevel, $1.rows) }
        return out
    }
}
