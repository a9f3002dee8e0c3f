import ActivationStore
import Foundation
import TestSupport
import XCTest

/// `mpirun -n R bwtrain` against one process of the same build: the same global batch on R ranks must
/// reach the same weights (≤ 1e-5 relative after 10 steps), write its files once, resume, and end the
/// whole job with the rank and message when a rank fails.
///
/// Needs the MPI build of bwtrain (`swift build --traits MPI`), which the test command makes and names
/// in BWSSL_MPI_BWTRAIN; with BWSSL_REQUIRE_MPI=1 (set by the test command) its absence is a failure.
final class DataParallelTests: XCTestCase {
    var binary = ""
    var mpirun = ""

    override func setUpWithError() throws {
        let env = ProcessInfo.processInfo.environment
        let required = env["BWSSL_REQUIRE_MPI"] == "1"
        let candidates = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"]
        guard let bin = env["BWSSL_MPI_BWTRAIN"], FileManager.default.isExecutableFile(atPath: bin),
              let run = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            if required { XCTFail("BWSSL_REQUIRE_MPI=1 but BWSSL_MPI_BWTRAIN or mpirun is missing"); return }
            throw XCTSkip("no MPI build of bwtrain (BWSSL_MPI_BWTRAIN) or no mpirun")
        }
        binary = bin
        mpirun = run
    }

    /// Small runs of the quick preset: 10 steps of 8 clips.
    func options(_ out: String, regime: String, batch: Int = 8, steps: Int = 10, extra: [String] = []) -> [String] {
        ["--preset", "quick", "--regime", regime, "--steps", String(steps), "--batch-size", String(batch),
         "--training-clips", "64", "--probe-clips", "24", "--probe-sets", "gratings", "--occluded-probe-set", "",
         "--dump-steps", String(steps), "--out", out, "--quiet"] + extra
    }

    func launch(_ ranks: Int, _ arguments: [String]) throws -> ProcessResult {
        // Root may run Open MPI only when it says so; --oversubscribe lets R exceed the cores.
        try runProcess(mpirun, ["-n", String(ranks), "--oversubscribe", binary] + arguments,
                       environment: ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                                     "OMPI_MCA_rmaps_base_oversubscribe": "1"])
    }

    func relativeDifference(_ a: [Float], _ b: [Float]) -> Double {
        XCTAssertEqual(a.count, b.count)
        var d = 0.0, n = 0.0
        for (x, y) in zip(a, b) where !x.isNaN {
            d += Double(x - y) * Double(x - y)
            n += Double(x) * Double(x)
        }
        return (d / max(n, 1e-300)).squareRoot()
    }

    func assertSameRun(_ one: String, _ many: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let a = try CheckpointFile.read(from: one + "/checkpoint.h5"), b = try CheckpointFile.read(from: many + "/checkpoint.h5")
        XCTAssertEqual(a.ints["step"], b.ints["step"], file: file, line: line)
        for key in ["params", "adam_m", "adam_v", "curve_losses"] {
            let r = relativeDifference(a.arrays[key] ?? [], b.arrays[key] ?? [])
            XCTAssertLessThanOrEqual(r, 1e-5, "\(key): relative difference \(r)", file: file, line: line)
        }
        XCTAssertEqual(try String(contentsOfFile: one + "/config.json", encoding: .utf8),
                       try String(contentsOfFile: many + "/config.json", encoding: .utf8), file: file, line: line)
    }

    func testTwoRanksReachTheWeightsOfOneProcess() throws {
        for regime in ["e2e", "simultaneous", "sequential"] {
            let one = TemporaryDirectory(), many = TemporaryDirectory()
            let r1 = try runProcess(binary, options(one.path, regime: regime))
            XCTAssertEqual(r1.status, 0, r1.stderr)
            let r2 = try launch(2, options(many.path, regime: regime))
            XCTAssertEqual(r2.status, 0, r2.stderr)
            try assertSameRun(one.path, many.path)
            // The dump is written once, by rank 0, and holds the same activations.
            let dump = "/gratings-step000010.h5"
            let d1 = try ActivationFile(path: one.path + dump), d2 = try ActivationFile(path: many.path + dump)
            let t1 = try d1.tokens(depth: 2, clips: 0..<24), t2 = try d2.tokens(depth: 2, clips: 0..<24)
            XCTAssertLessThanOrEqual(relativeDifference(t1, t2), 1e-5, regime)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: many.path).sorted(),
                           try FileManager.default.contentsOfDirectory(atPath: one.path).sorted())
        }
    }

    /// 7 clips on 2 ranks (4 + 3): the gradients are weighted by each share's fraction of the batch.
    func testUnevenSharesAreWeighted() throws {
        let one = TemporaryDirectory(), many = TemporaryDirectory()
        let r1 = try runProcess(binary, options(one.path, regime: "e2e", batch: 7))
        XCTAssertEqual(r1.status, 0, r1.stderr)
        let r2 = try launch(2, options(many.path, regime: "e2e", batch: 7))
        XCTAssertEqual(r2.status, 0, r2.stderr)
        try assertSameRun(one.path, many.path)
    }

    /// A run stopped after 5 steps and resumed under MPI reaches the weights of one uninterrupted process.
    func testResumeUnderMPI() throws {
        let one = TemporaryDirectory(), many = TemporaryDirectory()
        let r1 = try runProcess(binary, options(one.path, regime: "simultaneous"))
        XCTAssertEqual(r1.status, 0, r1.stderr)
        let first = try launch(2, options(many.path, regime: "simultaneous", extra: ["--stop-after", "5"]))
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: many.file("done.json")))
        let rest = try launch(2, options(many.path, regime: "simultaneous", extra: ["--resume"]))
        XCTAssertEqual(rest.status, 0, rest.stderr)
        try assertSameRun(one.path, many.path)
    }

    /// A rank that fails ends the job: nonzero status, the rank and the message, and no files.
    func testAFailingRankEndsTheJobWithItsRankAndMessage() throws {
        let out = TemporaryDirectory()
        let target = out.file("run")
        let r = try launch(2, options(target, regime: "e2e", batch: 1))
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("bwtrain: error: rank "), r.stderr)
        XCTAssertTrue(r.stderr.contains("cannot be split over 2 processes"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: target))
    }
}
