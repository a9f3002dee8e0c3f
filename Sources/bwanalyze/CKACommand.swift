import ActivationStore
import AnalysisCommands
import ArgumentParser
import ToolSupport
import Collective
import RepresentationMetrics

extension CKAKernel: ExpressibleByArgument {}
extension CKAEstimator: ExpressibleByArgument {}
extension CKAAnalysis.Pairs: ExpressibleByArgument {}

/// `--rbf-bandwidth`: how the RBF kernel's bandwidth follows the median distance.
enum BandwidthRule: String, CaseIterable, ExpressibleByArgument {
    /// gamma = 1/(2 median distance^2).
    case paper
    /// Kornblith et al.: sigma^2 = threshold^2 x median squared distance (`--rbf-threshold`).
    case kornblith
}

extension BWAnalyze {
    struct CKA: ParsableCommand, DistributedCommand {
        static let configuration = CommandConfiguration(
            commandName: "cka",
            abstract: "Centered kernel alignment between depths of one run, or between two runs of the same clips.",
            discussion: """
            With one file, compares its depths (consecutive pairs by default). With two files, rows are A's
            depths and columns B's; the files must hold the same clips (same N and labels).
            Linear CKA with the biased or debiased estimator streams XᵀX-type sums in float64 over clip
            chunks, so token-level CKA (--pool tokens) works on files larger than memory.
            """)

        @Argument(help: "One or two activation files.")
        var files: [String]

        @OptionGroup var depths: DepthOptions

        @Option(help: "Pairs: consecutive (one file), all, or matching (two files: same depth in both).")
        var pairs: CKAAnalysis.Pairs?

        @Option(help: "Kernel: linear or rbf.")
        var kernel: CKAKernel = .linear

        @Option(help: "HSIC estimator: biased, debiased (U-statistic) or minibatch (Nguyen et al. 2021).")
        var estimator: CKAEstimator = .biased

        @Option(help: "Clips per minibatch for --estimator minibatch.")
        var batchSize = 256

        @Option(help: "RBF bandwidth rule: 'paper' (gamma = 1/(2 median distance^2)) or 'kornblith' (with --rbf-threshold).")
        var rbfBandwidth: BandwidthRule = .paper

        @Option(help: "Kornblith's threshold: sigma^2 = threshold^2 x median squared distance.")
        var rbfThreshold = 1.0

        @Flag(help: "Compare files whose probe_set attributes differ (the clips must still correspond).")
        var allowDifferentProbeSets = false

        @OptionGroup var output: OutputOptions
        @OptionGroup var job: JobOptions

        func validate() throws {
            guard (1...2).contains(files.count) else { throw ValidationError("give one or two activation files") }
            guard batchSize >= 4 else { throw ValidationError("--batch-size must be at least 4") }
        }

        func run() throws {
            try job.run(printError: printError) { world in
                var analysis = CKAAnalysis()
                analysis.depthSelection = depths.selection
                analysis.pooling = depths.pool
                analysis.maxBatchBytes = depths.batchBytes
                analysis.pairs = pairs
                analysis.kernel = kernel
                analysis.estimator = estimator
                analysis.batchSize = batchSize
                analysis.bandwidth = rbfBandwidth == .paper ? .paperMedian : .kornblith(threshold: rbfThreshold)
                analysis.allowDifferentProbeSets = allowDifferentProbeSets
                analysis.communicator = world
                let opened = try openInputs(files, job: world)
                let a = opened[0]
                let b = opened.count > 1 ? opened[1] : nil
                let report = try analysis.run(a, b, progress: output.progress("cka", job: world))
                try output.write(report, table: CKAAnalysis.table, job: world)
            }
        }
    }
}
