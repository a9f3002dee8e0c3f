import ActivationStore
import Foundation
import Reports
import TestSupport
import RepresentationMetrics
import XCTest

final class ReportCommandTests: XCTestCase {
    /// Splits one CSV line into fields (RFC 4180 quoting).
    func csvFields(_ line: String) -> [String] {
        var fields: [String] = [], cur = "", quoted = false
        var chars = Array(line)[...]
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { cur.append("\""); chars.removeFirst() } else { quoted = false }
                } else { cur.append(c) }
            } else if c == "\"" { quoted = true } else if c == "," { fields.append(cur); cur = "" } else { cur.append(c) }
        }
        fields.append(cur)
        return fields
    }

    func testQuickReportOverTheFixturesParsesBack() throws {
        let dir = TemporaryDirectory()
        let inputs = dir.file("in")
        try FileManager.default.createDirectory(atPath: inputs + "/nested", withIntermediateDirectories: true)
        for name in ["run-a.h5", "run-b.h5"] {
            try FileManager.default.copyItem(atPath: fixturePath(name), toPath: inputs + "/nested/" + name)
        }
        // An HDF5 file that is not a bwact file (a training checkpoint) is skipped with a note.
        var checkpoint = CheckpointFile()
        checkpoint.arrays["w"] = [1, 2, 3]
        try checkpoint.write(to: inputs + "/checkpoint.h5")
        let out = dir.file("report")
        let r = try bwanalyze("report", inputs, fixturePath("geometry.h5"), fixturePath("attention.h5"),
                              "--out", out, "--quick", "--title", "Fixture <report>")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("skipped \(inputs)/checkpoint.h5"), r.stderr)
        XCTAssertTrue(r.stderr.contains("[1/"), "a progress line per job: \(r.stderr)")

        // CSV: header, consistent rows, the block_depth column.
        let csv = try String(contentsOfFile: out + "/metrics.csv", encoding: .utf8)
        let lines = csv.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[0], "metric,run,file,probe_set,step,depth,run_b,depth_b,target,head,value,std,undefined,block_depth,ci_low,ci_high")
        let rows = lines.dropFirst().map(csvFields)
        XCTAssertGreaterThan(rows.count, 100)
        for row in rows { XCTAssertEqual(row.count, 16, "\(row)") }
        let col = Dictionary(uniqueKeysWithValues: lines[0].split(separator: ",").enumerated().map { (String($1), $0) })
        func rowsWhere(_ metric: String, run: String) -> [[String]] { rows.filter { $0[col["metric"]!] == metric && $0[col["run"]!] == run } }
        // Every depth 0...4 of run A is probed for both targets; depth 2 and 4 are block ends, 1 and 3 are not.
        let probes = rowsWhere("probe_accuracy", run: "fixture-run-a")
        XCTAssertEqual(probes.count, 5 * 2)
        XCTAssertEqual(Set(probes.map { $0[col["depth"]!] }), ["0", "1", "2", "3", "4"])
        for p in probes {
            XCTAssertEqual(p[col["block_depth"]!], ["0", "2", "4"].contains(p[col["depth"]!]) ? "true" : "false")
            XCTAssertNotNil(Double(p[col["value"]!]))
        }
        XCTAssertFalse(rowsWhere("cka_linear_biased", run: "fixture-run-a").filter { $0[col["run_b"]!] == "fixture-run-b" }.isEmpty,
                       "cross-run CKA")
        XCTAssertFalse(rowsWhere("attention_distance_spatial", run: "fixture-attention").isEmpty)
        XCTAssertTrue(rowsWhere("cka_rbf_biased", run: "fixture-run-a").isEmpty, "--quick skips RBF")
        // Undefined values carry a reason and no value.
        for row in rows where !row[col["undefined"]!].isEmpty { XCTAssertEqual(row[col["value"]!], "") }
        // Bootstrap intervals: on every defined probe, mAP, patch-similarity and linear-CKA value of the latest
        // step, bracketing the value (probe intervals bracket the pooled out-of-fold accuracy, which can
        // differ from the mean over folds by unequal fold sizes: allow 1/N).
        for metric in ["probe_accuracy", "probe_accuracy_mean_over_targets", "retrieval_map", "patch_similarity", "probe_accuracy_shuffled"] {
            let withCI = rowsWhere(metric, run: "fixture-run-a")
            XCTAssertFalse(withCI.isEmpty, metric)
            for row in withCI where !row[col["value"]!].isEmpty {
                let v = Double(row[col["value"]!])!, lo = Double(row[col["ci_low"]!]), hi = Double(row[col["ci_high"]!])
                XCTAssertNotNil(lo, "\(metric) \(row)")
                XCTAssertNotNil(hi, "\(metric) \(row)")
                if let lo, let hi {
                    XCTAssertLessThanOrEqual(lo, hi)
                    XCTAssertLessThanOrEqual(lo, v + 1.0 / 80)
                    XCTAssertGreaterThanOrEqual(hi, v - 1.0 / 80)
                }
            }
        }
        let consecutive = rowsWhere("cka_linear_biased", run: "fixture-run-a").filter { $0[col["run_b"]!] == "fixture-run-a" }
        XCTAssertFalse(consecutive.isEmpty)
        for row in consecutive where !row[col["value"]!].isEmpty { XCTAssertFalse(row[col["ci_low"]!].isEmpty, "\(row)") }
        // Measured chance: one shuffled-label accuracy per target at the last depth, and its mean.
        XCTAssertEqual(rowsWhere("probe_accuracy_shuffled", run: "fixture-run-a").map { $0[col["depth"]!] }, ["4", "4"])
        XCTAssertEqual(rowsWhere("probe_accuracy_shuffled_mean_over_targets", run: "fixture-run-a").count, 1)

        // JSON.
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))) as! [String: Any]
        XCTAssertEqual(summary["title"] as? String, "Fixture <report>")
        XCTAssertEqual(summary["quick"] as? Bool, true)
        let described = summary["inputs"] as! [[String: Any]]
        XCTAssertEqual(described.count, 4)
        for input in described {
            let path = input["path"] as! String
            XCTAssertEqual(input["sha256"] as? String, try Checksum.sha256(fileAt: path))
            XCTAssertEqual(input["bytes"] as? Int, try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        }
        let runs = summary["runs"] as! [[String: Any]]
        XCTAssertEqual(runs.count, 4)
        XCTAssertTrue(runs.allSatisfy { ($0["config_sha256"] as? [String])?.first?.count == 64 })
        XCTAssertNotNil((summary["conventions"] as? [String: String])?["patch_similarity"])
        XCTAssertTrue((summary["command_line"] as? [String])?.contains("--quick") ?? false)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let findings = try decoder.decode([Finding].self, from: Data(contentsOf: URL(fileURLWithPath: out + "/findings.json")))
        XCTAssertEqual(findings.map(\.id), [0, 1, 2, 3, 4])
        // The fixtures hold an e2e and a simultaneous run on probe set 'pair' but no double-gratings/actions.
        XCTAssertEqual(findings[0].verdict, "not evaluated")
        XCTAssertEqual(findings[0].notes, ["no e2e run with records at its first and last block ends on double-gratings or actions"])
        XCTAssertNotEqual(findings[1].verdict, "not evaluated")
        XCTAssertTrue(["reproduced", "not reproduced", "inconclusive"].contains(findings[1].verdict))
        XCTAssertFalse(findings[1].reasons.isEmpty)
        XCTAssertTrue(findings[1].checks.allSatisfy { $0.ciLow != nil && $0.ciHigh != nil }, "every check has an interval")
        XCTAssertEqual(findings[2].verdict, "not evaluated")
        let chance = summary["chance"] as! [[String: Any]]
        XCTAssertFalse(chance.isEmpty)
        XCTAssertTrue(chance.contains { $0["run"] as? String == "fixture-run-a" && $0["target"] == nil })
        for c in chance {
            if c["value"] is Double { XCTAssertTrue(c["ci_low"] is Double && c["ci_high"] is Double, "\(c)") } else { XCTAssertTrue(c["undefined"] is String, "\(c)") }
        }
        XCTAssertTrue((summary["bootstrap"] as? String)?.contains("1000 resamples") ?? false)
        XCTAssertNil(findings[2].reproduced)
        XCTAssertFalse(findings[2].notes.isEmpty)

        // SVG figures: well-formed XML.
        let figures = try FileManager.default.contentsOfDirectory(atPath: out + "/figures").filter { $0.hasSuffix(".svg") }
        XCTAssertGreaterThanOrEqual(figures.count, 8)
        XCTAssertTrue(figures.contains("probe_accuracy_pair.svg"))
        XCTAssertTrue(figures.contains("attention_distance_fixture-attention_planted.svg"))
        for f in figures {
            let check = XMLCheck.parse(try String(contentsOfFile: out + "/figures/" + f, encoding: .utf8))
            XCTAssertNil(check.error, f)
            XCTAssertEqual(check.elements.first, "svg", f)
        }

        // index.html references only files that exist, and every figure.
        let html = try String(contentsOfFile: out + "/index.html", encoding: .utf8)
        XCTAssertTrue(html.contains("Fixture &lt;report&gt;"))
        let refs = try NSRegularExpression(pattern: "(?:src|href)=\"([^\"]+)\"")
            .matches(in: html, range: NSRange(html.startIndex..., in: html))
            .map { String(html[Range($0.range(at: 1), in: html)!]) }
        XCTAssertFalse(refs.isEmpty)
        for ref in refs { XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + ref), "missing \(ref)") }
        for f in figures { XCTAssertTrue(refs.contains("figures/" + f), "figure \(f) not on the page") }

        // The notebook validates with nbformat and embeds its outputs.
        let nbPath = out + "/report.ipynb"
        let nb = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: nbPath))) as! [String: Any]
        XCTAssertEqual(nb["nbformat"] as? Int, 4)
        XCTAssertEqual(nb["nbformat_minor"] as? Int, 5)
        let cells = nb["cells"] as! [[String: Any]]
        XCTAssertEqual(Set(cells.map { $0["id"] as! String }).count, cells.count, "unique ids")
        let code = cells.filter { $0["cell_type"] as? String == "code" }
        XCTAssertEqual(code.map { $0["execution_count"] as? Int }, Array(1...code.count))
        XCTAssertEqual(code.filter { (($0["outputs"] as? [[String: Any]]) ?? []).contains { ($0["data"] as? [String: Any])?["image/svg+xml"] != nil } }.count,
                       figures.count)
        XCTAssertTrue(((code[0]["source"] as? [String]) ?? []).joined().contains("REPORT = \".\""))
        try validateNotebook(nbPath)
    }

    func testNotebookElsewhereUsesARelativePath() throws {
        let dir = TemporaryDirectory()
        let out = dir.file("out/report")
        let nb = dir.file("notebooks/deep/analysis.ipynb")
        let r = try bwanalyze("report", fixturePath("run-a.h5"), "--out", out, "--notebook", nb, "--quick", "--quiet")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "")
        let text = try String(contentsOfFile: nb, encoding: .utf8)
        XCTAssertTrue(text.contains("REPORT = \\\"../../out/report\\\""), text)
        try validateNotebook(nb)
        // Without an e2e/blockwise pair the comparisons are not evaluated.
        let findings = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/findings.json"))) as! [[String: Any]]
        XCTAssertTrue(findings.allSatisfy { $0["reproduced"] == nil })
        XCTAssertEqual((findings[1]["notes"] as? [String])?.first, "no blockwise run")
    }

    func testFullReportAddsRBFAndHeatmaps() throws {
        let dir = TemporaryDirectory()
        let r = try bwanalyze("report", fixturePath("run-a.h5"), fixturePath("run-b.h5"), "--out", dir.path, "--quiet")
        XCTAssertEqual(r.status, 0, r.stderr)
        let csv = try String(contentsOfFile: dir.file("metrics.csv"), encoding: .utf8)
        XCTAssertTrue(csv.contains("\ncka_rbf_biased,fixture-run-a,"))
        // All pairs i < j of depths 0...4 within run A: 10 pairs, no duplicates of the consecutive ones.
        let within = csv.split(separator: "\n").map { csvFields(String($0)) }
            .filter { $0[0] == "cka_linear_biased" && $0[1] == "fixture-run-a" && $0[6] == "fixture-run-a" }
        XCTAssertEqual(within.count, 10)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.file("figures/cka_heatmap_fixture-run-a_pair.svg")))

        // Provenance per variant: the linear and the RBF CKA ran with different parameters, and each
        // parameter set stays with the metrics it produced (an RBF bandwidth never sits beside "linear").
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("summary.json")))) as! [String: Any]
        let cka = (summary["parameters"] as! [String: Any])["cka"] as! [[String: Any]]
        XCTAssertGreaterThanOrEqual(cka.count, 2, "\(cka)")
        var kernels: Set<String> = []
        for variant in cka {
            let p = variant["parameters"] as! [String: String]
            let metrics = variant["metrics"] as! [String]
            XCTAssertFalse(metrics.isEmpty)
            XCTAssertFalse((variant["inputs"] as! [String]).isEmpty)
            let kernel = try XCTUnwrap(p["kernel"])
            kernels.insert(kernel)
            for m in metrics { XCTAssertTrue(m.hasPrefix("cka_\(kernel)_"), "\(m) listed under kernel \(kernel)") }
            XCTAssertEqual(p["gamma_per_representation"] != nil, kernel == "rbf", "\(p)")
        }
        XCTAssertEqual(kernels, ["linear", "rbf"])

        // Measure robustness: the similarity measures at the block boundaries of each run and at the final
        // block between the blockwise and the e2e run, the re-runs of finding 3's CKA check, the page's
        // section and one figure per measure.
        for m in MetricFamily.similarity.metrics {
            XCTAssertTrue(csv.contains("\n\(m.name),fixture-run-b,"), m.name)
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.file("figures/similarity_\(m.name).svg")), m.name)
        }
        let robustness = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("measure_robustness.json")))) as! [String: Any]
        let reruns = robustness["reruns"] as! [[String: Any]]
        XCTAssertEqual(Set(reruns.map { $0["measure"] as! String }), [Metric.procrustesAngle.name, Metric.mutualKNN.name])
        XCTAssertTrue(reruns.allSatisfy { ($0["cka_check"] as! String).hasPrefix("CKA depth 2 -> 4 of simultaneous") }, "\(reruns)")
        let finalBlock = robustness["final_block"] as! [[String: Any]]
        XCTAssertEqual(Set(finalBlock.map { $0["measure"] as! String }), Set((MetricFamily.similarity.metrics + [.ckaLinearBiased]).map(\.name)))
        XCTAssertNotNil(summary["measure_robustness"])
        let page = try String(contentsOfFile: dir.file("index.html"), encoding: .utf8)
        XCTAssertTrue(page.contains("<h2>Measure robustness</h2>"))
    }

    func testUnreadableActivationFileIsAnErrorNamingIt() throws {
        let dir = TemporaryDirectory()
        let bad = dir.file("broken.h5")
        try Data("not an hdf5 file".utf8).write(to: URL(fileURLWithPath: bad))
        let r = try bwanalyze("report", fixturePath("run-a.h5"), bad, "--out", dir.file("out"))
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains(bad), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.contains("error") }.count, 1)
        let dup = try bwanalyze("report", fixturePath("precision-f16.h5"), fixturePath("precision-f64.h5"), "--out", dir.file("out"))
        XCTAssertEqual(dup.status, 1)
        XCTAssertTrue(dup.stderr.contains("both hold run 'fixture-precision'"), dup.stderr)
    }

    func testRelativePaths() {
        XCTAssertEqual(ReportNotebook.relativePath(from: "/a/b", to: "/a/b"), ".")
        XCTAssertEqual(ReportNotebook.relativePath(from: "/a/b", to: "/a/b/c"), "c")
        XCTAssertEqual(ReportNotebook.relativePath(from: "/a/b/c", to: "/a/d"), "../../d")
        XCTAssertEqual(ReportNotebook.relativePath(from: "/x", to: "/y/z"), "../y/z")
    }

    func validateNotebook(_ path: String) throws {
        guard let python = debianPython(modules: ["nbformat"]) else {
            if pythonRequired { XCTFail("/usr/bin/python3 with nbformat is required (apt-get install python3-nbformat)") }
            return
        }
        let r = try runProcess(python, ["-c", "import nbformat, sys; nb = nbformat.read(sys.argv[1], as_version=4); nbformat.validate(nb)", path])
        XCTAssertEqual(r.status, 0, r.stderr)
    }
}
