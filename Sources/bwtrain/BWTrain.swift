import ActivationStore
import ArgumentParser
import BlockwiseTraining
import Collective
import Foundation
import LinearAlgebra
import ToolSupport

@main
struct BWTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bwtrain",
        abstract: "Train a compact VideoMAE-style video ViT end-to-end or blockwise on CPU and dump per-layer activations (bwact/1).",
        discussion: """
        Writes into --out: checkpoint.h5, <probe-set>-stepNNNNNN.h5 activation dumps (for bwanalyze), config.json, and done.json when the run is complete. A killed run continues with --resume and reaches the same weights.

        Presets: quick (a smoke-test run in well under a minute on 2 cores), default (the scale the report uses: 12 layers, K = 4 blocks of 3). Options given explicitly override the preset.

        Data-parallel on several processes: build with `swift build -c release --traits MPI` and start with `mpirun -n R bwtrain ...` (or srun). Each rank trains on its share of every batch with one thread (--threads); the weights equal one process's up to float rounding, and rank 0 writes every file.
        """,
        version: bwsslVersion,
        subcommands: [Train.self, Bench.self, CheckStructure.self],
        defaultSubcommand: Train.self)

    /// The structural pass of `StructureGuard` on a checkpoint or clip file, run in a child process; not for direct use.
    struct CheckStructure: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check-structure", abstract: "Internal: read a file's structure (run in a limited child process).",
            shouldDisplay: false)

        @Argument var file: String

        func run() throws {
            let status = StructureGuard.runHelper(path: file)
            if status != 0 { throw ExitCode(status) }
        }
    }
}

extension BWTrain {
    /// Parses and runs the command. An option value the library rejects (`validate()`) ends, like a
    /// training error, with one `bwtrain: error:` line and status 1; usage errors as ArgumentParser prints them.
    ///
    /// Every file bwtrain reads (a `--resume` checkpoint, a `--data` clip file) is first read by a child
    /// process (`StructureGuard`), so a damaged file ends as one error line instead of a crash or a hang;
    /// `BWSSL_STRUCTURE_GUARD=off` reads in-process.
    static func main() {
        // The structure guard waits for its helpers; an inherited SIGCHLD = SIG_IGN would reap them first.
        signal(SIGCHLD, SIG_DFL)
        let environment = ProcessInfo.processInfo.environment
        if environment["BWSSL_STRUCTURE_GUARD"] != "off", let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            StructureGuard.helper = [exe, CheckStructure.configuration.commandName!]
        }
        if let limit = environment["BWSSL_STRUCTURE_TIME_LIMIT"].flatMap(Double.init), limit > 0 {
            StructureGuard.timeLimit = limit
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if let message = libraryMessage(for: error) {
                printError(message)
                Foundation.exit(ExitCode.failure.rawValue)
            }
            exit(withError: error)
        }
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data(("bwtrain: error: " + message + "\n").utf8))
}

extension Regime: ExpressibleByArgument {
    public static var allValueStrings: [String] { trainable.map(\.rawValue) }
}

/// `--dump-steps`: comma-separated step numbers (empty: no dumps).
struct StepList: ArgumentSyntax {
    var steps: [Int]
    init(parsing text: String) throws {
        guard let steps = parseList(text, as: Int.self, allowingEmpty: true) else {
            throw TrainingError("--dump-steps must be comma-separated step numbers")
        }
        self.steps = steps
    }
}

/// `--probe-sets`: comma-separated names (empty: none).
struct NameList: ExpressibleByArgument {
    var names: [String]
    init(argument: String) { names = parseList(argument, as: String.self, allowingEmpty: true)! }
}

/// Model and training options; each overrides the preset when given.
struct ModelOptions: ParsableArguments {
    @Option(help: "Preset: quick or default.") var preset = Checked<Preset>("default")
    @Option(help: "Regime: e2e, simultaneous or sequential.") var regime: Regime = .simultaneous
    @Option(help: "Run name (default: <preset>-<regime>-k<blocks>-s<seed>).") var run: String?
    @Option(help: "Random seed of initialisation, batches and masks.") var seed: UInt64 = 0
    @Option(help: "Encoder layers L.") var layers: Int?
    @Option(help: "Blocks K (must divide L).") var blocks: Int?
    @Option(help: "Encoder width D.") var dim: Int?
    @Option(help: "Attention heads.") var heads: Int?
    @Option(help: "Decoder depth.") var decoderDepth: Int?
    @Option(help: "Decoder width.") var decoderDim: Int?
    @Option(help: "Decoder attention heads.") var decoderHeads: Int?
    @Option(help: "Tube-masking ratio in (0, 1).") var maskRatio: Double?
    @Option(help: "Training steps.") var steps: Int?
    @Option(help: "Clips per batch.") var batchSize: Int?
    @Option(help: "Peak learning rate (AdamW).") var lr: Double?
    @Option(help: "AdamW's decoupled weight decay on the weight matrices, not biases, norms or the mask token (default: the preset's).") var weightDecay: Double?
    @Option(help: "Frames per clip.") var frames: Int?
    @Option(help: "Frame height and width in pixels.") var size: Int?
    @Option(help: "Tubelet frames.") var tubelet: Int?
    @Option(help: "Patch size in pixels.") var patch: Int?
    @Option(help: "Training clips: a synthetic set (actions, gratings, double-gratings, legacy-gratings, legacy-double-gratings, or mixed: a third each of the legacy gratings, legacy double gratings and actions) or an HDF5 file with /clips uint8 [N,F,H,W,C] and /labels/<target>.") var data: String?
    @Option(help: "Clips in the synthetic training set.") var trainingClips: Int?
    @Option(help: "Clips per probe set in the dumps.") var probeClips: Int?
    @Option(help: "Comma-separated dump steps (0 = before training).") var dumpSteps: Checked<StepList>?
    @Flag(inversion: .prefixedNo, help: "Regress per-patch normalised pixels (VideoMAE's default) instead of raw pixels (default: the preset's).") var normalizeTargets: Bool?
    @Option(help: "Encoder inputs are (pixel − mean) / std (default: the preset's).") var inputMean: Double?
    @Option(help: "See --input-mean.") var inputStd: Double?
    @Flag(inversion: .prefixedNo, help: "Synthetic actions over textured backgrounds (default: the preset's).") var texturedBackgrounds: Bool?
    @Option(help: "Base of the sin-cos position frequencies (default: the preset's).") var positionBase: Double?
    @Flag(inversion: .prefixedNo, help: "Synthetic actions over dead-leaves backgrounds (occluding discs with natural-image statistics) instead of gratings (default: the preset's).") var deadLeaves: Bool?
    @Option(help: "Static distractor objects in every synthetic actions clip, 0-8 (default: the preset's).") var distractors: Int?
    @Option(help: "Factor on the synthetic action objects' radius, in (0, 3] (default: the preset's; 1 = radius 14-19% of the frame).") var objectScale: Double?
    @Option(help: "Comma-separated probe sets to dump (default: the preset's).") var probeSets: NameList?
    @Option(help: "Probe set whose occluded variant is dumped for OccDrop; empty for none (default: the preset's).") var occludedProbeSet: String?

    func validate() throws {
        try preset.check()
        try dumpSteps?.check()
    }

    /// The options as the library's overrides.
    var overrides: TrainingOverrides {
        var o = TrainingOverrides()
        o.preset = preset.value
        o.regime = regime
        o.run = run
        o.seed = seed
        o.layers = layers
        o.blocks = blocks
        o.dim = dim
        o.heads = heads
        o.decoderDepth = decoderDepth
        o.decoderDim = decoderDim
        o.decoderHeads = decoderHeads
        o.maskRatio = maskRatio
        o.steps = steps
        o.batchSize = batchSize
        o.learningRate = lr
        o.weightDecay = weightDecay
        o.frames = frames
        o.size = size
        o.tubeletFrames = tubelet
        o.patch = patch
        o.trainingSet = data
        o.trainingClips = trainingClips
        o.probeClips = probeClips
        o.dumpSteps = dumpSteps?.value.steps
        o.normalizeTargets = normalizeTargets
        o.inputMean = inputMean
        o.inputStd = inputStd
        o.texturedBackgrounds = texturedBackgrounds
        o.objectScale = objectScale
        o.deadLeaves = deadLeaves
        o.distractors = distractors
        o.positionBase = positionBase
        o.probeSets = probeSets?.names
        o.occludedProbeSet = occludedProbeSet
        return o
    }

    func config() throws -> TrainingConfig { try overrides.config() }
}

extension BWTrain {
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Train one run (the default subcommand).")

        @OptionGroup var model: ModelOptions
        @Option(help: "Output directory (default: runs/<run>).") var out: String?
        @Flag(help: "Continue from <out>/checkpoint.h5 if it exists.") var resume = false
        @Flag(help: "Print nothing but errors.") var quiet = false
        @Flag(help: "Print the resolved configuration as JSON and exit.") var printConfig = false
        @OptionGroup var job: JobOptions
        @Option(help: .hidden) var stopAfter: Int?

        func run() throws {
            try job.run(printError: printError) { world in
                let quiet = self.quiet || !world.isRoot
                let config = try model.config()
                if printConfig { print(config.json); return }
                let dir = out ?? "runs/\(config.run)"
                if FileManager.default.fileExists(atPath: dir + "/done.json") && resume {
                    if !quiet { print("\(config.run): already complete in \(dir)") }
                    return
                }
                let trainer = try Trainer(config: config, directory: dir, resume: resume, communicator: world)
                trainer.stopAfter = stopAfter
                let tty = isatty(STDERR_FILENO) != 0
                if !quiet {
                    let ranks = world.size > 1 ? " on \(world.size) processes" : ""
                    say("\(config.run): \(config.regime.rawValue), L = \(config.layers), K = \(config.blocks), D = \(config.dim), \(trainer.model.parameterCount) parameters, \(config.steps) steps of \(config.batchSize) clips\(ranks) -> \(dir)" + (trainer.step > 0 ? " (resuming at step \(trainer.step))" : ""))
                }
                try trainer.run { p in
                    guard !quiet else { return }
                    if let m = p.message { say((tty ? "\r\u{1B}[K" : "") + m); return }
                    let losses = p.losses.map { $0.isNaN ? "-" : String(format: "%.4f", $0) }.joined(separator: " ")
                    let eta = p.secondsRemaining.isFinite ? String(format: "%d:%02d", Int(p.secondsRemaining) / 60, Int(p.secondsRemaining) % 60) : "?"
                    let block = p.activeBlock.map { " block \($0 + 1)" } ?? ""
                    let line = String(format: "step %d/%d%@  loss %@  %.0f clips/s  ETA %@", p.step, p.totalSteps, block, losses, p.clipsPerSecond, eta)
                    if tty { FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8)) } else { say(line) }
                }
                if tty && !quiet { FileHandle.standardError.write(Data("\n".utf8)) }
                if !quiet { say("\(config.run): done, dumps in \(dir)") }
            }
        }

        func say(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
    }
}

extension BWTrain {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time training steps of each regime and print clips/s and achieved GFLOP/s beside the measured sgemm rate.",
            discussion: "Runs --steps steps per regime (no dumps, no checkpoints) in a temporary directory. Build with -c release.")

        @OptionGroup var model: ModelOptions
        @Option(help: "Timed steps per regime (after one warm-up step).") var timedSteps = 10
        @OptionGroup var job: JobOptions

        func run() throws {
            try job.run(printError: printError) { world in
                if world.isRoot { FileHandle.standardError.write(Data("measuring sgemm (2048^3) ...\n".utf8)) }
                // Under MPI every rank measures at once and the rates are summed: the job's sgemm rate.
                let sgemm = world.sum(GEMMRate.measure(Float.self))
                let bench = TrainingBenchmark(config: try model.config(), timedSteps: timedSteps)
                let rows = try bench.run(communicator: world) { if world.isRoot { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } }
                if world.isRoot {
                    if world.size > 1 {
                        print(String(format: "machine: sgemm %.1f GFLOP/s (best of 3, 2048^3, summed over %d ranks of %d thread(s))", sgemm, world.size, ThreadSetting.count))
                    } else {
                        print(String(format: "machine: sgemm %.1f GFLOP/s (best of 3, 2048^3, %d cores)", sgemm, ThreadSetting.count))
                    }
                    print(bench.report(rows, sgemm: sgemm), terminator: "")
                }
            }
        }
    }
}
