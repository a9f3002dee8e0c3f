import ActivationStore
import AnalysisCommands
import ArgumentParser
import LinearAlgebra
import ToolSupport

extension BWAnalyze {
    struct Tokens: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Token-level diagnostics: within-clip patch similarity per depth, token shift between consecutive depths.")

        @Argument(help: "An activation file.")
        var file: String

        @OptionGroup var depth: DepthOption

        @Option(help: "Memory budget for one batch of clips, in MiB.")
        var batchMib = 64.0

        @OptionGroup var output: OutputOptions

        func run() throws {
            try runAnalysis {
                var a = TokenAnalysis()
                a.depthSelection = depth.selection
                a.maxBatchBytes = max(1, Int(batchMib * 1_048_576))
                let report = try a.run(ActivationFile(path: file), progress: output.progress("tokens"))
                try output.write(report, table: TokenAnalysis.table)
            }
        }
    }

    struct Attention: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mean attention distance (spatial in pixels, temporal in frames) and attention entropy per layer and head.")

        @Argument(help: "An activation file with /layers/LL/attention datasets.")
        var file: String

        @Option(help: "Comma-separated layers (default: every layer that stores attention).")
        var layers: Checked<LayerList>?

        @OptionGroup var output: OutputOptions

        func validate() throws { try layers?.check() }

        func run() throws {
            try runAnalysis {
                var a = AttentionAnalysis()
                if let layers { a.layers = layers.value.values }
                let report = try a.run(ActivationFile(path: file), progress: output.progress("attention"))
                try output.write(report, table: AttentionAnalysis.table)
            }
        }
    }
}
