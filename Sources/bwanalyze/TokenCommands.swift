import ActivationStore
import AnalysisCommands
import ArgumentParser

extension BWAnalyze {
    struct Tokens: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Token-level diagnostics: within-clip patch similarity per depth, token shift between consecutive depths.")

        @Argument(help: "An activation file.")
        var file: String

        @Option(help: "Depths: 'blocks' (the embedding and each block's last layer), 'layers' (every depth) or a list such as 0,3,6.")
        var depth: String = "blocks"

        @Option(help: "Memory budget for one batch of clips, in MiB.")
        var batchMib = 64.0

        @OptionGroup var output: OutputOptions

        func run() throws {
            try runAnalysis {
                var a = TokenAnalysis()
                a.depthSelection = try DepthSelection(parsing: depth)
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
        var layers: String?

        @OptionGroup var output: OutputOptions

        func run() throws {
            try runAnalysis {
                var a = AttentionAnalysis()
                if let layers {
                    guard let parsed = parseList(layers, as: Int.self) else {
                        throw AnalysisError("--layers must be a comma-separated list of layer numbers")
                    }
                    a.layers = parsed
                }
                let report = try a.run(ActivationFile(path: file), progress: output.progress("attention"))
                try output.write(report, table: AttentionAnalysis.table)
            }
        }
    }
}
