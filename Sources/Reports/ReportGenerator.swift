import AnalysisCommands
import Collective
import Foundation
import LinearAlgebra
import RepresentationMetrics

/// Settings of `bwanalyze report`.
public struct ReportOptions: Sendable {
    /// Directory receiving metrics.csv, COLUMNS.md, summary.json, findings.json, figures/, index.html.
    public var outputDirectory: String
    /// Notebook path; nil = `<outputDirectory>/report.ipynb`.
    public var notebookPath: String?
    public var title = "Depth-wise representations: blockwise vs end-to-end"
    /// Skip RBF CKA and the all-pairs CKA matrices.
    public var quick = false
    /// Recorded in summary.json.
    public var commandLine: [String] = []
    /// Bootstrap resamples for the confidence intervals (seed 0, 95%); 0 = no intervals.
    public var resamples = 1000

    public init(outputDirectory: String, notebookPath: String? = nil, quick: Bool = false) {
        self.outputDirectory = outputDirectory
        self.notebookPath = notebookPath
        self.quick = quick
    }

    public var resolvedNotebookPath: String {
        notebookPath ?? (outputDirectory as NSString).appendingPathComponent("report.ipynb")
    }
}

/// `bwanalyze report`: runs every analysis over a set of activation files and writes the tidy
/// table, provenance, findings, figures, an HTML page and a notebook.
public struct ReportGenerator: Sendable {
    public var options: ReportOptions
    /// The job the report is made by: every rank takes part in every analysis (docs/mpi.md); rank 0
    /// alone logs, checksums the inputs and writes the outputs.
    public var communicator: any Communicator

    public init(options: ReportOptions, communicator: any Communicator = SingleProcess()) {
        self.options = options
        self.communicator = communicator
    }

    /// Generates the report.
    ///
    /// - Parameters:
    ///   - paths: activation files or directories (searched recursively for `.h5`).
    ///   - log: receives progress lines (one per finished analysis job) and notes.
    /// - Returns: the summary written to `summary.json` (nil on ranks other than 0, which write nothing).
    /// - Throws: `ReportError` for unreadable inputs or outputs.
    @discardableResult
    public func generate(paths: [String], log: (@Sendable (String) -> Void)? = nil) throws -> ReportSummary? {
        let log = communicator.isRoot ? log : nil
        // An input that cannot be read stops every rank at once (one error line, rank 0's).
        let inputs = try communicator.together { try ReportInputs.collect(paths) }
        try ReportOutput.check(out: options.outputDirectory, notebook: options.resolvedNotebookPath,
                               inputs: inputs.groups.map(\.file.path))
        for n in inputs.notes { log?(n) }
        let runs = inputs.runs
        log?("\(inputs.groups.count) activation file\(inputs.groups.count == 1 ? "" : "s") of \(runs.count) run\(runs.count == 1 ? "" : "s")")
        var analyzer = ReportAnalyzer(quick: options.quick)
        analyzer.maxRBFClips = 2048
        analyzer.bootstrap = options.resamples > 0 ? Bootstrap(resamples: options.resamples, seed: 0, level: 0.95) : nil
        analyzer.communicator = communicator
        // The inputs' checksums (provenance) are read on a thread of their own while the analyses run:
        // hashing waits on the disk and the page cache as much as on a core.
        let checksums = communicator.isRoot ? Checksums(inputs.groups.map(\.file.path)) : nil
        let outcome = analyzer.run(inputs, log: log)
        if let failure = outcome.readFailures.first {
            throw ReportError(failure)
        }
        let sums = try checksums?.wait()
        guard communicator.isRoot, let sums else { return nil }
        let table = ReportTable(records: outcome.reports.flatMap(\.records), runs: runs)
        // Finding 0 (the e2e baseline develops depth-wise structure) first: findings 1-4 rest on it.
        let findings = [Findings.baseline(records: table.records, runs: runs)] + Findings.evaluate(records: table.records, runs: runs)
        let shapes = Dictionary(inputs.groups.map { ("\($0.run)\u{0}\($0.probeSet)", (rows: $0.file.clipCount, features: $0.file.featureCount)) },
                                uniquingKeysWith: { a, _ in a })
        let robustness = options.quick ? nil
            : MeasureRobustness.evaluate(records: table.records, runs: runs, findings: findings) { shapes["\($0)\u{0}\($1)"] }
        let conditions = ReportConditions(table: table, runs: runs)
        let figures = ReportFigures.make(table: table, runs: runs, conditions: conditions)

        var conventions: [String: String] = [:]
        var produced: [String: [(parameters: [String: String], metrics: [String], input: String)]] = [:]
        var notes = inputs.notes + outcome.notes
        for r in outcome.reports {
            conventions.merge(r.conventions) { a, _ in a }
            let who = r.inputs.map { "\($0.run) [\($0.probeSet), step \($0.step)]" }.joined(separator: " x ")
            produced[r.command, default: []].append((r.parameters, r.records.map(\.metric), who))
            for w in r.warnings { notes.append("\(r.command) of \(who): \(w)") }
        }
        let parameters = produced.mapValues(ReportSummary.ParameterVariant.group)
        var described: [ReportSummary.Input] = []
        for (g, sum) in zip(inputs.groups, sums) {
            let m = g.file.metadata
            described.append(.init(path: g.file.path, bytes: g.file.fileSize, sha256: sum,
                                   run: m.run, regime: m.regime, probeSet: m.probeSet, step: m.step))
        }
        let summary = ReportSummary(
            title: options.title, tool: "bwanalyze report", version: bwsslVersion, commandLine: options.commandLine,
            quick: options.quick, inputs: described, runs: runs, conventions: conventions, parameters: parameters,
            findings: findings, bootstrap: analyzer.bootstrap.map(\.description), chance: ReportSummary.ChanceLevel.from(table.records),
            figures: figures.map(\.file), records: table.records.count,
            undefinedRecords: table.records.filter { $0.value == nil }.count, notes: notes, measureRobustness: robustness)

        // Write: the whole report (notebook included) goes to a staging folder, swapped in at the end.
        let out = options.outputDirectory
        let notebookPath = options.resolvedNotebookPath
        let staged = try ReportOutput(out: out, notebook: notebookPath)
        do {
            func write(_ name: String, _ text: String) throws { try emit(text, to: staged.path(name)) }
            try write("metrics.csv", table.csv)
            try write("conditions.csv", conditions.csv)
            try write("COLUMNS.md", table.columnsMarkdown + ReportConditions.columnsMarkdown)
            try write("summary.json", encodeJSON(summary) + "\n")
            try write("findings.json", encodeJSON(findings) + "\n")
            if let robustness { try write("measure_robustness.json", encodeJSON(robustness) + "\n") }
            for f in figures { try write(f.file, f.svg) }
            let notebookDir = (notebookPath as NSString).deletingLastPathComponent
            let notebook = ReportNotebook(title: options.title,
                                          reportPath: ReportNotebook.relativePath(from: notebookDir.isEmpty ? "." : notebookDir, to: out),
                                          findings: findings, robustness: robustness, figures: figures, recordCount: table.records.count,
                                          runCount: Set(table.records.map(\.run)).count)
            try emit(try notebook.render(), to: staged.stagedNotebook)
            let linkFromPage = ReportNotebook.relativePath(from: out, to: notebookDir.isEmpty ? "." : notebookDir)
            let notebookLink = (linkFromPage == "." ? "" : linkFromPage + "/") + (notebookPath as NSString).lastPathComponent
            try write("index.html", ReportHTML.page(summary: summary, table: table, figures: figures,
                                                    notebookLink: notebookLink.hasPrefix("..") || notebookLink.hasPrefix("/") ? nil : notebookLink))
        } catch {
            staged.discard()
            throw error
        }
        try staged.commit()
        log?("wrote \(out)/index.html, metrics.csv (\(table.records.count) records), \(figures.count) figures, \(notebookPath)")
        return summary
    }
}
