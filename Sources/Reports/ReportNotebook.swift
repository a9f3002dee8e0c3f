import Foundation

/// A Jupyter notebook (nbformat 4.5) for a report: markdown explaining each finding and figure,
/// code cells that reload the report's files with pandas, and their outputs embedded so the
/// notebook renders without running.
public struct ReportNotebook {
    public var title: String
    /// Path of the report directory relative to the notebook's directory (e.g. `.` or `../report`).
    public var reportPath: String
    public var findings: [Finding]
    public var robustness: MeasureRobustness?
    public var figures: [ReportFigure]
    public var recordCount: Int
    public var runCount: Int

    public init(title: String, reportPath: String, findings: [Finding], robustness: MeasureRobustness? = nil, figures: [ReportFigure],
                recordCount: Int, runCount: Int) {
        self.title = title
        self.reportPath = reportPath
        self.findings = findings
        self.robustness = robustness
        self.figures = figures
        self.recordCount = recordCount
        self.runCount = runCount
    }

    /// The notebook as JSON text.
    public func render() throws -> String {
        var cells: [Notebook.Cell] = []
        var executionCount = 0
        func lines(_ text: String) -> [String] {
            let parts = text.components(separatedBy: "\n")
            return parts.enumerated().map { $0.offset < parts.count - 1 ? $0.element + "\n" : $0.element }.filter { !$0.isEmpty }
        }
        func markdown(_ text: String) {
            cells.append(.init(cellType: "markdown", id: String(format: "cell-%03d", cells.count + 1), source: lines(text)))
        }
        func code(_ text: String, outputs: [Notebook.Output]) {
            executionCount += 1
            let outs = outputs.map { o -> Notebook.Output in
                var o = o
                if o.outputType == "execute_result" { o.executionCount = executionCount }
                return o
            }
            cells.append(.init(cellType: "code", id: String(format: "cell-%03d", cells.count + 1), executionCount: executionCount,
                               source: lines(text), outputs: outs))
        }
        let pyPath = reportPath.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        markdown("# \(title)\n\nThis notebook reloads the report written by `bwanalyze report` (tidy `metrics.csv`, `findings.json`, SVG figures) with pandas. Outputs are embedded, so it reads without running; re-run it to recompute the tables from the files. Paths are relative to this notebook's directory (Jupyter's working directory).")
        code("""
        import json, os
        import pandas as pd
        from IPython.display import SVG, display

        REPORT = "\(pyPath)"  # the report directory, relative to this notebook
        metrics = pd.read_csv(os.path.join(REPORT, "metrics.csv"))
        print(f"{len(metrics)} records from {metrics['run'].nunique()} runs")
        """, outputs: [.init(outputType: "stream", name: "stdout", text: ["\(recordCount) records from \(runCount) runs\n"])])
        markdown("## Findings\n\nFinding 0 asks whether the end-to-end baseline develops depth-wise structure (findings 1-4 rest on it); each of the paper's four findings is evaluated on the records at each run's latest step, by the criterion given in `findings.json` (`criterion`), with every measured comparison under `checks` beside the paper's value: its point (the mean over the `seeds` trainings of its condition, each seed's value under `per_seed`), its 95% interval `ci_low`/`ci_high` over seeds and clips (`interval` says what it covers; docs/report.md in the repository gives the method) and its own verdict. `conditions.csv` holds the seed means of every probe, retrieval, CKA and patch-similarity value with the same intervals. `verdict` is decided on the intervals: `reproduced` when every check's interval lies on the paper's side of its threshold, `not reproduced` when any lies wholly on the other side, `inconclusive` otherwise, `not evaluated` when the runs a finding needs are missing; `reasons` says which checks decided it.\n\n"
                 + findings.map { "- **\($0.id). \($0.title)**: \($0.verdict). Paper: \($0.paper). Criterion: \($0.criterion)" }.joined(separator: "\n"))
        code("""
        with open(os.path.join(REPORT, "findings.json")) as f:
            findings = json.load(f)
        pd.DataFrame([{"#": f["id"], "finding": f["title"], "verdict": f["verdict"],
                       "checks": len(f["checks"]), "reasons": "; ".join(f["reasons"])} for f in findings])
        """, outputs: [.init(outputType: "execute_result", metadata: [:],
                             data: ["text/html": lines(ReportHTML.findingsTable(findings)), "text/plain": lines(ReportHTML.findingsText(findings))])])
        if let r = robustness, !r.reruns.isEmpty {
            markdown("## Measure robustness\n\nFinding 3's CKA between the last two block ends and finding 0's CKA between depth 0 and the last depth, re-run with the Procrustes angle and mutual k-NN alignment (`measure_robustness.json`). Each threshold is the value the measure takes on synthetic pairs planted at the CKA threshold, with the clips' N and D (" + r.thresholds.map { "\($0.measure) \(String(format: "%.4f", $0.value)) at CKA \(String(format: "%.2f", $0.ckaLevel))" }.joined(separator: ", ") + "); intervals over seeds only. These re-runs do not change any finding's verdict.")
            let rows = ReportHTML.robustnessRows(r)
            let text = ([ReportHTML.robustnessHeader] + rows).map { $0.joined(separator: " | ") }.joined(separator: "\n") + "\n"
            code("""
            with open(os.path.join(REPORT, "measure_robustness.json")) as f:
                robustness = json.load(f)
            pd.DataFrame([{"finding": r["finding"], "check": r["check"]["name"], "criterion": r["check"]["criterion"],
                           "measured": r["check"]["measured"], "ci_low": r["check"].get("ci_low"), "ci_high": r["check"].get("ci_high"),
                           "verdict": r["check"]["verdict"], "CKA check's verdict": r.get("cka_verdict")} for r in robustness["reruns"]])
            """, outputs: [.init(outputType: "execute_result", metadata: [:],
                                 data: ["text/html": lines(ReportHTML.htmlTable(ReportHTML.robustnessHeader, rows)), "text/plain": lines(text)])])
        }
        for fig in figures {
            markdown("### \(fig.title)\n\n\(fig.caption)")
            var svg = fig.svg
            if svg.hasPrefix("<?xml"), let end = svg.range(of: "?>\n") { svg = String(svg[end.upperBound...]) }
            code("display(SVG(filename=os.path.join(REPORT, \"\(fig.file)\")))",
                 outputs: [.init(outputType: "display_data", metadata: [:],
                                 data: ["image/svg+xml": lines(svg), "text/plain": ["<IPython.core.display.SVG object>"]])])
        }
        let notebook = Notebook(cells: cells)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(notebook), as: UTF8.self) + "\n"
    }

    /// The path of `target` relative to the directory `base` (both made absolute and standardised).
    public static func relativePath(from base: String, to target: String) -> String {
        func parts(_ p: String) -> [String] {
            URL(fileURLWithPath: p).standardizedFileURL.path.split(separator: "/").map(String.init)
        }
        let b = parts(base), t = parts(target)
        var common = 0
        while common < min(b.count, t.count) && b[common] == t[common] { common += 1 }
        let rel = Array(repeating: "..", count: b.count - common) + t[common...]
        return rel.isEmpty ? "." : rel.joined(separator: "/")
    }
}

/// The nbformat 4.5 document `ReportNotebook` writes: the fields it uses, in nbformat's names.
struct Notebook: Encodable {
    var cells: [Cell]
    var metadata = Metadata()
    var nbformat = 4
    var nbformatMinor = 5

    enum CodingKeys: String, CodingKey {
        case cells, metadata, nbformat
        case nbformatMinor = "nbformat_minor"
    }

    struct Metadata: Encodable {
        var kernelspec = ["name": "python3", "display_name": "Python 3", "language": "python"]
        var languageInfo = ["name": "python"]

        enum CodingKeys: String, CodingKey {
            case kernelspec
            case languageInfo = "language_info"
        }
    }

    /// A markdown cell (no execution count, no outputs) or a code cell.
    struct Cell: Encodable {
        var cellType: String
        var id: String
        var metadata: [String: String] = [:]
        var executionCount: Int? = nil
        var source: [String]
        var outputs: [Output]? = nil

        enum CodingKeys: String, CodingKey {
            case cellType = "cell_type", id, metadata, executionCount = "execution_count", source, outputs
        }
    }

    /// A code cell's output: a stream (`name`, `text`), or a rich result (`data` by MIME type, `metadata`).
    struct Output: Encodable {
        var outputType: String
        var name: String? = nil
        var text: [String]? = nil
        var metadata: [String: String]? = nil
        var data: [String: [String]]? = nil
        var executionCount: Int? = nil

        enum CodingKeys: String, CodingKey {
            case outputType = "output_type", name, text, metadata, data, executionCount = "execution_count"
        }
    }
}
