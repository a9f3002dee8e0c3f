import ActivationStore
import AnalysisCommands
import Foundation
import LinearAlgebra
import RepresentationMetrics
import SyntheticFixtures
import TestSupport
import XCTest

final class SpectrumCommandTests: XCTestCase {
    func testKnownSpectraOfTheFixture() throws {
        let r = try analyze("spectrum", fixturePath("spectrum.h5"), "--depth", "layers")
        func v(_ m: String, _ d: Int) -> Report.Record? { r.records.first { $0.metric == m && $0.depth == d } }
        // Stored as float32: eigenvalues hold to ~1e-6 relative.
        XCTAssertEqual(try XCTUnwrap(v("effective_rank", 0)?.value), 8, accuracy: 1e-4)
        XCTAssertEqual(try XCTUnwrap(v("participation_ratio", 0)?.value), 8, accuracy: 1e-4)
        XCTAssertEqual(try XCTUnwrap(v("condition_number", 0)?.value), 1, accuracy: 1e-4)
        XCTAssertEqual(try XCTUnwrap(v("effective_rank", 1)?.value), 3, accuracy: 1e-4)
        XCTAssertEqual(v("condition_number", 1)?.undefined, "rank deficient (rank 3 of 8)")
        let lambda = FixtureSet.spectrumEigenvalues[2]
        let total = lambda.reduce(0, +)
        let entropy = -lambda.map { $0 / total }.reduce(0) { $0 + $1 * log($1) }
        XCTAssertEqual(try XCTUnwrap(v("effective_rank", 2)?.value), exp(entropy), accuracy: 1e-4)
        XCTAssertEqual(try XCTUnwrap(v("condition_number", 2)?.value), 128, accuracy: 1e-2)
        XCTAssertEqual(try XCTUnwrap(v("k90", 2)?.value), 4)  // (8+4+2+1)/15.9375 = 0.941
        XCTAssertEqual(v("effective_rank", 3)?.undefined, "zero variance (all rows equal up to float32 rounding)")
        XCTAssertFalse(r.warnings.contains { $0.contains("is not well above D") }, "64 rows are well above D = 8")
    }

    func testWarnsWhenNIsNotWellAboveD() throws {
        let r = try analyze("spectrum", fixturePath("attention.h5"))
        XCTAssertTrue(r.warnings.contains { $0.hasPrefix("N = 4 rows is not well above D = 4") }, "\(r.warnings)")
    }
}

final class ProbeCommandTests: XCTestCase {
    func testPlantedLabelsAreSeparableAndRandomLabelsAreNearChance() throws {
        let r = try analyze("probe", fixturePath("geometry.h5"), "--depth", "layers")
        for d in 0...4 {
            XCTAssertEqual(r.records.first { $0.depth == d && $0.target == "planted" }?.value, 1, "depth \(d)")
        }
        // 96 clips, 3 classes: chance is 1/3 with a CV standard error of about 0.05.
        let random = try XCTUnwrap(r.records.first { $0.depth == 0 && $0.target == "random" }?.value)
        XCTAssertEqual(random, 1.0 / 3, accuracy: 0.15)
        let mean = try XCTUnwrap(r.records.first { $0.depth == 0 && $0.metric == "probe_accuracy_mean_over_targets" }?.value)
        XCTAssertEqual(mean, (1 + random) / 2, accuracy: 1e-12)
        XCTAssertEqual(r.parameters["folds"], "3")
    }

    func testTargetSelectionAndErrors() throws {
        let r = try analyze("probe", fixturePath("run-a.h5"), "--target", "object", "--folds", "4")
        XCTAssertEqual(Set(r.records.compactMap(\.target)), ["object"])
        let missing = try bwanalyze("probe", fixturePath("run-a.h5"), "--target", "colour")
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderr, "bwanalyze: error: \(fixturePath("run-a.h5")): /labels/colour: no such target; known targets: motion, object\n")
        let both = try bwanalyze("probe", fixturePath("run-a.h5"), "--train", fixturePath("run-a.h5"), "--test", fixturePath("run-b.h5"))
        XCTAssertNotEqual(both.status, 0)
        let shape = try bwanalyze("probe", "--train", fixturePath("run-a.h5"), "--test", fixturePath("geometry.h5"))
        XCTAssertEqual(shape.status, 1)
        XCTAssertTrue(shape.stderr.contains("differ in shape"), shape.stderr)
    }

    func testTooFewClipsPerClassIsFlaggedNotFatal() throws {
        // attention.h5 has 4 clips, 2 per class: 3 folds are impossible.
        let r = try analyze("probe", fixturePath("attention.h5"))
        let rec = try XCTUnwrap(r.records.first { $0.metric == "probe_accuracy" })
        XCTAssertNil(rec.value)
        XCTAssertTrue(rec.undefined?.contains("fewer than the 3 folds") ?? false, rec.undefined ?? "")
    }

    func testCGridRecordsTheChoice() throws {
        let r = try analyze("probe", fixturePath("geometry.h5"), "--target", "planted", "--c-grid", "0.0001,1")
        XCTAssertEqual(r.parameters["chosen_c_depth0_planted"], "1.0")
        XCTAssertEqual(r.records.first { $0.depth == 0 && $0.target == "planted" }?.value, 1)
    }

    func testOccDropIsZeroWhenTheOccludedClipsAreTheFullClips() throws {
        let r = try analyze("occdrop", fixturePath("run-a.h5"), fixturePath("run-a.h5"))
        for rec in r.records where rec.metric == "occdrop" { XCTAssertEqual(rec.value, 0) }
        let probe = try analyze("occdrop", fixturePath("run-a.h5"), fixturePath("run-b.h5"), "--protocol", "retrain")
        XCTAssertEqual(probe.parameters["protocol"], "retrain")
        let occ = try XCTUnwrap(probe.records.first { $0.metric == "occdrop" })
        let all = try XCTUnwrap(probe.records.first { $0.metric == "probe_accuracy_full" && $0.depth == occ.depth && $0.target == occ.target }?.value)
        let one = try XCTUnwrap(probe.records.first { $0.metric == "probe_accuracy_one_patch" && $0.depth == occ.depth && $0.target == occ.target }?.value)
        XCTAssertEqual(try XCTUnwrap(occ.value), (all - one) / all, accuracy: 1e-12)
    }
}

final class RetrievalCommandTests: XCTestCase {
    func testPlantedClassesRetrievePerfectly() throws {
        let r = try analyze("retrieval", fixturePath("geometry.h5"), "--target", "planted", "--depth", "0,3")
        XCTAssertEqual(r.records.count, 2 * 4 + 1)
        for rec in r.records where rec.metric != "retrieval_map_chance" { XCTAssertEqual(rec.value, 1, "\(rec.metric) depth \(rec.depth!)") }
        // Chance is one record per target, at the last depth, from the labels alone.
        let chance = try XCTUnwrap(r.records.first { $0.metric == "retrieval_map_chance" })
        XCTAssertEqual(chance.depth, 3)
        XCTAssertLessThan(chance.value!, 0.6)
        let k = try analyze("retrieval", fixturePath("geometry.h5"), "--ks", "2,3")
        XCTAssertEqual(Set(k.records.map(\.metric)), ["retrieval_top2", "retrieval_top3", "retrieval_map", "retrieval_map_chance"])
    }
}

/// The independent numpy / scikit-learn implementations agree with bwanalyze (Tests/python/crosscheck.py).
final class CrossCheckTests: XCTestCase {
    func testAgreesWithNumpyAndScikitLearn() throws {
        guard let py = debianPython(modules: ["h5py", "numpy", "sklearn"]) else {
            if pythonRequired { XCTFail("/usr/bin/python3 with h5py, numpy and scikit-learn is required") }
            throw XCTSkip("python3-sklearn not available")
        }
        let r = try runProcess(py, [repositoryRoot.appendingPathComponent("Tests/python/crosscheck.py").path,
                                    productsDirectory.appendingPathComponent("bwanalyze").path,
                                    repositoryRoot.appendingPathComponent("Fixtures").path])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("crosscheck: 16 passed, 0 failed"), r.stdout)
    }
}

/// `ProbeAnalysis.run` on one process reads each depth inside the job that fits its probes when there
/// are depths enough for every core (13 here), and reads first and spreads the folds otherwise (one
/// depth); either way its accuracies are exactly those of `LinearProbe.crossValidate` on clip vectors
/// read beforehand, the shuffled-label chance included, with and without a C grid.
final class ProbeReadWhileFittingTests: XCTestCase {
    /// 60 clips of 4 tokens, width 6, depths 0...12; a 3-class target the tokens carry more plainly
    /// with depth, under noise, and a 2-class one they do not carry.
    func writeFile(_ path: String) throws {
        var rng = SeededGenerator(seed: 20261127)
        let n = 60, t = 4, d = 6
        let classes = (0..<n).map { $0 % 3 }
        let w = try ActivationWriter(path: path, metadata: ActivationMetadata(run: "p", regime: "e2e", blockEnds: [3, 6, 9, 12],
                                                                             probeSet: "p", step: 1, seed: 1, config: "{}"))
        for depth in 0...12 {
            var v: [Float] = []
            for i in 0..<n {
                for _ in 0..<t {
                    for k in 0..<d {
                        let signal: Float = k == classes[i] ? Float(depth) / 12 : 0
                        v.append(signal + Float.random(in: -1..<1, using: &rng))
                    }
                }
            }
            try w.writeTokens(depth: depth, values: v, clips: n, tokens: t, features: d)
        }
        try w.writeLabels("signal", classes)
        try w.writeLabels("noise", (0..<n).map { _ in Int.random(in: 0..<2, using: &rng) })
        try w.commit()
    }

    func testEveryDepthAndTheShuffledChanceEqualExplicitCrossValidation() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("p.h5")
        try writeFile(path)
        let f = try ActivationFile(path: path)
        let targets = f.targets.sorted()
        for (selection, grid) in [(DepthSelection.layers, nil), (.layers, [0.1, 1.0]), (.list([7]), nil), (.list([7]), [0.1, 1.0])] as [(DepthSelection, [Double]?)] {
            let depths = try selection.depths(in: f)
            var probe = ProbeAnalysis()
            probe.depthSelection = selection
            probe.targets = targets
            probe.shuffledChance = true
            probe.cGrid = grid
            let records = try probe.run(f).records
            let vectors = try collectClipVectors(f, depths: depths, maxBatchBytes: 1 << 20)
            func accuracy(_ x: Matrix<Double>, _ labels: [Int]) throws -> Double {
                let cv = try LinearProbe.crossValidation(x, labels: labels, options: probe.options, grid: grid)
                let folds = try cv.folds.indices.map { try LinearProbe.fold($0, of: cv, x: x) }
                return LinearProbe.combine(folds, of: cv).result.mean
            }
            let what = "\(depths.count) depths, grid \(grid ?? [])"
            for (i, depth) in depths.enumerated() {
                for t in targets {
                    if grid == nil {
                        let plain = try LinearProbe.crossValidate(vectors[i], labels: f.labels(t)).mean
                        XCTAssertEqual(try accuracy(vectors[i], f.labels(t)), plain, "the two references agree")
                    }
                    let got = records.first { $0.metric == "probe_accuracy" && $0.depth == depth && $0.target == t }
                    XCTAssertEqual(got?.value, try accuracy(vectors[i], f.labels(t)), "\(what): depth \(depth), \(t)")
                }
            }
            for t in targets {
                let shuffled = LinearProbe.permuted(try f.labels(t), seed: probe.shuffleSeed)
                let got = records.first { $0.metric == "probe_accuracy_shuffled" && $0.target == t }
                XCTAssertEqual(got?.depth, depths.last)
                XCTAssertEqual(got?.value, try LinearProbe.crossValidate(vectors[depths.count - 1], labels: shuffled).mean, "\(what): shuffled \(t)")
            }
        }
    }
}
