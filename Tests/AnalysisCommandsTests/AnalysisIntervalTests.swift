import ActivationStore
import AnalysisCommands
import Foundation
import LinearAlgebra
import RepresentationMetrics
import TestSupport
import XCTest

/// The intervals the analyses attach equal percentiles recomputed here from explicit resamples of the
/// per-clip terms (gathered by index, statistic recomputed from scratch).
final class AnalysisIntervalTests: XCTestCase {
    let bootstrap = Bootstrap(resamples: 200, seed: 4)

    /// numpy's default percentile, written out independently of `Bootstrap`.
    func percentile(_ values: [Double], _ q: Double) -> Double {
        let s = values.sorted()
        let pos = q * Double(s.count - 1)
        let i = Int(pos)
        return i + 1 < s.count ? s[i] * (1 - (pos - Double(i))) + s[i + 1] * (pos - Double(i)) : s[i]
    }

    func assertInterval(_ r: MetricRecord, _ replicates: [Double], accuracy: Double = 1e-12, _ what: String,
                        file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.ciLow!, percentile(replicates, 0.025), accuracy: accuracy, what, file: file, line: line)
        XCTAssertEqual(r.ciHigh!, percentile(replicates, 0.975), accuracy: accuracy, what, file: file, line: line)
    }

    func testProbeRetrievalPatchAndCKAIntervalsMatchExplicitResamples() throws {
        let f = try ActivationFile(path: fixturePath("run-a.h5"))
        let n = f.clipCount
        let resamples = bootstrap.indices(clips: n)
        let vectors = try collectClipVectors(f, depths: [2, 4], maxBatchBytes: 1 << 20)
        let targets = f.targets.sorted()

        var probe = ProbeAnalysis()
        probe.depthSelection = .list([2, 4])
        probe.targets = targets
        probe.bootstrap = bootstrap
        let probes = try probe.run(f).records
        var correctByTarget: [[Double]] = []
        for t in targets {
            let labels = try f.labels(t)
            let cv = try LinearProbe.crossValidate(vectors[1], labels: labels)
            let correct = (0..<n).map { cv.predictions[$0] == labels[$0] ? 1.0 : 0.0 }
            correctByTarget.append(correct)
            let r = probes.first { $0.metric == "probe_accuracy" && $0.depth == 4 && $0.target == t }!
            XCTAssertEqual(r.value!, cv.mean, accuracy: 1e-15)
            assertInterval(r, resamples.map { idx in idx.reduce(0.0) { $0 + correct[$1] } / Double(n) }, "probe \(t)")
        }
        let mean = probes.first { $0.metric == "probe_accuracy_mean_over_targets" && $0.depth == 4 }!
        assertInterval(mean, resamples.map { idx in
            correctByTarget.map { c in idx.reduce(0.0) { $0 + c[$1] } / Double(n) }.reduce(0, +) / Double(targets.count)
        }, "probe mean over targets")

        var retrieval = RetrievalAnalysis()
        retrieval.depthSelection = .list([4])
        retrieval.bootstrap = bootstrap
        let maps = try retrieval.run(f).records.filter { $0.metric == "retrieval_map" }
        for r in maps {
            let ap = try Retrieval.evaluate(vectors[1], labels: f.labels(r.target!)).averagePrecisions
            assertInterval(r, resamples.map { idx in
                let d = idx.compactMap { ap[$0] }
                return d.reduce(0, +) / Double(d.count)
            }, "mAP \(r.target!)")
        }

        var tokens = TokenAnalysis()
        tokens.depthSelection = .list([2])
        tokens.bootstrap = bootstrap
        let patch = try tokens.run(f).records.first { $0.metric == "patch_similarity" }!
        var perClip: [Double] = []
        for c in 0..<n {
            var acc = PatchSimilarityAccumulator()
            try acc.add(try f.tokens(depth: 2, clips: c..<(c + 1), as: Float.self), clips: 1, tokens: f.tokenCount, features: f.featureCount)
            perClip.append(try acc.value())
        }
        assertInterval(patch, resamples.map { idx in idx.reduce(0.0) { $0 + perClip[$1] } / Double(n) }, "patch similarity")

        var cka = CKAAnalysis()
        cka.depthSelection = .list([2, 4])
        cka.pairs = .consecutive
        cka.bootstrap = bootstrap
        let c = try cka.run(f).records[0]
        assertInterval(c, try resamples.map { try CKA.linear(vectors[0].rows(at: $0), vectors[1].rows(at: $0)) }, accuracy: 1e-10, "CKA 2-4")
        XCTAssertNotNil(c.replicates)
        XCTAssertEqual(c.replicates?.clips, n)
    }

    /// Two runs on the same clips are resampled with the same indices: their replicates pair up.
    func testRunsOnTheSameClipsShareResamples() throws {
        let a = try ActivationFile(path: fixturePath("run-a.h5")), b = try ActivationFile(path: fixturePath("run-b.h5"))
        var probe = ProbeAnalysis()
        probe.depthSelection = .list([4])
        probe.bootstrap = bootstrap
        let ra = try probe.run(a).records.first { $0.metric == "probe_accuracy_mean_over_targets" }!
        let rb = try probe.run(b).records.first { $0.metric == "probe_accuracy_mean_over_targets" }!
        XCTAssertEqual(ra.replicates?.clips, rb.replicates?.clips)
        // The replicate of clip-level correctness a − b equals the mean over the same resampled clips of the
        // per-clip differences, which only holds when both used the same indices.
        let va = try LinearProbe.crossValidate(collectClipVectors(a, depths: [4], maxBatchBytes: 1 << 20)[0], labels: a.labels("motion"))
        let vb = try LinearProbe.crossValidate(collectClipVectors(b, depths: [4], maxBatchBytes: 1 << 20)[0], labels: b.labels("motion"))
        let labels = try a.labels("motion")
        let diff = (0..<a.clipCount).map { (va.predictions[$0] == labels[$0] ? 1.0 : 0) - (vb.predictions[$0] == labels[$0] ? 1.0 : 0) }
        let pa = try probe.run(a).records.first { $0.metric == "probe_accuracy" && $0.target == "motion" }!.replicates!.values
        let pb = try probe.run(b).records.first { $0.metric == "probe_accuracy" && $0.target == "motion" }!.replicates!.values
        for (r, idx) in bootstrap.indices(clips: a.clipCount).enumerated() {
            XCTAssertEqual(pa[r]! - pb[r]!, idx.reduce(0.0) { $0 + diff[$1] } / Double(a.clipCount), accuracy: 1e-12)
        }
    }

    /// Files holding the same clips in another order, identified by `/clip_ids`, are resampled with the
    /// same clips: their replicates agree, whatever the order.
    func testClipIDsPairResamplesAcrossClipOrders() throws {
        guard let py = debianPython(modules: ["h5py", "numpy"]) else {
            if pythonRequired { XCTFail("/usr/bin/python3 with h5py and numpy is required") }
            throw XCTSkip("Debian's python3-h5py is not installed")
        }
        let dir = TemporaryDirectory()
        let path = dir.file("ids.h5")
        try FileManager.default.copyItem(atPath: fixturePath("run-b.h5"), toPath: path)
        let r = try runProcess(py, ["-c", """
            import sys, h5py, numpy as np
            with h5py.File(sys.argv[1], "a") as f:
                N = f["layers/00/tokens"].shape[0]
                f["clip_ids"] = np.array([f"clip-{i:03d}" for i in range(N)], dtype=h5py.string_dtype())
            """, path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let f = try ActivationFile(path: path)
        var g = SeededGenerator(seed: 1)
        var order = Array(0..<f.clipCount)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(g.next(below: UInt64(i + 1)))) }
        let shuffled = try f.reordered(order)
        var tokens = TokenAnalysis()
        tokens.depthSelection = .list([2])
        tokens.bootstrap = bootstrap
        let a = try tokens.run(f).records[0].replicates!, b = try tokens.run(shuffled).records[0].replicates!
        XCTAssertEqual(a.clipSet, b.clipSet)
        XCTAssertTrue(a.clipSet.hasPrefix("ids:"))
        for (x, y) in zip(a.values, b.values) { XCTAssertEqual(x!, y!, accuracy: 1e-12) }
        // Without ids the file's own order is resampled: the same permutation resamples other clips.
        let plain = try ActivationFile(path: fixturePath("run-b.h5"))
        let c = try tokens.run(plain).records[0].replicates!, d = try tokens.run(try plain.reordered(order)).records[0].replicates!
        XCTAssertEqual(c.clipSet, "order:\(plain.clipCount)")
        XCTAssertTrue(zip(c.values, d.values).contains { abs($0! - $1!) > 1e-9 })
    }
}
