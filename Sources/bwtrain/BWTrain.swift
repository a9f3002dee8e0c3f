import ArgumentParser
import BlockwiseTraining
import Collective
import Foundation
import LinearAlgebra

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
        version: "0.3.0",
        subcommands: [Train.self, Bench.self],
        defaultSubcommand: Train.self)
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data(("bwtrain: error: " + message + "\n").utf8))
}

extension Regime: ExpressibleByArgument {}

/// Model and training options; each overrides the preset when given.
struct ModelOptions: ParsableArguments {
    @Option(help: "Preset: quick or default.") var preset = "default"
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
    @Option(help: "Frames per clip.") var frames: Int?
    @Option(help: "Frame height and width in pixels.") var size: Int?
    @Option(help: "Tubelet frames.") var tubelet: Int?
    @Option(help: "Patch size in pixels.") var patch: Int?
    @Option(help: "Training clips: a synthetic set (actions, gratings, double-gratings, or mixed: a third of each) or an HDF5 file with /clips uint8 [N,F,H,W,C] and /labels/<target>.") var data: String?
    @Option(help: "Clips in the synthetic training set.") var trainingClips: Int?
    @Option(help: "Clips per probe set in the dumps.") var probeClips: Int?
    @Option(help: "Comma-separated dump steps (0 = before training).") var dumpSteps: String?
    @Flag(inversion: .prefixedNo, help: "Regress per-patch normalised pixels (VideoMAE's default) instead of raw pixels (default: the preset's).") var normalizeTargets: Bool?
    @Option(help: "Encoder inputs are (pixel − mean) / std (default: the preset's).") var inputMean: Double?
    @Option(help: "See --input-mean.") var inputStd: Double?
    @Flag(inversion: .prefixedNo, help: "Synthetic actions over textured backgrounds (default: the preset's).") var texturedBackgrounds: Bool?
    @Option(help: "Base of the sin-cos position frequencies (default: the preset's).") var positionBase: Double?
    @Option(help: "Comma-separated probe sets to dump (default: the preset's).") var probeSets: String?
    @Option(help: "Probe set whose occluded variant is dumped for OccDrop; empty for none (default: the preset's).") var occludedProbeSet: String?

    func config() throws -> TrainingConfig {
        var c = try TrainingConfig.preset(preset)
        c.regime = regime
        c.seed = seed
        if let layers { c.layers = layers }
        if let blocks { c.blocks = blocks }
        if let dim { c.dim = dim }
        if let heads { c.heads = heads }
        if let decoderDepth { c.decoderDepth = decoderDepth }
        if let decoderDim { c.decoderDim = decoderDim }
        if let decoderHeads { c.decoderHeads = decoderHeads }
        if let maskRatio { c.maskRatio = maskRatio }
        if let steps {
            let old = c.steps
            c.steps = steps
            if dumpSteps == nil { c.dumpSteps = Array(Set(c.dumpSteps.map { old == 0 ? 0 : $0 * steps / old })).sorted() }
            if c.checkpointEvery > steps { c.checkpointEvery = steps }
            c.warmupSteps = min(c.warmupSteps, steps / 4)
        }
        if let batchSize { c.batchSize = batchSize }
        if let lr { c.learningRate = lr }
        if let frames { c.frames = frames }
        if let size { c.height = size; c.width = size }
        if let tubelet { c.tubeletFrames = tubelet }
        if let patch { c.patch = patch }
        if let data { c.trainingSet = data }
        if let trainingClips { c.trainingClips = trainingClips }
        if let probeClips { c.probeClips = probeClips; c.attentionClips = min(c.attentionClips, probeClips) }
        if let dumpSteps {
            let parsed = dumpSteps.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard parsed.allSatisfy({ $0 != nil }) else { throw TrainingError("--dump-steps must be comma-separated step numbers") }
            c.dumpSteps = parsed.map { $0! }
        }
        if let normalizeTargets { c.normalizeTargets = normalizeTargets }
        if let positionBase { c.positionBase = positionBase }
        if let inputMean { c.inputMean = inputMean }
        if let inputStd { c.inputStd = inputStd }
        if let texturedBackgrounds { c.texturedBackgrounds = texturedBackgrounds }
        if let probeSets { c.probeSets = probeSets.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        if let occludedProbeSet { c.occludedProbeSet = occludedProbeSet }
        c.run = run ?? "\(preset)-\(c.regime == .e2e ? "e2e" : c.regime == .simultaneous ? "sim" : "seq")-k\(c.blocks)-s\(seed)"
        if c.trainingSet.hasSuffix(".h5"), !FileManager.default.fileExists(atPath: c.trainingSet) {
            throw TrainingError("\(c.trainingSet): no such data file")
        }
        try c.validate()
        return c
    }
}

extension BWTrain {
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Train one run (the default subcommand).")

        @OptionGroup var model: ModelOptions
        @Option(help: "Output directory (default: runs/<run>).") var out: String?
        @Flag(help: "Continue from <out>/checkpoint.h5 if it exists.") var resume = false
        @Flag(help: "Print nothing but errors.") var quiet = false
        @Flag(help: "Print the resolved configuration as JSON and exit.") var printConfig = false
        @Option(help: "Threads for BLAS and the element-wise kernels (default: the machine's cores; 1 per rank under MPI).") var threads: Int?
        @Option(help: .hidden) var stopAfter: Int?

        func run() throws {
            var comm: (any Communicator)? = nil
            do {
                let world = try Collective.world()
                comm = world
                ThreadSetting.set(threads ?? (world.size > 1 ? 1 : ThreadSetting.machineCores))
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
            } catch let e as ExitCode {
                throw e
            } catch {
                if let comm, comm.size > 1 {
                    printError("rank \(comm.rank) of \(comm.size): \(error)")
                    comm.abort(status: 1)
                }
                printError("\(error)")
                throw ExitCode.failure
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
        @Option(help: "Threads for BLAS and the element-wise kernels (default: the machine's cores; 1 per rank under MPI).") var threads: Int?

        func run() throws {
            var comm: (any Communicator)? = nil
            do {
                let world = try Collective.world()
                comm = world
                ThreadSetting.set(threads ?? (world.size > 1 ? 1 : ThreadSetting.machineCores))
                func say(_ line: String) { if world.isRoot { print(line) } }
                if world.isRoot { FileHandle.standardError.write(Data("measuring sgemm (2048^3) ...\n".utf8)) }
                // Under MPI every rank measures at once and the rates are summed: the job's sgemm rate.
                let sgemm = world.sum(GEMMRate.measure(Float.self))
                if world.size > 1 {
                    say(String(format: "machine: sgemm %.1f GFLOP/s (best of 3, 2048^3, summed over %d ranks of %d thread(s))", sgemm, world.size, ThreadSetting.count))
                } else {
                    say(String(format: "machine: sgemm %.1f GFLOP/s (best of 3, 2048^3, %d cores)", sgemm, ThreadSetting.count))
                }
                var rows: [[String]] = []
                for regime in Regime.allCases {
                    var c = try model.config()
                    c.regime = regime
                    c.steps = timedSteps + 1
                    c.dumpSteps = []
                    c.checkpointEvery = 0
                    c.warmupSteps = 0
                    c.logEvery = 1
                    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bwtrain-bench-\(getpid())-\(regime.rawValue)").path
                    defer { try? FileManager.default.removeItem(atPath: dir) }
                    if world.isRoot { FileHandle.standardError.write(Data("  \(regime.rawValue) ...\n".utf8)) }
                    let trainer = try Trainer(config: c, directory: dir, resume: false, communicator: world)
                    trainer.stopAfter = 1
                    try trainer.run()
                    trainer.stopAfter = nil
                    let start = DispatchTime.now().uptimeNanoseconds
                    try trainer.run()
                    let seconds = world.max(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                    // The sequential regime runs block 1 in these few steps.
                    let flops = FlopModel.trainingStep(c, activeBlock: regime == .sequential ? 0 : nil) * Double(timedSteps)
                    rows.append([regime.rawValue, String(format: "%.3f", seconds / Double(timedSteps)),
                                 String(format: "%.0f", Double(timedSteps * c.batchSize) / seconds),
                                 String(format: "%.1f", flops / seconds / 1e9), String(format: "%.0f%%", 100 * flops / seconds / 1e9 / sgemm)])
                }
                let c = try model.config()
                say("model: L = \(c.layers), K = \(c.blocks), D = \(c.dim), heads \(c.heads), T = \(c.tokens) tokens (\(c.visibleTokens) visible), decoder \(c.decoderDepth) x \(c.decoderDim), batch \(c.batchSize)")
                let header = ["regime", "s/step", "clips/s", "GFLOP/s", "% of sgemm"]
                let widths = header.indices.map { i in ([header] + rows).map { $0[i].count }.max()! }
                for r in [header] + rows {
                    say(r.enumerated().map { i, s in i == 0 ? s.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - s.count) + s }.joined(separator: "  "))
                }
            } catch {
                if let comm, comm.size > 1 {
                    printError("rank \(comm.rank) of \(comm.size): \(error)")
                    comm.abort(status: 1)
                }
                printError("\(error)")
                throw ExitCode.failure
            }
        }
    }
}
