import AnalysisCommands
import Foundation
import RepresentationMetrics

/// The report's numbers per condition (regime and K): the runs of one condition are trainings with
/// different seeds, and each value here is their mean with an interval over seeds and clips
/// (`SeedReplicates`), written to `conditions.csv` and drawn in the figures.
public struct ReportConditions: Sendable {
    /// One value per condition, probe set, depth (pair) and target.
    public struct Row: Sendable, Equatable {
        public var metric: String
        public var condition: String
        public var regime: String
        public var blocks: Int
        public var probeSet: String
        public var depth: Int?
        public var depthB: Int?
        public var target: String?
        /// Mean over the seeds that have the value.
        public var mean: Double
        public var ciLow: Double?
        public var ciHigh: Double?
        /// `seeds and clips`, `clips only` (one seed), `seeds only` (no clip replicates) or empty (no interval).
        public var interval: String
        /// (seed, run, value) of every seed, in seed order.
        public var perSeed: [(seed: Int?, run: String, value: Double)]

        public static func == (a: Row, b: Row) -> Bool {
            a.metric == b.metric && a.condition == b.condition && a.probeSet == b.probeSet && a.depth == b.depth && a.depthB == b.depthB
                && a.target == b.target && a.mean == b.mean && a.ciLow == b.ciLow && a.ciHigh == b.ciHigh
                && a.perSeed.map(\.value) == b.perSeed.map(\.value)
        }
    }

    /// The metrics aggregated over seeds: those the findings compare, the spectrum's effective rank and
    /// the similarity measures beyond CKA (the measure-robustness section).
    public static let metrics: [Metric] = [.probeAccuracy, .probeAccuracyMeanOverTargets, .retrievalMAP, .ckaLinearBiased, .patchSimilarity, .effectiveRank]
        + MetricFamily.similarity.metrics

    public var rows: [Row]

    /// Aggregates the records of every run's latest step (within-run records only: cross-run CKA stays per pair).
    public init(table: ReportTable, runs: [RunInfo]) {
        let wanted = Set(ReportConditions.metrics.map(\.name))
        let runMap = Dictionary(runs.map { ($0.run, $0) }, uniquingKeysWith: { a, _ in a })
        let names = RecordIndex.conditionNames(of: runs)
        struct Key: Hashable { var metric: String, condition: String, probeSet: String, depth: Int?, depthB: Int?, target: String? }
        var groups: [Key: [(RunInfo, MetricRecord)]] = [:]
        var order: [Key] = []
        for r in table.records where wanted.contains(r.metric) && r.head == nil && (r.runB == nil || r.runB == r.run) {
            guard let run = runMap[r.run], run.latestStep == r.step, r.value != nil else { continue }
            let k = Key(metric: r.metric, condition: names[run.run] ?? run.condition, probeSet: r.probeSet, depth: r.depth, depthB: r.depthB, target: r.target)
            if groups[k] == nil { order.append(k) }
            groups[k, default: []].append((run, r))
        }
        rows = order.map { k in
            let members = groups[k]!.sorted { ($0.0.seed ?? Int.max, $0.0.run) < ($1.0.seed ?? Int.max, $1.0.run) }
            let points = members.map { $0.1.value! }
            let reps = members.map(\.1.replicates)
            let paired = reps.allSatisfy { $0 != nil && $0?.clipSet == reps[0]?.clipSet && $0?.values.count == reps[0]?.values.count }
            let ci = SeedReplicates.interval(points: points, replicates: paired ? reps.map { $0!.values } : nil, level: Findings.intervalLevel)
            let kind = ci == nil ? "" : ci!.clipsOnly ? "clips only" : paired ? "seeds and clips" : "seeds only"
            let first = members[0].0
            return Row(metric: k.metric, condition: k.condition, regime: first.regime, blocks: first.blockEnds.count, probeSet: k.probeSet,
                       depth: k.depth, depthB: k.depthB, target: k.target, mean: Findings.mean(points), ciLow: ci?.low, ciHigh: ci?.high,
                       interval: kind, perSeed: members.map { ($0.0.seed, $0.0.run, $0.1.value!) })
        }
    }

    public static let columns = ["metric", "condition", "regime", "blocks", "probe_set", "depth", "depth_b", "target", "seeds", "mean",
                                 "ci_low", "ci_high", "interval", "per_seed"]

    /// What each column of conditions.csv means.
    public static let columnDocs: [(name: String, meaning: String)] = [
        ("metric", "metric name, as in metrics.csv"),
        ("condition", "regime and block count, e.g. `simultaneous K=4`: the runs of one condition are trainings with different seeds"),
        ("regime", "e2e, simultaneous, sequential or external"),
        ("blocks", "K, the number of blocks (e2e runs record the partition they are compared under)"),
        ("probe_set", "probe set"),
        ("depth", "depth (first depth of a CKA pair)"),
        ("depth_b", "second depth of a CKA pair within a run"),
        ("target", "label target (probes, retrieval); empty for the mean over targets and other metrics"),
        ("seeds", "S, the runs (seeds) averaged"),
        ("mean", "mean over the S runs of their values at their latest step"),
        ("ci_low", "lower end of the 95% interval over seeds and clips: mean - t(S-1) x sqrt(s^2/S + shared clip variance), docs/report.md; with one seed the clip bootstrap's percentile interval"),
        ("ci_high", "upper end of that interval"),
        ("interval", "what the interval covers: `seeds and clips`, `seeds only` (no clip bootstrap, e.g. effective rank), `clips only` (one seed)"),
        ("per_seed", "each run's value, `seed:value` separated by `;`, in seed order"),
    ]

    /// The conditions.csv section of COLUMNS.md.
    public static var columnsMarkdown: String {
        var s = "\n# conditions.csv columns\n\nOne row per condition (regime and K), probe set, depth and target: the mean over the condition's runs (seeds) of a value of metrics.csv, with its interval over seeds and clips.\n\n| column | meaning |\n| --- | --- |\n"
        for c in columnDocs { s += "| `\(c.name)` | \(c.meaning) |\n" }
        return s
    }

    public var csv: String {
        CSV.document(header: ReportConditions.columns, rows: rows.map { r in
            [r.metric, r.condition, r.regime, "\(r.blocks)", r.probeSet, r.depth.map(String.init) ?? "", r.depthB.map(String.init) ?? "",
             r.target ?? "", "\(r.perSeed.count)", CSV.number(r.mean), r.ciLow.map(CSV.number) ?? "", r.ciHigh.map(CSV.number) ?? "", r.interval,
             r.perSeed.map { "\($0.seed.map(String.init) ?? $0.run):\(CSV.number($0.value))" }.joined(separator: ";")]
        })
    }
}
