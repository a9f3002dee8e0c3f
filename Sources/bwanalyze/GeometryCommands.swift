import ActivationStore
import AnalysisCommands
import ArgumentParser
import Collective
import LinearAlgebra
import ToolSupport

extension BWAnalyze {
    struct Spectrum: ParsableCommand, DistributedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Covariance-spectrum geometry per depth: effective rank, RankMe, participation ratio, isotropy, k at 90%, condition number, uniformity, norm and pairwise statistics.",
            discussion: "Eigenvalues come from the DxD covariance accumulated in float64 over clip chunks, so --pool tokens streams files larger than memory. Pairwise statistics use a seeded random subset of at most --pairwise-rows rows.")

        @Argument(help: "An activation file.")
        var file: String

        @OptionGroup var depths: DepthOptions

        @Option(help: "Rows kept for pairwise statistics (uniformity, cosines, distances).")
        var pairwiseRows = 4096

        @OptionGroup var output: OutputOptions
        @OptionGroup var job: JobOptions

        func run() throws {
            try job.run(printError: printError) { world in
                var a = SpectrumAnalysis()
                a.communicator = world
                a.depthSelection = depths.selection
                a.pooling = depths.pool
                a.maxBatchBytes = depths.batchBytes
                a.pairwiseRows = max(2, pairwiseRows)
                let report = try a.run(openInputs([file], job: world)[0], progress: output.progress("spectrum", job: world))
                try output.write(report, table: SpectrumAnalysis.table, job: world)
            }
        }
    }

    struct RetrievalCommand: ParsableCommand, DistributedCommand {
        static let configuration = CommandConfiguration(
            commandName: "retrieval",
            abstract: "Cosine retrieval of clip vectors per depth and target: top-1/5/10 hit rate and mAP, self excluded.")

        @Argument(help: "An activation file.")
        var file: String

        @OptionGroup var depth: DepthOption

        @Option(name: .customLong("target"), help: "A label target (repeatable); default: every target in the file.")
        var targets: [String] = []

        @Option(help: "Comma-separated k values for the top-k hit rate.")
        var ks = Checked<TopKList>("1,5,10")

        @OptionGroup var output: OutputOptions
        @OptionGroup var job: JobOptions

        func validate() throws { try ks.check() }

        func run() throws {
            try job.run(printError: printError) { world in
                var a = RetrievalAnalysis()
                a.communicator = world
                a.depthSelection = depth.selection
                a.targets = targets.isEmpty ? nil : targets
                a.ks = ks.value.values
                let f = try openInputs([file], job: world)[0]
                for t in targets { _ = try f.labels(t) }
                let report = try a.run(f, progress: output.progress("retrieval", job: world))
                try output.write(report, table: RetrievalAnalysis.table, job: world)
            }
        }
    }
}
