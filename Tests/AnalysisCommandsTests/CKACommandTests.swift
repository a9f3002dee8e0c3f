@testable import AnalysisCommands
import ActivationStore
import Foundation
import LinearAlgebra
import RepresentationMetrics
import TestSupport
import XCTest

/// Decoded `--format json` output.
struct Report: Decodable {
    struct Record: Decodable {
        var metric: String
        var depth: Int?
        var depthB: Int?
        var target: String?
        var head: Int?
        var value: Double?
        var std: Double?
        var undefined: String?
    }
    var command: String
    var parameters: [String: String]
    var conventions: [String: String]
    var records: [Record]
    var warnings: [String]

    static func decode(_ text: String) throws -> Report {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return try d.decode(Report.self, from: Data(text.utf8))
    }

    func value(_ a: Int, _ b: Int) -> Double? { records.first { $0.depth == a && $0.depthB == b }?.value }
}

func analyze(_ args: String...) throws -> Report {
    let r = try bwanalyze(arguments: args + ["--format", "json"])
    guard r.status == 0 else { throw NSError(domain: "bwanalyze", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: r.stderr]) }
    return try Report.decode(r.stdout)
}

final class CKACommandTests: XCTestCase {
    func testGeometryFixtureAllPairs() throws {
        let r = try analyze("cka", fixturePath("geometry.h5"), "--depth", "layers", "--pairs", "all")
        XCTAssertEqual(r.records.count, 15)
        // Depths 1-3 are a rotation, a scaling and an orthogonal map of depth 0: CKA 1 up to float32 storage.
        for d in 1...3 { XCTAssertEqual(try XCTUnwrap(r.value(0, d)), 1, accuracy: 1e-5) }
        XCTAssertLessThan(try XCTUnwrap(r.value(0, 4)), 0.9)
        XCTAssertLessThan(try XCTUnwrap(r.value(0, 5)), 0.2)
        XCTAssertEqual(r.parameters["estimator"], "biased")
        XCTAssertEqual(r.parameters["rows"], "96")
        XCTAssertNotNil(r.conventions["cka_linear_biased"])
    }

    func testStreamingBudgetDoesNotChangeTokenLevelCKA() throws {
        // A 1 KiB budget forces one-clip batches (one clip of 6 depths is 4.6 KiB); the sums are exact,
        // so the results agree to rounding.
        let small = try analyze("cka", fixturePath("geometry.h5"), "--pool", "tokens", "--depth", "layers", "--batch-mib", "0.001")
        let large = try analyze("cka", fixturePath("geometry.h5"), "--pool", "tokens", "--depth", "layers")
        XCTAssertEqual(small.records.count, 5)
        XCTAssertEqual(small.parameters["batches"], "96")
        XCTAssertEqual(large.parameters["batches"], "1")
        for (a, b) in zip(small.records, large.records) { XCTAssertEqual(try XCTUnwrap(a.value), try XCTUnwrap(b.value), accuracy: 1e-12) }
        XCTAssertEqual(large.parameters["rows"], "768")
    }

    func testTwoFilesOfTheSameClips() throws {
        let r = try analyze("cka", fixturePath("run-a.h5"), fixturePath("run-b.h5"))
        XCTAssertEqual(r.records.count, 9)  // depths 0, 2, 4 of A × of B
        for d in [0, 2, 4] { XCTAssertGreaterThan(try XCTUnwrap(r.value(d, d)), 0.99) }
        let matching = try analyze("cka", fixturePath("run-a.h5"), fixturePath("run-b.h5"), "--pairs", "matching", "--depth", "layers")
        XCTAssertEqual(matching.records.map(\.depth), [0, 1, 2, 3, 4])
        XCTAssertEqual(matching.records.map(\.depthB), [0, 1, 2, 3, 4])
    }

    func testMismatchedClipsAreRefused() throws {
        let r = try bwanalyze("cka", fixturePath("run-a.h5"), fixturePath("geometry.h5"))
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(r.stderr, "bwanalyze: error: \(fixturePath("run-a.h5")) and \(fixturePath("geometry.h5")) do not hold the same clips: N = 80 vs 96\n")
        let c = try bwanalyze("cka", fixturePath("run-a.h5"), fixturePath("run-b.h5"), "--pairs", "consecutive")
        XCTAssertEqual(c.status, 1)
        XCTAssertTrue(c.stderr.contains("with two files use --pairs all or matching"), c.stderr)
    }

    func testZeroVarianceDepthIsFlaggedInEveryFormat() throws {
        let r = try analyze("cka", fixturePath("spectrum.h5"), "--depth", "layers")
        let last = try XCTUnwrap(r.records.last)
        XCTAssertNil(last.value)
        XCTAssertEqual(last.undefined, "zero variance at depth 3 of \(fixturePath("spectrum.h5")) (all rows equal up to float32 rounding)")
        let csv = try bwanalyze("cka", fixturePath("spectrum.h5"), "--depth", "layers", "--format", "csv")
        XCTAssertTrue(csv.stdout.split(separator: "\n").last!.hasSuffix(",,,zero variance at depth 3 of \(fixturePath("spectrum.h5")) (all rows equal up to float32 rounding)"), csv.stdout)
        let table = try bwanalyze("cka", fixturePath("spectrum.h5"), "--depth", "layers")
        XCTAssertTrue(table.stdout.contains("n/a at depth 2 vs 3: zero variance"), table.stdout)
        XCTAssertEqual(table.status, 0)
    }

    func testEstimatorsAndKernelsAreRecorded() throws {
        let d = try analyze("cka", fixturePath("run-a.h5"), "--estimator", "debiased")
        XCTAssertEqual(d.records.first?.metric, "cka_linear_debiased")
        let rbf = try analyze("cka", fixturePath("run-a.h5"), "--kernel", "rbf", "--rbf-bandwidth", "kornblith", "--rbf-threshold", "0.5")
        XCTAssertEqual(rbf.records.first?.metric, "cka_rbf_biased")
        XCTAssertTrue(rbf.parameters["bandwidth"]?.contains("kornblith") ?? false)
        XCTAssertEqual(rbf.parameters["gamma_per_representation"]?.split(separator: ",").count, 3)
        let mb = try analyze("cka", fixturePath("run-a.h5"), "--estimator", "minibatch", "--batch-size", "16")
        XCTAssertEqual(mb.parameters["minibatches"], "5")
        let bad = try bwanalyze("cka", fixturePath("run-a.h5"), "--kernel", "rbf", "--estimator", "minibatch")
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("linear kernel only"), bad.stderr)
    }

    func testOutputFileIsWrittenAtomically() throws {
        let dir = TemporaryDirectory()
        let r = try bwanalyze("cka", fixturePath("run-a.h5"), "--format", "csv", "-o", dir.file("cka.csv"))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(dir.contents, ["cka.csv"])
        let csv = try String(contentsOfFile: dir.file("cka.csv"), encoding: .utf8)
        XCTAssertTrue(csv.hasPrefix("metric,run,file,probe_set,step,depth,run_b,depth_b,target,head,value,std,undefined\n"))
        XCTAssertEqual(csv.split(separator: "\n").count, 3)
        let bad = try bwanalyze("cka", fixturePath("run-a.h5"), "-o", "/nonexistent-dir/x.csv")
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("/nonexistent-dir/x.csv: the directory /nonexistent-dir does not exist"), bad.stderr)
    }
}

/// Biased linear CKA of clip vectors from packed Gram matrices (chosen when cheaper than the feature
/// sums) against the feature-space sums and against closed-form values.
final class CKAClipGramTests: XCTestCase {
    /// 40 clips of 3 tokens, width 24 (D < N, so the RBF/wide Gram path does not apply), 6 depths:
    /// depth 1 is depth 0 times an orthogonal map and a scale (CKA 1 with depth 0), depth 2 is depth 0
    /// with the last 12 features zeroed, depths 3–5 independent draws.
    func writeFile(_ path: String, damaged: Bool = false) throws {
        var rng = SeededGenerator(seed: 20261127)
        let n = 40, t = 3, d = 24
        func draw() -> [Float] { (0..<(n * t * d)).map { _ in Float.random(in: -1..<1, using: &rng) } }
        let base = draw()
        // A permutation with sign flips is orthogonal and exact in float32; times 0.5, also exact.
        var rotated = [Float](repeating: 0, count: n * t * d), truncated = rotated
        for r in 0..<(n * t) {
            for k in 0..<d {
                let sign: Float = k % 2 == 0 ? 0.5 : -0.5
                rotated[r * d + k] = sign * base[r * d + (k * 7) % d]
                truncated[r * d + k] = k < 12 ? base[r * d + k] : 0
            }
        }
        let w = try ActivationWriter(path: path, metadata: ActivationMetadata(run: "g", regime: "e2e", blockEnds: [5], probeSet: "p",
                                                                             step: 1, seed: 1, config: "{}"))
        var depths = [base, rotated, truncated, draw(), draw(), draw()]
        if damaged {
            depths[3][17] = .nan
            depths[4] = [Float](repeating: 0.25, count: n * t * d)
        }
        for (depth, v) in depths.enumerated() {
            try w.writeTokens(depth: depth, values: v, clips: n, tokens: t, features: d)
        }
        try w.commit()
    }

    func testGramPathMatchesFeatureSumsAndClosedForms() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("g.h5")
        try writeFile(path)
        let gram = try analyze("cka", path, "--depth", "layers", "--pairs", "all")
        // A 1 KiB budget leaves no room for the packed Gram matrices: the feature-space sums.
        let feature = try analyze("cka", path, "--depth", "layers", "--pairs", "all", "--batch-mib", "0.001")
        XCTAssertEqual(gram.parameters["form"], "gram")
        XCTAssertEqual(feature.parameters["form"], "feature")
        XCTAssertEqual(gram.records.count, 15)
        for (a, b) in zip(gram.records, feature.records) {
            XCTAssertEqual(a.depth, b.depth)
            XCTAssertEqual(a.depthB, b.depthB)
            XCTAssertEqual(try XCTUnwrap(a.value), try XCTUnwrap(b.value), accuracy: 1e-12, "depths \(a.depth!), \(a.depthB!)")
        }
        XCTAssertEqual(try XCTUnwrap(gram.value(0, 1)), 1, accuracy: 1e-12)
        // Zeroing half the features of the same vectors keeps CKA well inside (0, 1).
        let half = try XCTUnwrap(gram.value(0, 2))
        XCTAssertGreaterThan(half, 0.5)
        XCTAssertLessThan(half, 0.95)
    }

    /// A depth with a NaN and a constant depth leave their pairs undefined, with the reason, and every
    /// other pair as the feature-space sums give it.
    func testGramPathFlagsDamagedDepthsOnly() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("g.h5")
        try writeFile(path, damaged: true)
        let gram = try analyze("cka", path, "--depth", "layers", "--pairs", "all")
        let feature = try analyze("cka", path, "--depth", "layers", "--pairs", "all", "--batch-mib", "0.001")
        XCTAssertEqual(gram.parameters["form"], "gram")
        XCTAssertEqual(gram.records.count, 15)
        for (a, b) in zip(gram.records, feature.records) {
            let pair = [a.depth!, a.depthB!]
            if pair.contains(3) {
                XCTAssertNil(a.value)
                XCTAssertEqual(a.undefined, "NaN or Inf in \(path) at depth 3", "depths \(pair)")
            } else if pair.contains(4) {
                XCTAssertNil(a.value)
                XCTAssertTrue(a.undefined?.contains("zero variance at depth 4") ?? false, a.undefined ?? "nil")
            } else {
                XCTAssertEqual(try XCTUnwrap(a.value), try XCTUnwrap(b.value), accuracy: 1e-12, "depths \(pair)")
            }
        }
        XCTAssertEqual(try XCTUnwrap(gram.value(0, 1)), 1, accuracy: 1e-12)
    }

    /// The Gram path reads each representation in the job that forms its Gram matrix: the clip vectors it
    /// keeps for bootstrap intervals are those of the file, so every interval equals percentiles of CKA
    /// recomputed on explicit resamples, as on the feature path.
    func testGramPathKeepsTheClipVectorsOfItsIntervals() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("g.h5")
        try writeFile(path)
        let f = try ActivationFile(path: path)
        let bootstrap = Bootstrap(resamples: 100, seed: 7)
        var cka = CKAAnalysis()
        cka.depthSelection = .layers
        cka.pairs = .all
        cka.bootstrap = bootstrap
        let report = try cka.run(f)
        XCTAssertEqual(report.parameters["form"], "gram")
        let vectors = try collectClipVectors(f, depths: Array(0...5), maxBatchBytes: 1 << 20)
        let resamples = bootstrap.indices(clips: f.clipCount)
        var checked = 0
        for r in report.records {
            guard let low = r.ciLow, let high = r.ciHigh, let a = r.depth, let b = r.depthB, a != b else { continue }
            let values = try resamples.map { try CKA.linear(vectors[a].rows(at: $0), vectors[b].rows(at: $0)) }.sorted()
            func percentile(_ q: Double) -> Double {
                let pos = q * Double(values.count - 1)
                let i = Int(pos)
                let w = pos - Double(i)
                let next: Double = values[min(i + 1, values.count - 1)]
                return values[i] * (1 - w) + next * w
            }
            XCTAssertEqual(low, percentile(0.025), accuracy: 1e-10, "depths \(a), \(b)")
            XCTAssertEqual(high, percentile(0.975), accuracy: 1e-10, "depths \(a), \(b)")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0, "some pair has an interval")
    }

    /// A second file that is a reordered view of the first (`reordered`, as clip alignment makes) is read
    /// through its clip order by the Gram path's jobs: every pair equals CKA of the first file's clip
    /// vectors against the same vectors with their rows permuted.
    func testGramPathReadsAReorderedViewInItsOrder() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("g.h5")
        try writeFile(path)
        let f = try ActivationFile(path: path)
        var g = SeededGenerator(seed: 3)
        var order = Array(0..<f.clipCount)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(g.next(below: UInt64(i + 1)))) }
        var cka = CKAAnalysis()
        cka.depthSelection = .layers
        cka.pairs = .all
        let report = try cka.run(f, try f.reordered(order))
        XCTAssertEqual(report.parameters["form"], "gram")
        let vectors = try collectClipVectors(f, depths: Array(0...5), maxBatchBytes: 1 << 20)
        XCTAssertEqual(report.records.count, 36)
        for r in report.records {
            let a = try XCTUnwrap(r.depth), b = try XCTUnwrap(r.depthB)
            let want = try CKA.linear(vectors[a], vectors[b].rows(at: order))
            XCTAssertEqual(try XCTUnwrap(r.value), want, accuracy: 1e-12, "depths \(a), \(b)")
        }
    }
}

/// Clip means summed straight from the stored chunks are the means of the tokens read and summed in
/// order, to the last bit.
final class TokenMeansTests: XCTestCase {
    func testChunkSumsEqualSumsOfTheReadTokens() throws {
        for name in ["geometry.h5", "run-a.h5", "attention.h5"] {
            let f = try ActivationFile(path: fixturePath(name))
            for depth in f.depths {
                for clips in [0..<f.clipCount, 1..<max(2, f.clipCount - 1)] {
                    let direct = try DepthStream.tokenMeans(f, depth: depth, clips: clips)
                    let read = DepthStream.tokenMeans(try f.tokens(depth: depth, clips: clips), clips: clips.count,
                                                      tokens: f.tokenCount, features: f.featureCount)
                    XCTAssertEqual(direct, read, "\(name) depth \(depth) clips \(clips)")
                    // And the stored chunks were used: the fixtures are float32 in unfiltered chunks.
                    XCTAssertTrue(try f.forEachTokenChunk(depth: depth, clips: clips) { _ in })
                }
            }
        }
    }
}
