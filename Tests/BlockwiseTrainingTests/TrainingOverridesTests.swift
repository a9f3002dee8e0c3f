@testable import BlockwiseTraining
import ActivationStore
import Foundation
import TestSupport
import XCTest

/// What `bwtrain` resolves from a preset and its options: overrides, dump-step rescaling, run names,
/// and the benchmark's set-up (moved from the executable into the library).
final class TrainingOverridesTests: XCTestCase {
    func testNoOverridesGiveThePresetAndTheDefaultRunName() throws {
        var o = TrainingOverrides()
        o.preset = .quick
        var expected = TrainingConfig.preset(.quick)
        expected.run = "quick-sim-k2-s0"
        XCTAssertEqual(try o.config(), expected)
        XCTAssertEqual(try TrainingConfig.preset("quick"), TrainingConfig.preset(.quick))
        XCTAssertEqual(try TrainingConfig.preset("default"), TrainingConfig())
    }

    func testUnknownPresetIsRejectedByName() {
        XCTAssertThrowsError(try Preset(parsing: "huge")) {
            XCTAssertEqual("\($0)", "unknown preset 'huge'; known presets: quick, default")
        }
        XCTAssertEqual(try Preset(parsing: "default"), .default)
    }

    func testRunNames() {
        XCTAssertEqual(TrainingConfig.runName(preset: .default, regime: .e2e, blocks: 4, seed: 0), "default-e2e-k4-s0")
        XCTAssertEqual(TrainingConfig.runName(preset: .default, regime: .simultaneous, blocks: 6, seed: 3), "default-sim-k6-s3")
        XCTAssertEqual(TrainingConfig.runName(preset: .quick, regime: .sequential, blocks: 2, seed: 1), "quick-seq-k2-s1")
        var o = TrainingOverrides()
        o.run = "mine"
        XCTAssertEqual(try o.config().run, "mine")
        o.run = nil
        o.regime = .e2e
        o.blocks = 6
        o.seed = 7
        XCTAssertEqual(try o.config().run, "default-e2e-k6-s7")
    }

    func testDumpStepsRescale() {
        // s · new / old, rounded down; duplicates merged; sorted.
        XCTAssertEqual(TrainingConfig.rescaled(dumpSteps: [0, 60, 120], from: 120, to: 60), [0, 30, 60])
        XCTAssertEqual(TrainingConfig.rescaled(dumpSteps: [0, 60, 120], from: 120, to: 7), [0, 3, 7])
        XCTAssertEqual(TrainingConfig.rescaled(dumpSteps: [0, 1, 2, 120], from: 120, to: 10), [0, 10])
        XCTAssertEqual(TrainingConfig.rescaled(dumpSteps: [5, 9], from: 0, to: 10), [0])
    }

    func testStepsOverrideMovesDumpsCheckpointsAndWarmUp() throws {
        var o = TrainingOverrides()
        o.preset = .quick
        o.steps = 8
        let c = try o.config()
        XCTAssertEqual(c.steps, 8)
        XCTAssertEqual(c.dumpSteps, [0, 4, 8])
        XCTAssertEqual(c.checkpointEvery, 8, "capped at the run's length")
        XCTAssertEqual(c.warmupSteps, 2, "at most a quarter of the steps")
        o.dumpSteps = [3]
        XCTAssertEqual(try o.config().dumpSteps, [3], "explicit dump steps are kept as given")
        o.dumpSteps = []
        XCTAssertEqual(try o.config().dumpSteps, [], "an empty list: no dumps")
    }

    func testEachOverrideReplacesThePresetValue() throws {
        var o = TrainingOverrides()
        o.preset = .quick
        o.layers = 6; o.blocks = 3; o.dim = 64; o.heads = 4
        o.decoderDepth = 2; o.decoderDim = 48; o.decoderHeads = 3; o.maskRatio = 0.5
        o.batchSize = 4; o.learningRate = 1e-3; o.weightDecay = 0.3; o.frames = 4; o.size = 16; o.tubeletFrames = 1; o.patch = 4
        o.trainingSet = "gratings"; o.trainingClips = 32; o.probeClips = 5
        o.normalizeTargets = false; o.inputMean = 0.5; o.inputStd = 0.25; o.texturedBackgrounds = false
        o.positionBase = 100; o.probeSets = ["gratings", "actions"]; o.occludedProbeSet = ""
        let c = try o.config()
        XCTAssertEqual([c.layers, c.blocks, c.dim, c.heads, c.decoderDepth, c.decoderDim, c.decoderHeads], [6, 3, 64, 4, 2, 48, 3])
        XCTAssertEqual([c.batchSize, c.frames, c.height, c.width, c.tubeletFrames, c.patch, c.trainingClips, c.probeClips],
                       [4, 4, 16, 16, 1, 4, 32, 5])
        XCTAssertEqual(c.attentionClips, 5, "capped at the probe clips")
        XCTAssertEqual([c.maskRatio, c.learningRate, c.inputMean, c.inputStd, c.positionBase], [0.5, 1e-3, 0.5, 0.25, 100])
        XCTAssertEqual(c.weightDecay, 0.3)
        XCTAssertEqual(c.trainingSet, "gratings")
        XCTAssertFalse(c.normalizeTargets)
        XCTAssertFalse(c.texturedBackgrounds)
        XCTAssertEqual(c.probeSets, ["gratings", "actions"])
        XCTAssertEqual(c.occludedProbeSet, "")
    }

    func testInvalidCombinationsAndMissingDataFilesThrow() {
        var o = TrainingOverrides()
        o.blocks = 5
        XCTAssertThrowsError(try o.config()) { XCTAssertTrue("\($0)".contains("--blocks 5 does not divide 12 layers"), "\($0)") }
        o = TrainingOverrides()
        o.trainingSet = "/nonexistent/clips.h5"
        XCTAssertThrowsError(try o.config()) { XCTAssertEqual("\($0)", "/nonexistent/clips.h5: no such data file") }
    }

    func testBenchmarkTimingConfiguration() {
        var c = TrainingConfig.preset(.quick)
        c.regime = .e2e
        let bench = TrainingBenchmark(config: c, timedSteps: 10)
        for regime in Regime.trainable {
            let t = bench.timingConfig(regime)
            XCTAssertEqual(t.regime, regime)
            XCTAssertEqual(t.steps, 11, "one warm-up step, then the timed ones")
            XCTAssertEqual(t.dumpSteps, [])
            XCTAssertEqual(t.checkpointEvery, 0)
            XCTAssertEqual(t.warmupSteps, 0)
            XCTAssertEqual(t.logEvery, 1)
        }
        let rows = [TrainingBenchmark.Row(regime: .e2e, secondsPerStep: 0.25, clipsPerSecond: 64, gflops: 12.5),
                    TrainingBenchmark.Row(regime: .simultaneous, secondsPerStep: 0.125, clipsPerSecond: 128, gflops: 25)]
        XCTAssertEqual(bench.report(rows, sgemm: 50), """
            model: L = 4, K = 2, D = 48, heads 2, T = \(c.tokens) tokens (\(c.visibleTokens) visible), decoder 1 x 32, batch 16
            regime        s/step  clips/s  GFLOP/s  % of sgemm
            e2e            0.250       64     12.5         25%
            simultaneous   0.125      128     25.0         50%

            """)
    }

    func testCommandLineOptionsAreCheckedBeforeTraining() throws {
        let bwtrain = productsDirectory.appendingPathComponent("bwtrain").path
        let bad = try runProcess(bwtrain, ["--dump-steps", "1,x", "--print-config"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.stderr, "bwtrain: error: --dump-steps must be comma-separated step numbers\n")
        let r = try runProcess(bwtrain, ["--preset", "quick", "--steps", "60", "--probe-sets", "gratings, actions", "--print-config"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let c = try TrainingConfig.fromJSON(r.stdout)
        XCTAssertEqual(c.dumpSteps, [0, 30, 60])
        XCTAssertEqual(c.probeSets, ["gratings", "actions"])
        XCTAssertEqual(c.run, "quick-sim-k2-s0")
        let none = try runProcess(bwtrain, ["--preset", "quick", "--dump-steps", "", "--print-config"])
        XCTAssertEqual(try TrainingConfig.fromJSON(none.stdout).dumpSteps, [])
    }
}
