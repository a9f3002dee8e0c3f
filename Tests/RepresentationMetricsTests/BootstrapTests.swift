import Foundation
import LinearAlgebra
import RepresentationMetrics
import TestSupport
import XCTest

final class BootstrapTests: XCTestCase {
    /// numpy's percentile (linear interpolation) by hand: positions q·(B − 1).
    func testPercentileByHand() {
        let v = [5.0, 1, 4, 2, 3]
        XCTAssertEqual(Bootstrap.percentile(v, 0.025), 1.1, accuracy: 1e-15)  // h = 0.1
        XCTAssertEqual(Bootstrap.percentile(v, 0.975), 4.9, accuracy: 1e-15)  // h = 3.9
        XCTAssertEqual(Bootstrap.percentile(v, 0.5), 3)
        XCTAssertEqual(Bootstrap.percentile([7], 0.975), 7)
        let ci = Bootstrap(resamples: 5).interval([5, 1, 4, 2, 3])!
        XCTAssertEqual(ci.low, 1.1, accuracy: 1e-15)
        XCTAssertEqual(ci.high, 4.9, accuracy: 1e-15)
        XCTAssertNil(Bootstrap(resamples: 3).interval([1, nil, 2]), "an undefined replicate gives no interval")
    }

    /// The multiplicity matrix counts the drawn indices; replicate means equal explicit gathers.
    func testWeightsCountTheDrawnIndicesAndMeansMatchGathers() {
        let b = Bootstrap(resamples: 50, seed: 7)
        let n = 13
        let idx = b.indices(clips: n)
        let w = b.weights(clips: n)
        XCTAssertEqual(idx.count, 50)
        for r in 0..<50 {
            var counts = [Double](repeating: 0, count: n)
            for i in idx[r] { counts[i] += 1 }
            XCTAssertEqual((0..<n).map { w[$0, r] }, counts)
        }
        XCTAssertEqual(b.weights(clips: n), w, "deterministic in (seed, N)")
        XCTAssertNotEqual(Bootstrap(resamples: 50, seed: 8).weights(clips: n), w)
        var g = SeededGenerator(seed: 3)
        let values = (0..<(2 * n)).map { _ in g.nextGaussian() }
        let means = Bootstrap.replicateMeans(Matrix(rows: 2, cols: n, storage: values), weights: w)
        for r in 0..<50 {
            for m in 0..<2 {
                let direct = idx[r].reduce(0.0) { $0 + values[m * n + $1] } / Double(n)
                XCTAssertEqual(means[m, r], direct, accuracy: 1e-13)
            }
        }
        let partial: [Double?] = (0..<n).map { $0 % 3 == 0 ? nil : Double($0) }
        let pm = Bootstrap.replicateMeans(partial, weights: w)
        for r in 0..<50 {
            let defined = idx[r].compactMap { partial[$0] }
            XCTAssertEqual(pm[r]!, defined.reduce(0, +) / Double(defined.count), accuracy: 1e-13)
        }
    }

    /// Every CKA replicate equals CKA computed from scratch on the gathered rows.
    func testLinearCKAReplicatesEqualCKAOfResampledRows() throws {
        var g = SeededGenerator(seed: 11)
        let n = 30
        let x = Matrix<Double>(rows: n, cols: 5) { _, _ in g.nextGaussian() + 3 }
        let y = Matrix<Double>(rows: n, cols: 4) { i, j in x[i, j] * 0.5 + g.nextGaussian() }
        let b = Bootstrap(resamples: 40, seed: 2)
        let reps = CKA.linearBootstrap([x, y], pairs: [CKAPair(0, 1), CKAPair(1, 0), CKAPair(0, 0)], weights: b.weights(clips: n))
        for (r, idx) in b.indices(clips: n).enumerated() {
            let direct = try CKA.linear(x.rows(at: idx), y.rows(at: idx))
            XCTAssertEqual(reps[0][r]!, direct, accuracy: 1e-11)
            XCTAssertEqual(reps[1][r]!, direct, accuracy: 1e-11)
            XCTAssertEqual(reps[2][r]!, 1, accuracy: 1e-12)
        }
        // A resample that draws one clip only has no variance: undefined, not NaN.
        let single = Matrix<Double>(rows: n, cols: 1, storage: [Double](repeating: 0, count: n - 1) + [Double(n)])
        XCTAssertNil(CKA.linearBootstrap([x, y], pairs: [CKAPair(0, 1)], weights: single)[0][0])
    }

    /// Out-of-fold predictions reproduce the fold accuracies, and every clip is predicted once.
    func testProbePredictionsAreOutOfFold() throws {
        var g = SeededGenerator(seed: 5)
        let n = 60
        let labels = (0..<n).map { $0 % 3 }
        let x = Matrix<Double>(rows: n, cols: 4) { i, j in Double(labels[i] == j ? 1 : 0) + 0.8 * g.nextGaussian() }
        let r = try LinearProbe.crossValidate(x, labels: labels)
        XCTAssertEqual(r.predictions.count, n)
        XCTAssertTrue(r.predictions.allSatisfy { (0..<3).contains($0) })
        let folds = try LinearProbe.stratifiedFolds(labels: labels, folds: 3, seed: 0)
        for (k, fold) in folds.enumerated() {
            let correct = fold.filter { r.predictions[$0] == labels[$0] }.count
            XCTAssertEqual(Double(correct) / Double(fold.count), r.foldAccuracies[k], accuracy: 1e-15)
            // The prediction of a test clip is the one of the probe fitted on the other folds.
            let train = (0..<n).filter { !fold.contains($0) }
            let fit = try LinearProbe.fit(x.rows(at: train), labels: train.map { labels[$0] }, classes: 3)
            XCTAssertEqual(fit.predict(x.rows(at: fold)), fold.map { r.predictions[$0] })
        }
    }

    func testRetrievalAndPatchSimilarityKeepPerClipTerms() throws {
        var g = SeededGenerator(seed: 9)
        let x = Matrix<Double>(rows: 12, cols: 3) { _, _ in g.nextGaussian() }
        let labels = [0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 0, 4]  // labels 3 and 4 have no positive
        let r = try Retrieval.evaluate(x, labels: labels)
        XCTAssertNil(r.averagePrecisions[9])
        XCTAssertNil(r.averagePrecisions[11])
        let defined = r.averagePrecisions.compactMap { $0 }
        XCTAssertEqual(defined.count, r.queries)
        XCTAssertEqual(defined.reduce(0, +) / Double(defined.count), r.meanAveragePrecision, accuracy: 1e-15)

        let tokens = (0..<(4 * 5 * 6)).map { _ in Float(g.nextGaussian()) }
        var acc = PatchSimilarityAccumulator(keepsClipValues: true)
        try acc.add(Array(tokens[0..<60]), clips: 2, tokens: 5, features: 6)
        try acc.add(Array(tokens[60...]), clips: 2, tokens: 5, features: 6)
        XCTAssertEqual(acc.clipValues.count, 4)
        for c in 0..<4 {
            var one = PatchSimilarityAccumulator()
            try one.add(Array(tokens[(c * 30)..<((c + 1) * 30)]), clips: 1, tokens: 5, features: 6)
            XCTAssertEqual(acc.clipValues[c], try one.value(), accuracy: 1e-15)
        }
        XCTAssertEqual(acc.clipValues.reduce(0, +) / 4, try acc.value(), accuracy: 1e-15)
    }

    /// An independent numpy reimplementation (Tests/python/bootstrap_check.py) draws the same resamples
    /// with its own SplitMix64, gathers them explicitly and gets the same percentile intervals.
    func testAgreesWithNumpy() throws {
        guard let py = debianPython(modules: ["numpy"]) else {
            if pythonRequired { XCTFail("/usr/bin/python3 with numpy is required") }
            throw XCTSkip("python3-numpy not available")
        }
        var g = SeededGenerator(seed: 21)
        let n = 40
        let b = Bootstrap(resamples: 1000, seed: 12345)
        let w = b.weights(clips: n)
        let values = (0..<n).map { _ in g.nextUniform() < 0.6 ? 1.0 : 0.0 }
        let ap: [Double?] = (0..<n).map { $0 % 7 == 0 ? nil : g.nextUniform() }
        let x = Matrix<Double>(rows: n, cols: 6) { _, _ in g.nextGaussian() }
        let y = Matrix<Double>(rows: n, cols: 3) { i, j in x[i, j] + g.nextGaussian() }
        let meanCI = b.interval(Bootstrap.replicateMeans(Matrix(rows: 1, cols: n, storage: values), weights: w).storage.map { $0 })!
        let apCI = b.interval(Bootstrap.replicateMeans(ap, weights: w))!
        let ckaCI = b.interval(CKA.linearBootstrap([x, y], pairs: [CKAPair(0, 1)], weights: w)[0])!
        func rows(_ m: Matrix<Double>) -> [[Double]] { (0..<m.rows).map { Array(m.row($0)) } }
        let json: [String: Any] = [
            "seed": 12345, "n": n, "resamples": 1000, "level": 0.95, "indices": Array(b.indices(clips: n).prefix(5)),
            "values": values, "ap": ap.map { $0 as Any? ?? NSNull() }, "x": rows(x), "y": rows(y),
            "mean_ci": [meanCI.low, meanCI.high], "ap_ci": [apCI.low, apCI.high], "cka_ci": [ckaCI.low, ckaCI.high],
        ]
        let dir = TemporaryDirectory()
        let path = dir.file("case.json")
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        let r = try runProcess(py, [repositoryRoot.appendingPathComponent("Tests/python/bootstrap_check.py").path, path])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("bootstrap: 4 passed, 0 failed"), r.stdout)
    }
}
