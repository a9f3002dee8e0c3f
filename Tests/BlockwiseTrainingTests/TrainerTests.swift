@testable import BlockwiseTraining
import ActivationStore
import Foundation
import TestSupport
import XCTest

/// A quick-preset configuration cut down further so each test trains in seconds.
func smallConfig(_ regime: Regime, steps: Int = 24) throws -> TrainingConfig {
    var c = try TrainingConfig.preset("quick")
    c.regime = regime
    c.run = "test-\(regime.rawValue)"
    c.steps = steps
    c.batchSize = 8
    c.trainingClips = 64
    c.probeClips = 24
    c.attentionClips = 4
    c.dumpSteps = [steps]
    c.checkpointEvery = 0
    c.logEvery = 2
    c.warmupSteps = 2
    c.learningRate = 2e-3
    c.probeSets = ["gratings"]
    c.occludedProbeSet = ""
    return c
}

final class TrainerTests: XCTestCase {
    /// Local losses fall over a short run in every regime (mean of the last logged quarter below the first).
    func testLocalLossesFallInEveryRegime() throws {
        for regime in Regime.trainable {
            let dir = TemporaryDirectory()
            let c = try smallConfig(regime, steps: regime == .sequential ? 48 : 24)
            let trainer = try Trainer(config: c, directory: dir.path, resume: false)
            try trainer.run()
            let k = c.blocks
            let rows = trainer.curveLosses.count / k
            XCTAssertEqual(rows, trainer.curveSteps.count)
            for b in 0..<k {
                let series = (0..<rows).map { trainer.curveLosses[$0 * k + b] }.filter { !$0.isNaN }
                if regime == .e2e && b < k - 1 { XCTAssertTrue(series.isEmpty); continue }
                XCTAssertGreaterThanOrEqual(series.count, 4, "\(regime) block \(b + 1)")
                let q = max(1, series.count / 4)
                let first = series.prefix(q).reduce(0, +) / Float(q), last = series.suffix(q).reduce(0, +) / Float(q)
                XCTAssertLessThan(last, first, "\(regime) block \(b + 1): loss did not fall (\(series))")
            }
        }
    }

    /// A run stopped at a checkpoint and resumed reaches exactly the weights of an uninterrupted run.
    func testResumeReachesTheSameWeights() throws {
        var c = try smallConfig(.simultaneous, steps: 12)
        c.checkpointEvery = 6
        c.dumpSteps = []
        let a = TemporaryDirectory(), b = TemporaryDirectory()
        let whole = try Trainer(config: c, directory: a.path, resume: false)
        try whole.run()
        let first = try Trainer(config: c, directory: b.path, resume: false)
        first.stopAfter = 6
        try first.run()
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.file("done.json")))
        let resumed = try Trainer(config: c, directory: b.path, resume: true)
        XCTAssertEqual(resumed.step, 6)
        try resumed.run()
        XCTAssertEqual(resumed.model.params.array, whole.model.params.array)
        XCTAssertEqual(resumed.curveLosses, whole.curveLosses)
        XCTAssertTrue(FileManager.default.fileExists(atPath: b.file("done.json")))
    }

    func testResumeRefusesADifferentConfiguration() throws {
        var c = try smallConfig(.e2e, steps: 4)
        c.dumpSteps = []
        let dir = TemporaryDirectory()
        try Trainer(config: c, directory: dir.path, resume: false).run()
        c.dim = 32
        XCTAssertThrowsError(try Trainer(config: c, directory: dir.path, resume: true)) { e in
            XCTAssertTrue("\(e)".contains("different configuration"), "\(e)")
        }
    }

    /// Dumps are valid bwact files with every depth, attention, positions, labels and the loss curve.
    func testDumpsValidate() throws {
        let dir = TemporaryDirectory()
        var c = try smallConfig(.sequential, steps: 8)
        c.dumpSteps = [0, 8]
        c.occludedProbeSet = "gratings"
        let trainer = try Trainer(config: c, directory: dir.path, resume: false)
        try trainer.run()
        let names = dir.contents.filter { $0.hasSuffix(".h5") && $0 != "checkpoint.h5" }
        XCTAssertEqual(names, ["gratings-onepatch-step000000.h5", "gratings-onepatch-step000008.h5", "gratings-step000000.h5", "gratings-step000008.h5"])
        for n in names {
            let report = ActivationValidator.validate(path: dir.file(n))
            XCTAssertTrue(report.isValid, "\(n): \(report.violations)")
        }
        let f = try ActivationFile(path: dir.file("gratings-step000008.h5"))
        XCTAssertEqual(f.layerCount, c.layers)
        XCTAssertEqual([f.clipCount, f.tokenCount, f.featureCount], [c.probeClips, c.tokens, c.dim])
        XCTAssertEqual(f.metadata.blockEnds, c.blockEnds)
        XCTAssertEqual(f.metadata.regime, "sequential")
        XCTAssertEqual(f.attentionShapes[1], AttentionShape(clips: c.attentionClips, heads: c.heads, tokens: c.tokens))
        XCTAssertEqual(try TrainingConfig.fromJSON(f.metadata.config), c)
        let curve = try XCTUnwrap(f.trainingCurve())
        XCTAssertEqual(curve.blocks, c.blocks)
        XCTAssertEqual(curve.steps.last, 8)
        // Attention rows are softmax distributions.
        let att = try f.attention(depth: 2)
        for r in stride(from: 0, to: att.count, by: c.tokens) { XCTAssertEqual(att[r..<(r + c.tokens)].reduce(0, +), 1, accuracy: 1e-4) }
    }

    /// Bad configurations are rejected before any training starts, with every problem named.
    func testBadConfigurationsAreRejected() throws {
        var c = TrainingConfig()
        c.blocks = 5
        c.maskRatio = 1.2
        c.patch = 7
        c.tubeletFrames = 3
        let problems = c.problems()
        XCTAssertTrue(problems.contains("--blocks 5 does not divide 12 layers into equal blocks"), "\(problems)")
        XCTAssertTrue(problems.contains("mask ratio 1.2 must lie in (0, 1)"), "\(problems)")
        XCTAssertTrue(problems.contains("patch 7 must divide the frame size 32x32"), "\(problems)")
        XCTAssertTrue(problems.contains("tubelet frames 3 must divide the clip's 8 frames"), "\(problems)")
        XCTAssertThrowsError(try MaskedVideoModel(config: c))
    }

    func testCommandLineRejectsBadInputBeforeTraining() throws {
        let dir = TemporaryDirectory()
        for (args, message) in [(["--blocks", "5"], "--blocks 5 does not divide 12 layers"),
                                (["--mask-ratio", "0"], "mask ratio 0.0 must lie in (0, 1)"),
                                (["--weight-decay", "inf"], "learning rates and weight decay must be finite"),
                                (["--patch", "5"], "patch 5 must divide the frame size 32x32"),
                                (["--data", dir.file("missing.h5")], "\(dir.file("missing.h5")): no such data file"),
                                (["--preset", "huge"], "unknown preset 'huge'")] {
            let r = try runProcess(productsDirectory.appendingPathComponent("bwtrain").path, ["--out", dir.file("run")] + args)
            XCTAssertEqual(r.status, 1, "\(args)")
            XCTAssertTrue(r.stderr.hasPrefix("bwtrain: error: ") && r.stderr.contains(message), "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("run")), "nothing is written")
        }
    }

    /// A disk that fills up while a dump is written (simulated by a file-size limit, with SIGXFSZ ignored
    /// so that writes fail with EFBIG as they would with ENOSPC) gives one line naming the file and the
    /// reason, exit status 1 and no partial dump. HDF5's clean-up at exit used to crash on the file whose
    /// close had failed (status 139).
    func testAFullDiskGivesOneLineAndNoCrash() throws {
        let dir = TemporaryDirectory()
        let bwtrain = productsDirectory.appendingPathComponent("bwtrain").path
        let script = "trap '' XFSZ; ulimit -f 200; exec \"$0\" --preset quick --regime e2e --threads 1 --quiet --out \"$1\""
        let r = try runProcess("/bin/bash", ["-c", script, bwtrain, dir.file("run")])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stderr, "bwtrain: error: \(dir.file("run"))/gratings-step000000.h5: /layers/00/tokens: cannot write (file write failed: File too large)\n")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.file("run"))
        XCTAssertEqual(left, ["config.json"], "no dump and no temporary file is left")
    }
}

/// Users' clips (`/clips` uint8 [N,F,H,W,C], `/labels/<target>`) replace the synthetic training set.
final class UserClipTrainingTests: XCTestCase {
    func testTrainsOnAnHDF5ClipFile() throws {
        guard let py = debianPython(modules: ["h5py", "numpy"]) else {
            if pythonRequired { XCTFail("/usr/bin/python3 with h5py is required") }
            throw XCTSkip("h5py not available")
        }
        let dir = TemporaryDirectory()
        let code = """
        import h5py, numpy as np, sys
        rng = np.random.default_rng(0)
        with h5py.File(sys.argv[1], "w") as f:
            f.create_dataset("clips", data=rng.integers(0, 256, (20, 8, 32, 32, 3), dtype=np.uint8))
            f.create_dataset("labels/kind", data=np.arange(20, dtype=np.int64) % 2)
        """
        let w = try runProcess(py, ["-c", code, dir.file("clips.h5")])
        XCTAssertEqual(w.status, 0, w.stderr)
        var c = try smallConfig(.e2e, steps: 2)
        c.trainingSet = dir.file("clips.h5")
        c.dumpSteps = []
        let trainer = try Trainer(config: c, directory: dir.file("run"), resume: false)
        try trainer.run()
        XCTAssertEqual(trainer.step, 2)
        // A file whose clips do not match the configured geometry is refused with a clear message.
        c.frames = 4
        c.tubeletFrames = 2
        XCTAssertThrowsError(try Trainer(config: c, directory: dir.file("run2"), resume: false)) { e in
            XCTAssertTrue("\(e)".contains("clips are 8x32x32x3, the configuration expects 4x32x32x3"), "\(e)")
        }
    }
}
