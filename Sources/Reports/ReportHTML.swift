import AnalysisCommands
import Foundation
import RepresentationMetrics

/// The self-contained `index.html` of a report, and HTML/text tables shared with the notebook.
public enum ReportHTML {
    static func esc(_ s: String) -> String { SVGCanvas.escape(s) }

    static func fmt(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "n/a" }

    static func cssClass(_ verdict: String) -> String {
        switch verdict {
        case Finding.reproducedVerdict: return "pass"
        case Finding.notReproducedVerdict: return "fail"
        case Finding.inconclusiveVerdict: return "unsure"
        default: return "na"
        }
    }

    static func signed(_ v: Double) -> String { String(format: "%+.3f", v) }

    /// The key numbers of a finding: per kind of check, the range of the point values, the range the
    /// 95% intervals span, and how many checks were decided each way.
    public static func keyNumbers(_ f: Finding) -> [String] {
        var kinds: [String] = []
        for c in f.checks where !kinds.contains(c.kind) { kinds.append(c.kind) }
        return kinds.map { kind in
            let cs = f.checks.filter { $0.kind == kind }
            let points = cs.map(\.measured)
            var s = "\(kind) (\(cs[0].criterion)): "
            s += cs.count == 1 ? signed(points[0]) : "\(signed(points.min()!)) to \(signed(points.max()!))"
            let los = cs.compactMap(\.ciLow), his = cs.compactMap(\.ciHigh)
            if los.count == cs.count, his.count == cs.count {
                s += cs.count == 1 ? ", 95% CI [\(signed(los[0])), \(signed(his[0]))]"
                    : ", 95% CIs within [\(signed(los.min()!)), \(signed(his.max()!))]"
            } else {
                s += " (\(cs.count - min(los.count, his.count)) without interval)"
            }
            let counts = [Finding.reproducedVerdict, Finding.notReproducedVerdict, Finding.inconclusiveVerdict].compactMap { v -> String? in
                let n = cs.filter { $0.verdict == v }.count
                return n == 0 ? nil : "\(n) \(v)"
            }
            return s + "; " + counts.joined(separator: ", ")
        }
    }

    /// The findings at a glance: one row per finding with its verdict, key numbers with their 95%
    /// intervals, and the paper's values; each finding's checks, criterion and reasons fold away below.
    public static func findingsTable(_ findings: [Finding]) -> String {
        var s = "<table class=\"findings\">\n<thead><tr><th>#</th><th>finding</th><th>verdict</th><th>measured (seed mean, 95% interval over seeds and clips)</th><th>paper</th></tr></thead>\n<tbody>\n"
        for f in findings {
            let key = keyNumbers(f).map { "<li>\(esc($0))</li>" }.joined()
            let notes = f.checks.isEmpty ? f.notes.map { "<li class=\"note\">\(esc($0))</li>" }.joined() : ""
            s += "<tr><td>\(f.id)</td><td><b>\(esc(f.title))</b></td><td class=\"verdict \(cssClass(f.verdict))\">\(esc(f.verdict))</td><td><ul>\(key)\(notes)</ul></td><td><small>\(esc(f.paper))</small></td></tr>\n"
        }
        s += "</tbody>\n</table>\n"
        for f in findings {
            s += "<details>\n<summary>Finding \(f.id) in detail: \(esc(f.title)) &mdash; <span class=\"\(cssClass(f.verdict))\">\(esc(f.verdict))</span></summary>\n"
            s += "<p><small><b>Criterion.</b> \(esc(f.criterion))</small></p>\n"
            if !f.reasons.isEmpty { s += "<p><b>Why:</b></p>\n<ul>" + f.reasons.map { "<li>\(esc($0))</li>" }.joined() + "</ul>\n" }
            if !f.checks.isEmpty {
                s += "<table>\n<thead><tr><th>check</th><th>point (seed mean)</th><th>95% interval</th><th>S</th><th>per seed</th><th>criterion</th><th>paper</th><th>verdict</th></tr></thead>\n<tbody>\n"
                for c in f.checks {
                    let ci = c.ciLow.flatMap { lo in c.ciHigh.map { String(format: "[%.4f, %.4f]", lo, $0) } } ?? "n/a"
                    let per = (c.perSeed ?? []).map { "\($0.seed): \(String(format: "%.4f", $0.value))" }.joined(separator: "; ")
                    let name = esc(c.name) + (c.detail.map { "<br/><small>\(esc($0))</small>" } ?? "")
                    let covers = c.interval.map { "<br/><small>\(esc($0))</small>" } ?? ""
                    s += "<tr><td>\(name)</td><td>\(String(format: "%.4f", c.measured))</td><td>\(ci)\(covers)</td><td>\(c.seeds.map(String.init) ?? "")</td><td><small>\(esc(per))</small></td><td>\(esc(c.criterion))</td><td>\(esc(c.paper))</td><td class=\"\(cssClass(c.verdict))\">\(esc(c.verdict))</td></tr>\n"
                }
                s += "</tbody>\n</table>\n"
            }
            if !f.notes.isEmpty { s += "<ul>" + f.notes.map { "<li class=\"note\">\(esc($0))</li>" }.joined() + "</ul>\n" }
            s += "</details>\n"
        }
        return s
    }

    /// The findings as plain text (one line per finding, then its checks with their intervals).
    public static func findingsText(_ findings: [Finding]) -> String {
        findings.map { f in
            "\(f.id)  \(f.title): \(f.verdict)" + (f.notes.isEmpty ? "" : " (\(f.notes.joined(separator: "; ")))")
                + f.checks.map { "\n     \($0.name): \($0.measuredText)\($0.seeds.map { " S=\($0)" } ?? "") \($0.criterion) -> \($0.verdict)" }.joined()
        }.joined(separator: "\n") + "\n"
    }

    /// The figure the page leads with: probe accuracy vs depth on double gratings (or the first probe-accuracy figure).
    static func headline(_ figures: [ReportFigure]) -> ReportFigure? {
        figures.first { $0.file == ReportFigures.headlineFile }
            ?? figures.first { $0.file == ReportFigures.probeAccuracyFile("double-gratings") }
            ?? figures.first { $0.file.hasPrefix(ReportFigures.probeAccuracyFile("").dropLast(".svg".count)) && !$0.file.contains("_steps") }
    }

    /// A compact table: per run and probe set at the latest step, final-block probe accuracy, mAP (the
    /// findings' value, `RecordIndex.finalMAP`), effective rank, patch similarity.
    public static func finalBlockRows(_ table: ReportTable, runs: [RunInfo]) -> [[String]] {
        let index = RecordIndex(records: table.records, runs: runs)
        var rows: [[String]] = []
        for r in runs {
            guard let last = r.blockEnds.last else { continue }
            for p in r.probeSets {
                let recs = table.records.filter { $0.run == r.run && $0.probeSet == p && $0.step == r.latestStep && $0.depth == last && $0.depthB == nil }
                func v(_ m: Metric) -> Double? { recs.first { $0.metric == m.name }?.value }
                rows.append([r.run, r.regime, p, "\(r.latestStep)", "\(last)", fmt(v(.probeAccuracyMeanOverTargets)), fmt(index.finalMAP(r, p)?.point),
                             fmt(v(.effectiveRank)), fmt(v(.patchSimilarity))])
            }
        }
        return rows
    }

    public static let finalBlockHeader = ["run", "regime", "probe set", "step", "final block depth", "probe accuracy", "retrieval mAP", "effective rank", "patch similarity"]

    static func htmlTable(_ header: [String], _ rows: [[String]]) -> String {
        var s = "<table>\n<thead><tr>" + header.map { "<th>\(esc($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for r in rows { s += "<tr>" + r.map { "<td>\(esc($0))</td>" }.joined() + "</tr>\n" }
        return s + "</tbody>\n</table>\n"
    }

    /// The whole page. Figures are referenced as `<img src="figures/…">` (they are written beside it).
    /// The rows of the re-run checks (finding, check, measure, criterion, measured, verdict, CKA's verdict).
    public static func robustnessRows(_ r: MeasureRobustness) -> [[String]] {
        r.reruns.map { [String($0.finding), $0.check.name, $0.check.criterion, $0.check.measuredText + ($0.check.interval.map { " (\($0))" } ?? ""),
                        $0.check.verdict, $0.ckaVerdict ?? "n/a"] }
    }

    public static let robustnessHeader = ["finding", "check", "criterion", "measured [95% interval]", "verdict", "CKA check's verdict"]

    /// The final-block table: one row per condition and probe set, one column per measure (seed means).
    public static func finalBlockSimilarity(_ r: MeasureRobustness) -> (header: [String], rows: [[String]]) {
        let measures = r.measures + [Metric.ckaLinearBiased.name]
        var keys: [String] = []
        var cells: [String: [String: MeasureRobustness.FinalBlock]] = [:]
        for f in r.finalBlock {
            let key = "\(f.condition)\u{0}\(f.probeSet)\u{0}\(f.depth)"
            if cells[key] == nil { keys.append(key) }
            cells[key, default: [:]][f.measure] = f
        }
        let rows = keys.map { key -> [String] in
            let parts = key.split(separator: "\u{0}").map(String.init)
            return [parts[0] + " vs e2e", parts[1], parts[2]] + measures.map { m in
                cells[key]![m].map { String(format: "%.3f", $0.mean) + ($0.seeds > 1 ? " (\($0.seeds) seeds)" : "") } ?? "n/a"
            }
        }
        return (["comparison", "probe set", "depth"] + measures, rows)
    }

    static func robustnessSection(_ r: MeasureRobustness) -> String {
        var s = "<h2>Measure robustness</h2>\n<p>Whether the findings' CKA checks hold under other similarity measures (docs/metrics.md). Finding 3's CKA between the last two block ends and finding 0's CKA between depth 0 and the last depth are re-run with the Procrustes angle and mutual k-NN alignment. Each measure's threshold is the value it takes on synthetic pairs planted at the CKA threshold (X Gaussian with the clips' N and D, Y = X + noise scaled to the CKA level; mean of 5 pairs), fixed before any data is read. The verdict rules are the findings'; the intervals are over seeds only (these measures have no clip bootstrap). These re-runs do not change any finding's verdict.</p>\n"
        s += htmlTable(["measure", "CKA threshold", "matching value", "N", "D"],
                       r.thresholds.map { [$0.measure, String(format: "%.2f", $0.ckaLevel), String(format: "%.4f", $0.value), "\($0.rows)", "\($0.features)"] })
        if r.reruns.isEmpty {
            s += "<p>No re-runs: \(esc(r.notes.joined(separator: "; ")))</p>\n"
        } else {
            s += htmlTable(robustnessHeader, robustnessRows(r))
        }
        let fb = finalBlockSimilarity(r)
        if !fb.rows.isEmpty {
            s += "<p>Descriptive, no verdict: each measure between a blockwise run and the e2e run of its seed at the final block (A = blockwise for PWCCA's weights), the mean over seeds; procrustes_distance and procrustes_angle are distances (0 = same shape), the others similarities.</p>\n"
            s += htmlTable(fb.header, fb.rows)
        }
        return s
    }

    public static func page(summary: ReportSummary, table: ReportTable, figures: [ReportFigure], notebookLink: String?) -> String {
        var s = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8"/>
        <title>\(esc(summary.title))</title>
        <style>
        body { font-family: Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
        table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
        th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }
        th { background: #f2f2f2; }
        .pass { color: #1a7f37; } .fail { color: #b3261e; } .unsure { color: #9a6700; } .na { color: #777; }
        details { margin: 0.5em 0; } summary { cursor: pointer; }
        .verdict { font-weight: bold; white-space: nowrap; }
        li.note { color: #555; }
        figure { margin: 2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
        figcaption { font-size: 0.9em; color: #444; }
        code { background: #f5f5f5; padding: 0 3px; }
        </style>
        </head>
        <body>
        <h1>\(esc(summary.title))</h1>
        <p>Generated by <code>\(esc(summary.tool)) \(esc(summary.version))</code>\(summary.quick ? " in quick mode (no RBF CKA, no all-pairs CKA matrices)" : "") from \(summary.inputs.count) activation file\(summary.inputs.count == 1 ? "" : "s") of \(summary.runs.count) run\(summary.runs.count == 1 ? "" : "s"); \(summary.records) records (\(summary.undefinedRecords) undefined). Data: <a href="metrics.csv">metrics.csv</a> (columns: <a href="COLUMNS.md">COLUMNS.md</a>), <a href="summary.json">summary.json</a>, <a href="findings.json">findings.json</a>\(notebookLink.map { ", notebook: <a href=\"\(esc($0))\">\(esc($0))</a>" } ?? "").</p>


        """
        if let h = headline(figures) {
            s += "<figure>\n<img src=\"\(esc(h.file))\" alt=\"\(esc(h.title))\"/>\n<figcaption><b>\(esc(h.title)).</b> \(esc(h.caption))</figcaption>\n</figure>\n"
        }
        s += "<h2>Findings</h2>\n<p>Each of the paper's four findings is checked at each run's latest step, after finding 0, which asks whether the end-to-end baseline develops depth-wise structure at all (without it, findings 1-4 compare models that learned little). The runs of one condition (regime and K) are trainings with different seeds: every compared quantity is computed per seed (comparisons between conditions pair runs by seed), its point is the mean over the S seeds, and its 95% interval covers the spread between trainings and the clip sampling: mean &plusmn; t(S&minus;1) &middot; &radic;(s&sup2;/S + the clip variance the trainings share), the latter from a bootstrap over clips paired across runs and depths\(summary.bootstrap.map { " (" + esc($0) + ")" } ?? ""). With one seed per condition the interval is the clip bootstrap's alone, which does not cover the spread between trainings. A finding is <span class=\"pass\">reproduced</span> when every check's interval lies on the paper's side of its threshold, <span class=\"fail\">not reproduced</span> when any interval lies wholly on the other side, and <span class=\"unsure\">inconclusive</span> otherwise. The checks, criteria and reasons of each finding are folded below the table.</p>\n"
        s += findingsTable(summary.findings)
        if let r = summary.measureRobustness { s += robustnessSection(r) }
        s += "<h2>Runs</h2>\n"
        s += htmlTable(["run", "regime", "block ends", "steps", "probe sets", "config SHA-256"],
                       summary.runs.map { [$0.run, $0.regime, $0.blockEnds.map(String.init).joined(separator: ", "),
                                           $0.steps.map(String.init).joined(separator: ", "), $0.probeSets.joined(separator: ", "),
                                           $0.configSHA256.map { String($0.prefix(16)) + "…" }.joined(separator: ", ")] })
        s += "<h2>Final block at the latest step</h2>\n"
        s += htmlTable(finalBlockHeader, finalBlockRows(table, runs: summary.runs))
        if !summary.chance.isEmpty {
            s += "<h2>Chance, measured</h2>\n<p>Probe accuracy with each target's labels shuffled across clips (same probe, same cross-validation), at the last depth, with its 95% bootstrap interval.</p>\n"
            s += htmlTable(["run", "probe set", "depth", "target", "accuracy", "95% interval"],
                           summary.chance.map { c in
                               [c.run, c.probeSet, "\(c.depth)", c.target ?? "mean over targets", c.value.map { String(format: "%.4f", $0) } ?? (c.undefined ?? "n/a"),
                                c.ciLow.flatMap { lo in c.ciHigh.map { String(format: "[%.4f, %.4f]", lo, $0) } } ?? "n/a"]
                           })
        }
        s += "<h2>Figures</h2>\n"
        if figures.isEmpty { s += "<p>No figures: the records support none.</p>\n" }
        for f in figures where f.file != headline(figures)?.file {
            s += "<figure>\n<img src=\"\(esc(f.file))\" alt=\"\(esc(f.title))\"/>\n<figcaption><b>\(esc(f.title)).</b> \(esc(f.caption))</figcaption>\n</figure>\n"
        }
        s += "<h2>Inputs</h2>\n"
        s += htmlTable(["file", "bytes", "SHA-256", "run", "probe set", "step"],
                       summary.inputs.map { [$0.path, "\($0.bytes)", $0.sha256, $0.run, $0.probeSet, "\($0.step)"] })
        s += "<h2>Columns of metrics.csv</h2>\n"
        s += htmlTable(["column", "meaning"], ReportTable.columnDocs.map { [$0.name, $0.meaning] })
        s += "<h2>Columns of conditions.csv</h2>\n<p>The seed means of <a href=\"conditions.csv\">conditions.csv</a>, one row per condition, probe set, depth and target.</p>\n"
        s += htmlTable(["column", "meaning"], ReportConditions.columnDocs.map { [$0.name, $0.meaning] })
        s += "<h2>Metric conventions</h2>\n"
        s += htmlTable(["metric", "convention"], summary.conventions.sorted { $0.key < $1.key }.map { [$0.key, $0.value] })
        if !summary.notes.isEmpty {
            s += "<h2>Notes</h2>\n<ul>\n" + summary.notes.map { "<li>\(esc($0))</li>" }.joined(separator: "\n") + "\n</ul>\n"
        }
        s += "<p><small>Command line: <code>\(esc(summary.commandLine.joined(separator: " ")))</code></small></p>\n</body>\n</html>\n"
        return s
    }
}
