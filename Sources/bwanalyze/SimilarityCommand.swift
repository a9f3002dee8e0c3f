import ActivationStore
import AnalysisCommands
import ArgumentParser
import LinearAlgebra
import RepresentationMetrics
import ToolSupport

extension RDMDistance: ExpressibleByArgument {}
extension RDMComparison: ExpressibleByArgument {}

/// `--measure`: similarity measures by their metric names, comma-separated.
struct MeasureList: ArgumentSyntax {
    var values: [Metric]
    init(parsing text: String) throws {
        let offered = SimilarityAnalysis.offeredMeasures
        if text == "all" { values = SimilarityAnalysis.defaultMeasures; return }
        var chosen: [Metric] = []
        for name in text.split(separator: ",", omittingEmptySubsequences: false).map({ String($0).trimmingCharacters(in: .whitespaces) }) {
            guard let m = Metric(rawValue: name), offered.contains(m) else {
                throw AnalysisError("--measure: unknown measure '\(name)'; choose from \(offered.map(\.name).joined(separator: ", ")) or all")
            }
            if !chosen.contains(m) { chosen.append(m) }
        }
        values = chosen
    }
}

extension BWAnalyze {
    struct Similarity: ParsableCommand, DistributedCommand {
        static let configuration = CommandConfiguration(
            commandName: "similarity",
            abstract: "Similarity beyond CKA (Procrustes, SVCCA, PWCCA, RSA, mutual k-NN) between depths of one run, or between two runs of the same clips.",
            discussion: """
            Rows are clip vectors (the mean over a clip's tokens). Pairs as for cka:
            consecutive depths of one file by default (--pairs all: every pair);
            with two files every depth of A against every depth of B (--pairs all,
            the default) or the same depth in both (--pairs matching).

            Measures (--measure, comma-separated; default all but CKA):
              procrustes_distance  sqrt(2 - 2 ||Xh^T Yh||_*), Xh centred, whitened
                                   by --alpha, unit Frobenius norm
              procrustes_angle     arccos ||Xh^T Yh||_*, in radians
              svcca                mean canonical correlation of the directions
                                   explaining --svcca-variance of the variance
              pwcca                canonical correlations weighted by the
                                   variates of X (A, or the lower depth)
              rsa                  Spearman (--rdm-comparison kendall: tau_a)
                                   between RDMs of 1 - correlation (--rdm)
              mutual_knn           mean overlap of the --neighbours cosine
                                   nearest neighbours of each clip
              cka_linear_biased    the cka command's value, for --permutations

            --permutations M gives each pair and measure a p-value,
            (b + 1) / (M + 1) over M random pairings of the clips (JSON: p_value).
            Every convention: docs/metrics.md.
            """)

        @Argument(help: "One or two activation files.")
        var files: [String]

        @OptionGroup var depth: DepthOption

        @Option(help: "Pairs: consecutive (one file), all, or matching (two files: same depth in both).")
        var pairs: CKAAnalysis.Pairs?

        @Option(help: "Comma-separated measures, or all: \(SimilarityAnalysis.offeredMeasures.map(\.name).joined(separator: ", ")).")
        var measure = Checked<MeasureList>("all")

        @Option(help: "Procrustes partial whitening in [0, 1]: 1 plain Procrustes, 0 full whitening (CCA-like).")
        var alpha = 1.0

        @Option(help: "SVCCA: fraction of each representation's variance its kept directions explain.")
        var svccaVariance = 0.99

        @Option(help: "RSA dissimilarity: correlation (1 - Pearson r), cosine or euclidean.")
        var rdm: RDMDistance = .correlation

        @Option(help: "RSA comparison of the RDMs: spearman or kendall (tau_a).")
        var rdmComparison: RDMComparison = .spearman

        @Option(help: "Mutual k-NN: neighbours per clip (cosine, self excluded).")
        var neighbours = 10

        @Option(help: "Permutation test: random pairings of the clips per pair and measure (0: no test; at least 1000 recommended).")
        var permutations = 0

        @Option(help: "Seed of the permutations.")
        var permutationSeed: UInt64 = 0x5eed_9e37

        @Flag(help: "Compare files whose probe_set attributes differ (the clips must still correspond).")
        var allowDifferentProbeSets = false

        @OptionGroup var output: OutputOptions
        @OptionGroup var job: JobOptions

        func validate() throws {
            guard (1...2).contains(files.count) else { throw ValidationError("give one or two activation files") }
            try measure.check()
            guard alpha >= 0, alpha <= 1 else { throw ValidationError("--alpha must lie in [0, 1]") }
            guard svccaVariance > 0, svccaVariance <= 1 else { throw ValidationError("--svcca-variance must lie in (0, 1]") }
            guard neighbours >= 1 else { throw ValidationError("--neighbours must be at least 1") }
            guard permutations >= 0 else { throw ValidationError("--permutations must be 0 or more") }
        }

        func run() throws {
            try job.run(printError: printError) { world in
                var analysis = SimilarityAnalysis()
                analysis.depthSelection = depth.selection
                analysis.pairs = pairs
                analysis.measures = measure.value.values
                analysis.options.alpha = alpha
                analysis.options.svccaVariance = svccaVariance
                analysis.options.rdm = rdm
                analysis.options.rdmComparison = rdmComparison
                analysis.options.neighbours = neighbours
                if permutations > 0 { analysis.permutationTest = SimilarityPermutationTest(permutations: permutations, seed: permutationSeed) }
                analysis.allowDifferentProbeSets = allowDifferentProbeSets
                analysis.communicator = world
                let opened = try openInputs(files, job: world)
                let report = try analysis.run(opened[0], opened.count > 1 ? opened[1] : nil, progress: output.progress("similarity", job: world))
                try output.write(report, table: SimilarityAnalysis.table, job: world)
            }
        }
    }
}
