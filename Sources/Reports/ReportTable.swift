import AnalysisCommands
import Foundation
import RepresentationMetrics

/// All records of a report, deduplicated, with the `block_depth` flag, as tidy CSV.
public struct ReportTable: Sendable {
    public var records: [MetricRecord]
    public var runs: [String: RunInfo]

    /// `MetricReport.csvColumns` plus `block_depth`, then the bootstrap interval `ci_low`, `ci_high`.
    public static let columns = MetricReport.csvColumns + ["block_depth", "ci_low", "ci_high"]

    /// What each CSV column means (written to COLUMNS.md and the HTML page).
    public static let columnDocs: [(name: String, meaning: String)] = [
        ("metric", "metric name (conventions in summary.json under `conventions`), e.g. \(Metric.probeAccuracy.name), \(Metric.ckaLinearBiased.name), \(Metric.patchSimilarity.name)"),
        ("run", "run name (root attribute `run`)"),
        ("file", "activation file the value was computed from (the first file for two-file metrics)"),
        ("probe_set", "probe set of the clips (root attribute `probe_set`)"),
        ("step", "training step of the weights (root attribute `step`)"),
        ("depth", "depth: 0 = embedding, l = output of layer l; for pairwise metrics the first depth; empty when not per depth"),
        ("run_b", "second run of a pairwise metric (CKA, token shift); equal to `run` within one run"),
        ("depth_b", "second depth of a pairwise metric"),
        ("target", "label target (probes, retrieval, OccDrop); empty otherwise"),
        ("head", "attention head (attention metrics); empty otherwise"),
        ("value", "the value; empty when undefined"),
        ("std", "spread where the metric has one (population std over CV folds for probes); empty otherwise"),
        ("undefined", "why the value is missing (zero variance, too few clips, NaN, ...); empty when defined"),
        ("block_depth", "true when `depth` (and `depth_b`, if any) is a block depth of the run: the embedding (0) or the last layer of a block (root attribute `block_ends`); false otherwise; empty without a depth"),
        ("ci_low", "lower end of the 95% percentile bootstrap interval over clips (probe accuracies incl. shuffled-label chance, retrieval mAP, linear CKA, patch similarity at each run's latest step; method in summary.json under `bootstrap`); empty when not computed"),
        ("ci_high", "upper end of that interval; empty when not computed"),
    ]

    /// Merges records, keeping the first of identical keys (e.g. a consecutive CKA pair also in the all-pairs matrix).
    public init(records: [MetricRecord], runs: [RunInfo]) {
        var seen = Set<String>()
        var kept: [MetricRecord] = []
        for r in records where seen.insert(r.key).inserted { kept.append(r) }
        self.records = kept
        self.runs = Dictionary(runs.map { ($0.run, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Whether a record's depth(s) are block depths of its run(s); nil without a depth.
    public func isBlockDepth(_ r: MetricRecord) -> Bool? {
        guard let d = r.depth, let run = runs[r.run] else { return nil }
        var ok = run.blockDepths.contains(d)
        if let db = r.depthB {
            let other = runs[r.runB ?? r.run] ?? run
            ok = ok && other.blockDepths.contains(db)
        }
        return ok
    }

    /// metrics.csv: `columns`, one row per record.
    public var csv: String {
        CSV.document(header: ReportTable.columns, rows: records.map { r in
            r.identity + r.valueFields + [isBlockDepth(r).map { $0 ? "true" : "false" } ?? "",
                                          r.ciLow.map(CSV.number) ?? "", r.ciHigh.map(CSV.number) ?? ""]
        })
    }

    /// COLUMNS.md: the meaning of every CSV column.
    public var columnsMarkdown: String {
        var s = "# metrics.csv columns\n\nOne row per measured value (tidy). Undefined values have an empty `value` and a reason in `undefined`.\n\n| column | meaning |\n| --- | --- |\n"
        for c in ReportTable.columnDocs { s += "| `\(c.name)` | \(c.meaning) |\n" }
        return s
    }
}
