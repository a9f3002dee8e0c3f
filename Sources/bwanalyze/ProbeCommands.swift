import ActivationStore
import AnalysisCommands
import ArgumentParser
import Collective
import LinearAlgebra
import ToolSupport
import RepresentationMetrics

extension OccDropProtocol: ExpressibleByArgument {}

/// Probe options shared by `probe` and `occdrop`.
struct ProbeArguments: ParsableArguments {
    @Option(name: .customLong("target"), help: "A label target (repeatable).")
    var targets: [String] = []

    @Flag(help: "Probe every target in the file (the default when no --target is given).")
    var allTargets = false

    @OptionGroup var depth: DepthOption

    @Option(name: .customLong("c"), help: "Inverse L2 regularisation strength, as scikit-learn's C.")
    var c = 1.0

    @Option(help: "Number of stratified CV folds.")
    var folds = 3

    @Option(help: "Seed of the fold shuffle.")
    var seed: UInt64 = 0

    @Option(help: "L-BFGS iteration limit.")
    var maxIterations = 1000

    @Option(help: "L-BFGS stops when the largest gradient component is at most this (scikit-learn's tol).")
    var tolerance = ProbeOptions.scikitLearnTolerance

    func validate() throws {
        guard c > 0, c.isFinite else { throw ValidationError("--c must be positive") }
        guard folds >= 2 else { throw ValidationError("--folds must be at least 2") }
        guard maxIterations >= 1 else { throw ValidationError("--max-iterations must be at least 1") }
        guard tolerance > 0, tolerance.isFinite else { throw ValidationError("--tolerance must be positive") }
        if allTargets && !targets.isEmpty { throw ValidationError("give --target or --all-targets, not both") }
    }

    var options: ProbeOptions { ProbeOptions(c: c, maxIterations: maxIterations, folds: folds, seed: seed, tolerance: tolerance) }
    var chosenTargets: [String]? { targets.isEmpty ? nil : targets }
}

extension BWAnalyze {
    struct Probe: ParsableCommand, DistributedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Linear-probe accuracy of clip vectors per depth and target (standardise, multinomial L2 logistic regression, L-BFGS).",
            discussion: "Cross-validated on one file (stratified, shuffled, seed 0), or trained on --train and scored on --test. --c-grid chooses C per outer fold by inner CV.")

        @Argument(help: "An activation file (omit with --train/--test).")
        var file: String?

        @Option(help: "Training file (with --test).")
        var train: String?

        @Option(help: "Test file (with --train).")
        var test: String?

        @Option(help: "Comma-separated C values to choose from by inner CV, e.g. 0.01,0.1,1,10.")
        var cGrid: Checked<CGrid>?

        @OptionGroup var probe: ProbeArguments
        @OptionGroup var output: OutputOptions
        @OptionGroup var job: JobOptions

        func validate() throws {
            switch (file, train, test) {
            case (.some, nil, nil), (nil, .some, .some): break
            default: throw ValidationError("give one activation file, or --train FILE --test FILE")
            }
            if cGrid != nil && train != nil { throw ValidationError("--c-grid works with cross-validation on one file") }
            try cGrid?.check()
        }

        func run() throws {
            try job.run(printError: printError) { world in
                var a = ProbeAnalysis()
                a.communicator = world
                a.depthSelection = probe.depth.selection
                a.targets = probe.chosenTargets
                a.options = probe.options
                if let cGrid { a.cGrid = cGrid.value.values }
                let report: MetricReport
                if let file {
                    report = try a.run(openInputs([file], job: world)[0], progress: output.progress("probe", job: world))
                } else {
                    let pair = try openInputs([train!, test!], job: world)
                    report = try a.run(train: pair[0], test: pair[1], progress: output.progress("probe", job: world))
                }
                try output.write(report, table: ProbeAnalysis.table, job: world)
            }
        }
    }

    struct OccDrop: ParsableCommand, DistributedCommand {
        static let configuration = CommandConfiguration(
            commandName: MetricFamily.occDrop.command,
            abstract: "OccDrop = (acc_all − acc_one_patch) / acc_all from a file of full clips and one of the same clips with one spatial patch kept.")

        @Argument(help: "Activations of the full clips.")
        var full: String

        @Argument(help: "Activations of the same clips with one spatial patch kept across all frames.")
        var onePatch: String

        @Option(help: "transfer: probe trained on full clips, scored on one-patch clips; retrain: trained and scored on one-patch clips.")
        var `protocol`: OccDropProtocol = .transfer

        @OptionGroup var probe: ProbeArguments
        @OptionGroup var output: OutputOptions
        @OptionGroup var job: JobOptions

        func run() throws {
            try job.run(printError: printError) { world in
                var a = OccDropAnalysis()
                a.communicator = world
                a.depthSelection = probe.depth.selection
                a.targets = probe.chosenTargets
                a.options = probe.options
                a.protocolKind = `protocol`
                let pair = try openInputs([full, onePatch], job: world)
                let report = try a.run(full: pair[0], onePatch: pair[1], progress: output.progress(MetricFamily.occDrop.command, job: world))
                try output.write(report, table: OccDropAnalysis.table, job: world)
            }
        }
    }
}
