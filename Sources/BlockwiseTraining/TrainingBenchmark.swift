import ActivationStore
import Collective
import Foundation
import LinearAlgebra

/// `bwtrain bench`: times training steps of each regime of one configuration and sets the achieved
/// GFLOP/s beside the machine's measured sgemm rate. Figures only; tests assert nothing of them.
public struct TrainingBenchmark {
    /// One regime's timing.
    public struct Row: Sendable {
        public var regime: Regime
        public var secondsPerStep: Double
        public var clipsPerSecond: Double
        /// Modelled floating-point operations per second (`FlopModel`), in GFLOP/s.
        public var gflops: Double
    }

    public var config: TrainingConfig
    /// Timed steps per regime, after one warm-up step.
    public var timedSteps: Int

    public init(config: TrainingConfig, timedSteps: Int) {
        self.config = config
        self.timedSteps = timedSteps
    }

    /// `config` set up for timing `regime`: `timedSteps + 1` steps, no dumps, no checkpoints, no warm-up.
    public func timingConfig(_ regime: Regime) -> TrainingConfig {
        var c = config
        c.regime = regime
        c.steps = timedSteps + 1
        c.dumpSteps = []
        c.checkpointEvery = 0
        c.warmupSteps = 0
        c.logEvery = 1
        return c
    }

    /// Trains each regime in a temporary directory (removed afterwards): one warm-up step, then
    /// `timedSteps` timed ones. `log` hears which regime starts. Under MPI every rank trains its share
    /// and a step takes as long as the slowest rank.
    public func run(communicator: any Communicator = SingleProcess(), log: (String) -> Void) throws -> [Row] {
        var rows: [Row] = []
        for regime in Regime.trainable {
            let c = timingConfig(regime)
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bwtrain-bench-\(getpid())-\(regime.rawValue)").path
            defer { try? FileManager.default.removeItem(atPath: dir) }
            log("  \(regime.rawValue) ...")
            let trainer = try Trainer(config: c, directory: dir, resume: false, communicator: communicator)
            trainer.stopAfter = 1
            try trainer.run()
            trainer.stopAfter = nil
            let seconds = communicator.max(try ContinuousClock().measure { try trainer.run() }.seconds)
            // The sequential regime runs block 1 in these few steps.
            let flops = FlopModel.trainingStep(c, activeBlock: regime == .sequential ? 0 : nil) * Double(timedSteps)
            rows.append(Row(regime: regime, secondsPerStep: seconds / Double(timedSteps),
                            clipsPerSecond: Double(timedSteps * c.batchSize) / seconds, gflops: flops / seconds / 1e9))
        }
        return rows
    }

    /// The model line and the table `bwtrain bench` prints, beside the machine's sgemm rate.
    public func report(_ rows: [Row], sgemm: Double) -> String {
        let c = config
        var lines = ["model: L = \(c.layers), K = \(c.blocks), D = \(c.dim), heads \(c.heads), T = \(c.tokens) tokens (\(c.visibleTokens) visible), decoder \(c.decoderDepth) x \(c.decoderDim), batch \(c.batchSize)"]
        let header = ["regime", "s/step", "clips/s", "GFLOP/s", "% of sgemm"]
        let cells = rows.map { r in
            [r.regime.rawValue, String(format: "%.3f", r.secondsPerStep), String(format: "%.0f", r.clipsPerSecond),
             String(format: "%.1f", r.gflops), String(format: "%.0f%%", 100 * r.gflops / sgemm)]
        }
        let widths = header.indices.map { i in ([header] + cells).map { $0[i].count }.max()! }
        for r in [header] + cells {
            lines.append(r.enumerated().map { i, s in
                i == 0 ? s.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - s.count) + s
            }.joined(separator: "  "))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
