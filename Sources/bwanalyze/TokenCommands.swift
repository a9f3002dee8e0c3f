import ActivationStore
import AnalysisCommands
import ArgumentParser
import Collective
import LinearAlgebra
import ToolSupport

extension BWAnalyze {
    struct Tokens: ParsableCommand, DistributedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Token-level diagnostics: within-clip patch similarity per depth, token shift between consecutive depths.")

        @Argument(help: "An activation file.")
        var file: String

        @OptionGroup var depth: DepthOption

        @Option(help: "Memory budget for one batch of clips, in MiB.")
        var batchMib = 64.0

        @OptionGroup var output: OutputOptions
        @OptionGroup var job: JobOptions

        func run() throws {
            try job.run(printError: printError) { world in
                var a = TokenAnalysis()
                a.communicator = world
                a.depthSelection = depth.selection
                a.maxBatchBytes = max(1, Int(batchMib * 1_048_576))
                let report = try a.run(openInputs([file], job: world)[0], progress: output.progress("tokens", job: world))
                try output.write(report, table: TokenAnalysis.table, job: world)
            }
        }
    }

    struct Attention: ParsableCommand, DistributedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mean attention distance (spatial in pixels, temporal in frames) and attention entropy per layer and head.")

        @Argument(help: "An activation file with /layers/LL/attention datasets.")
        var file: String

        @Option(help: "Comma-separated layers (default: every layer that stores attention).")
        var layers: Checked<LayerList>?

        @OptionGroup var output: OutputOptions
        @OptionGroup var job: JobOptions

        func validate() throws { try layers?.check() }

        func run() throws {
            try job.run(printError: printError) { world in
                var a = AttentionAnalysis()
                a.communicator = world
                if let layers { a.layers = layers.value.values }
                let report = try a.run(openInputs([file], job: world)[0], progress: output.progress("attention", job: world))
                try output.write(report, table: AttentionAnalysis.table, job: world)
            }
        }
    }
}
