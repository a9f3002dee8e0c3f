import Foundation

/// A Jupyter notebook (nbformat 4.5) for a report: markdown explaining each finding and figure,
/// code cells that reload the report's files with pandas, and their outputs embedded so the
/// notebook renders without running.
public struct ReportNotebook {
    public var title: String
    /// Path of the report directory relative to the notebook's directory (e.g. `.` or `../report`).
    public var reportPath: String
    public var findings: [Finding]
    public var figures: [ReportFigure]
    public var recordCount: Int
    public var runCount: Int

    public init(title: String, reportPath: String, findings: [Finding], figures: [ReportFigure], recordCount: Int, runCount: Int) {
        self.title = title
        self.reportPath = reportPath
        self.findings = findings
        self.figures = figures
        self.recordCount = recordCount
        self.runCount = runCount
    }

    /// The notebook as JSON text.
    public func render() throws -> String {
        var cells: [[String: Any]] = []
        var executionCount = 0
        func lines(_ text: String) -> [String] {
            let parts = text.components(separatedBy: "\n")
            return parts.enumerated().map { $0.offset < parts.count - 1 ? $0.element + "\n" : $0.element }.filter { !$0.isEmpty }
        }
        func markdown(_ text: String) {
            cells.append(["cell_type": "markdown", "id": String(format: "cell-%03d", cells.count + 1), "metadata": [String: Any](),
                          "source": lines(text)])
        }
        func code(_ text: String, outputs: [[String: Any]]) {
            executionCount += 1
            let outs = outputs.map { o -> [String: Any] in
                var o = o
                if o["output_type"] as? String == "execute_result" { o["execution_count"] = executionCount }
                return o
            }
            cells.append(["cell_type": "code", "id": String(format: "cell-%03d", cells.count + 1), "metadata": [String: Any](),
                          "execution_count": executionCount, "source": lines(text), "outputs": outs])
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
        """, outputs: [["output_type": "stream", "name": "stdout", "text": ["\(recordCount) records from \(runCount) runs\n"]]])
        markdown("## Findings\n\nEach of the paper's four findings is evaluated on the records at each run's latest step, by the criterion given in `findings.json` (`criterion`), with every measured comparison under `checks` (point value, 95% bootstrap interval `ci_low`/`ci_high`, its own verdict) beside the paper's value. `verdict` is decided on the intervals: `reproduced` when every check's interval lies on the paper's side of its threshold, `not reproduced` when any lies wholly on the other side, `inconclusive` otherwise, `not evaluated` when the runs a finding needs are missing; `reasons` says which checks decided it.\n\n"
                 + findings.map { "- **\($0.id). \($0.title)**: \($0.verdict). Paper: \($0.paper). Criterion: \($0.criterion)" }.joined(separator: "\n"))
        code("""
        with open(os.path.join(REPORT, "findings.json")) as f:
            findings = json.load(f)
        pd.DataFrame([{"#": f["id"], "finding": f["title"], "verdict": f["verdict"],
                       "checks": len(f["checks"]), "reasons": "; ".join(f["reasons"])} for f in findings])
        """, outputs: [["output_type": "execute_result", "metadata": [String: Any](),
                        "data": ["text/html": lines(ReportHTML.findingsTable(findings)), "text/plain": lines(ReportHTML.findingsText(findings))]]])
        for fig in figures {
            markdown("### \(fig.title)\n\n\(fig.caption)")
            var svg = fig.svg
            if svg.hasPrefix("<?xml"), let end = svg.range(of: "?>\n") { svg = String(svg[end.upperBound...]) }
            code("display(SVG(filename=os.path.join(REPORT, \"\(fig.file)\")))",
                 outputs: [["output_type": "display_data", "metadata": [String: Any](),
                            "data": ["image/svg+xml": lines(svg), "text/plain": ["<IPython.core.display.SVG object>"]]]])
        }
        let notebook: [String: Any] = [
            "nbformat": 4, "nbformat_minor": 5,
            "metadata": ["kernelspec": ["name": "python3", "display_name": "Python 3", "language": "python"],
                         "language_info": ["name": "python"]],
            "cells": cells,
        ]
        let data = try JSONSerialization.data(withJSONObject: notebook, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
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
