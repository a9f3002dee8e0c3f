import ArgumentParser
import Foundation
import ToolSupport
import Reports

extension BWAnalyze {
    struct Report: ParsableCommand, DistributedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run every analysis over activation files and write a report: tidy CSV, JSON with provenance, findings, SVG figures, HTML and a notebook.",
            discussion: """
            Files are grouped by (run, probe set, step). At each run's latest step every depth is analysed
            (probes, retrieval, CKA, spectrum, token and attention metrics, OccDrop with '<set>-onepatch'
            files); earlier steps give learning dynamics at block depths; runs sharing a probe set and step
            are compared by cross-run CKA. The paper's four findings are checked by stated criteria, after finding 0: whether the end-to-end runs develop depth-wise structure.
            """)

        @Argument(help: "Activation files or directories (searched recursively for .h5 files).")
        var inputs: [String]

        @Option(help: "Output directory (created if missing).")
        var out: String

        @Option(help: "Notebook path (default: OUT/report.ipynb).")
        var notebook: String?

        @Option(help: "Report title.")
        var title: String?

        @Flag(help: "Skip RBF CKA and the all-pairs CKA matrices.")
        var quick = false

        @Option(help: "Bootstrap resamples over clips for the 95% intervals of probe, retrieval, CKA and patch-similarity values, on which the findings' verdicts are decided (0: no intervals, every verdict inconclusive).")
        var resamples = 1000

        @Flag(help: "No progress on standard error.")
        var quiet = false

        @OptionGroup var job: JobOptions

        func validate() throws {
            guard resamples >= 0 else { throw ValidationError("--resamples must be 0 or more") }
        }

        func run() throws {
            var options = ReportOptions(outputDirectory: out, notebookPath: notebook, quick: quick)
            if let title { options.title = title }
            options.resamples = resamples
            options.commandLine = CommandLine.arguments
            let tty = isatty(STDERR_FILENO) != 0
            let write: @Sendable (String) -> Void = { line in
                FileHandle.standardError.write(Data(((tty ? "\r\u{1B}[K" : "") + line + "\n").utf8))
            }
            let log = quiet ? nil : write
            try job.run(printError: printError) { world in
                try ReportGenerator(options: options, communicator: world).generate(paths: inputs, log: log)
            }
        }
    }
}
