import LinearAlgebra
@testable import RepresentationMetrics
import TestSupport
import XCTest

func gaussianMatrix(_ r: Int, _ c: Int, seed: UInt64) -> Matrix<Double> {
    var g = SeededGenerator(seed: seed)
    return Matrix(rows: r, cols: c) { _, _ in g.nextGaussian() }
}

func randomOrthogonal(_ n: Int, seed: UInt64) throws -> Matrix<Double> {
    try gaussianMatrix(n, n, seed: seed).singularValueDecomposition().u
}

/// Song et al. (2012)'s HSIC₁ by its definition as a U-statistic over 4-tuples of distinct indices,
/// h = (1/4!) Σ_{perms (t,u,v,w)} k_tu l_tu + k_tu l_vw − 2 k_tu l_tv — O(n⁴), an independent reference.
func naiveHSIC1(_ k: Matrix<Double>, _ l: Matrix<Double>) -> Double {
    let n = k.rows
    var total = 0.0, tuples = 0
    for i in 0..<n { for j in 0..<n where j != i { for q in 0..<n where q != i && q != j { for r in 0..<n where r != i && r != j && r != q {
        // Summing over all ordered 4-tuples already symmetrises h over permutations.
        total += k[i, j] * l[i, j] + k[i, j] * l[q, r] - 2 * k[i, j] * l[i, q]
        tuples += 1
    } } } }
    return total / Double(tuples)
}

final class CKATests: XCTestCase {
    let x = gaussianMatrix(60, 7, seed: 1)
    lazy var y: Matrix<Double> = {
        var y = gaussianMatrix(60, 5, seed: 2)
        for i in 0..<60 { for j in 0..<5 { y[i, j] += x[i, j] } }
        return y
    }()

    func testSelfSimilarityIsOneForEveryEstimator() throws {
        for e in [CKAEstimator.biased, .debiased] {
            XCTAssertEqual(try CKA.linear(x, x, estimator: e), 1, accuracy: 1e-12)
            XCTAssertEqual(try CKA.fromGrams(CKA.linearGram(x), CKA.linearGram(x), estimator: e), 1, accuracy: 1e-12)
        }
        let k = try CKA.rbfGram(x, bandwidth: .paperMedian).gram
        XCTAssertEqual(try CKA.fromGrams(k, k, estimator: .biased), 1, accuracy: 1e-12)
        var mb = try MinibatchCKAAccumulator(dimensions: [7, 7], pairs: [CKAPair(0, 1)], batchSize: 10)
        try mb.add([x, x])
        XCTAssertEqual(try mb.cka(CKAPair(0, 1)), 1, accuracy: 1e-12)
    }

    func testSymmetric() throws {
        for e in [CKAEstimator.biased, .debiased] {
            XCTAssertEqual(try CKA.linear(x, y, estimator: e), try CKA.linear(y, x, estimator: e), accuracy: 1e-13)
        }
    }

    func testInvariantToOrthogonalTransformsAndIsotropicScalingButNotGeneralMaps() throws {
        let q = try randomOrthogonal(7, seed: 3)
        let xq = Matrix.product(x, q)
        let scaled = Matrix(rows: x.rows, cols: x.cols, storage: x.storage.map { $0 * 4.5 })
        var a = Matrix<Double>(rows: 7, cols: 7)
        for i in 0..<7 { a[i, i] = Double(i + 1) * Double(i + 1) }
        let xa = Matrix.product(x, a)
        for e in [CKAEstimator.biased, .debiased] {
            let base = try CKA.linear(x, y, estimator: e)
            XCTAssertEqual(try CKA.linear(xq, y, estimator: e), base, accuracy: 1e-12)
            XCTAssertEqual(try CKA.linear(scaled, y, estimator: e), base, accuracy: 1e-12)
            XCTAssertEqual(try CKA.linear(x, xq, estimator: e), 1, accuracy: 1e-12)
            XCTAssertEqual(try CKA.linear(x, scaled, estimator: e), 1, accuracy: 1e-12)
            // An anisotropic invertible map changes CKA substantially.
            XCTAssertLessThan(try CKA.linear(x, xa, estimator: e), 0.9)
        }
    }

    func testFeatureAndGramFormsAgree() throws {
        for e in [CKAEstimator.biased, .debiased] {
            let feature = try CKA.linear(x, y, estimator: e)
            let gram = try CKA.fromGrams(CKA.linearGram(x), CKA.linearGram(y), estimator: e)
            XCTAssertEqual(feature, gram, accuracy: 1e-10)
        }
        // Large offsets: the streamed shift keeps the feature form exact.
        let shifted = Matrix(rows: x.rows, cols: x.cols, storage: x.storage.map { $0 + 1000 })
        XCTAssertEqual(try CKA.linear(shifted, y), try CKA.linear(x, y), accuracy: 1e-10)
        XCTAssertEqual(try CKA.linear(shifted, y, estimator: .debiased), try CKA.linear(x, y, estimator: .debiased), accuracy: 1e-9)
    }

    func testDebiasedHSICEqualsTheUStatisticDefinition() throws {
        let xs = x.rows(0..<9), ys = y.rows(0..<9)
        let k = CKA.linearGram(xs), l = CKA.linearGram(ys)
        let naive = naiveHSIC1(k, l)
        XCTAssertEqual(try CKA.hsicUnbiased(k, l), naive, accuracy: 1e-10 * abs(naive))
        // The streamed feature-space estimator computes the same number.
        var acc = LinearCKAAccumulator(dimensions: [7, 5], pairs: [CKAPair(0, 1)])
        try acc.add([xs.rows(0..<4), ys.rows(0..<4)])
        try acc.add([xs.rows(4..<9), ys.rows(4..<9)])
        XCTAssertEqual(try acc.hsic(CKAPair(0, 1), estimator: .debiased), naive, accuracy: 1e-10 * abs(naive))
        let rbf = try CKA.rbfGram(xs, bandwidth: .paperMedian).gram
        XCTAssertEqual(try CKA.hsicUnbiased(rbf, l), naiveHSIC1(rbf, l), accuracy: 1e-12)
    }

    func testBiasedHSICEqualsItsDefinition() {
        // HSIC₀ = tr(KHLH)/(n−1)² computed with explicit H.
        let xs = x.rows(0..<6), ys = y.rows(0..<6)
        let n = 6
        let h = Matrix<Double>(rows: n, cols: n) { i, j in (i == j ? 1 : 0) - 1 / Double(n) }
        let k = CKA.linearGram(xs), l = CKA.linearGram(ys)
        let khlh = Matrix.product(Matrix.product(Matrix.product(k, h), l), h)
        let trace = (0..<n).reduce(0) { $0 + khlh[$1, $1] } / Double((n - 1) * (n - 1))
        XCTAssertEqual(CKA.hsicBiased(k, l), trace, accuracy: 1e-10 * abs(trace))
    }

    func testStreamingChunksEqualOneShotAndMergeIsExact() throws {
        let z = gaussianMatrix(60, 4, seed: 9)
        let pairs = [CKAPair(0, 1), CKAPair(1, 2), CKAPair(0, 2)]
        var one = LinearCKAAccumulator(dimensions: [7, 5, 4], pairs: pairs)
        try one.add([x, y, z])
        let refs = [Array(x.row(0)), Array(y.row(0)), Array(z.row(0))]
        var chunked = LinearCKAAccumulator(dimensions: [7, 5, 4], pairs: pairs)
        var first = LinearCKAAccumulator(dimensions: [7, 5, 4], pairs: pairs, references: refs)
        var second = LinearCKAAccumulator(dimensions: [7, 5, 4], pairs: pairs, references: refs)
        for r in [0..<13, 13..<14, 14..<40, 40..<60] {
            try chunked.add([x.rows(r), y.rows(r), z.rows(r)])
            if r.lowerBound < 14 { try first.add([x.rows(r), y.rows(r), z.rows(r)]) } else { try second.add([x.rows(r), y.rows(r), z.rows(r)]) }
        }
        try first.merge(second)
        for p in pairs + [CKAPair(2, 0)] {
            for e in [CKAEstimator.biased, .debiased] {
                let expected = try one.cka(p, estimator: e)
                XCTAssertEqual(try chunked.cka(p, estimator: e), expected, accuracy: 1e-12)
                XCTAssertEqual(try first.cka(p, estimator: e), expected, accuracy: 1e-12)
            }
        }
        XCTAssertEqual(first.count, 60)
        var other = LinearCKAAccumulator(dimensions: [7, 5, 4], pairs: pairs)
        try other.add([x.rows(5..<6), y.rows(5..<6), z.rows(5..<6)])
        XCTAssertThrowsError(try first.merge(other), "different reference rows cannot merge exactly")
    }

    func testUndefinedCases() throws {
        let constant = Matrix<Double>(rows: 10, cols: 3, repeating: 2)
        XCTAssertThrowsError(try CKA.linear(constant, x.rows(0..<10))) { e in
            XCTAssertEqual((e as? MetricUndefined)?.reason, "zero variance in the first representation (all rows equal up to float32 rounding)")
        }
        XCTAssertThrowsError(try CKA.linear(x.rows(0..<3), y.rows(0..<3), estimator: .debiased)) { e in
            XCTAssertEqual((e as? MetricUndefined)?.reason, "the debiased HSIC estimator needs at least 4 samples, got 3")
        }
        var bad = x
        bad[3, 2] = .nan
        XCTAssertThrowsError(try CKA.linear(bad, x)) { e in XCTAssertEqual((e as? MetricUndefined)?.reason, "NaN or Inf in representation 0") }
        XCTAssertThrowsError(try CKA.rbfGram(constant, bandwidth: .paperMedian)) { e in XCTAssertTrue(e is MetricUndefined) }
        XCTAssertThrowsError(try MinibatchCKAAccumulator(dimensions: [1, 1], pairs: [CKAPair(0, 1)], batchSize: 3))
    }

    func testRBFBandwidthRules() throws {
        let xs = x.rows(0..<11)
        var dists: [Double] = [], all: [Double] = []
        for i in 0..<11 {
            for j in 0..<11 {
                let d2 = (0..<7).reduce(0.0) { $0 + (xs[i, $1] - xs[j, $1]) * (xs[i, $1] - xs[j, $1]) }
                all.append(d2)
                if i < j { dists.append(d2.squareRoot()) }
            }
        }
        dists.sort(); all.sort()
        let m = dists[dists.count / 2]  // 55 pairs: the 28th smallest
        XCTAssertEqual(try CKA.rbfGram(xs, bandwidth: .paperMedian).gamma, 1 / (2 * m * m), accuracy: 1e-12)
        let m2 = all[all.count / 2]  // 121 entries including 11 zeros
        XCTAssertEqual(try CKA.rbfGram(xs, bandwidth: .kornblith(threshold: 0.5)).gamma, 1 / (2 * 0.25 * m2), accuracy: 1e-12)
    }

    // MARK: known bugs of other CKA code, as regression tests

    /// Zeroing a Gram diagonal by subtracting a broadcast diagonal (K − diag(K) as a row vector) is wrong.
    func testDiagonalIsMaskedNotBroadcast() throws {
        let xs = x.rows(0..<8), ys = y.rows(0..<8)
        let k = CKA.linearGram(xs), l = CKA.linearGram(ys)
        var kb = k, lb = l
        for i in 0..<8 { for j in 0..<8 { kb[i, j] -= k[j, j]; lb[i, j] -= l[j, j] } }
        // The buggy "zeroing" leaves off-diagonal entries shifted; feeding it to the estimator
        // (whose own masking then only clears the diagonal) gives a different number.
        let correct = naiveHSIC1(k, l)
        XCTAssertEqual(try CKA.hsicUnbiased(k, l), correct, accuracy: 1e-10 * abs(correct))
        XCTAssertGreaterThan(abs(try CKA.hsicUnbiased(kb, lb) - correct), 1e-3 * abs(correct))
    }

    /// The debiased denominator is sqrt(HSIC(X,X)·HSIC(Y,Y)); without the square root CKA(X, cX) ≠ 1.
    func testDebiasedDenominatorHasTheSquareRoot() throws {
        let big = Matrix(rows: x.rows, cols: x.cols, storage: x.storage.map { $0 * 30 })
        XCTAssertEqual(try CKA.linear(x, big, estimator: .debiased), 1, accuracy: 1e-12)
        XCTAssertEqual(try CKA.linear(big, y, estimator: .debiased), try CKA.linear(x, y, estimator: .debiased), accuracy: 1e-12)
        var acc = LinearCKAAccumulator(dimensions: [7, 7], pairs: [CKAPair(0, 1)])
        try acc.add([x, big])
        let xy = try acc.hsic(CKAPair(0, 1), estimator: .debiased)
        let noSqrt = xy / (try acc.hsic(CKAPair(0, 0), estimator: .debiased) * acc.hsic(CKAPair(1, 1), estimator: .debiased))
        XCTAssertGreaterThan(abs(noSqrt - 1), 0.5, "the buggy form must be distinguishable on this data")
    }

    /// Minibatch CKA averages HSIC over batches for each pair, independently of other layers.
    func testMinibatchAveragesOverBatchesPerPair() throws {
        let z = gaussianMatrix(60, 4, seed: 11)
        let batch = 12
        var alone = try MinibatchCKAAccumulator(dimensions: [7, 5], pairs: [CKAPair(0, 1)], batchSize: batch)
        var many = try MinibatchCKAAccumulator(dimensions: [7, 5, 4], pairs: [CKAPair(0, 1), CKAPair(1, 2), CKAPair(0, 2)], batchSize: batch)
        for r in [0..<7, 7..<30, 30..<60] {
            try alone.add([x.rows(r), y.rows(r)])
            try many.add([x.rows(r), y.rows(r), z.rows(r)])
        }
        XCTAssertEqual(alone.batches, 5)
        XCTAssertEqual(alone.droppedRows, 0)
        // Naive: HSIC₁ per batch from Gram matrices, means over batches, then the ratio.
        var xy = 0.0, xx = 0.0, yy = 0.0
        for b in 0..<5 {
            let r = (b * batch)..<((b + 1) * batch)
            let k = CKA.linearGram(x.rows(r)), l = CKA.linearGram(y.rows(r))
            xy += try CKA.hsicUnbiased(k, l); xx += try CKA.hsicUnbiased(k, k); yy += try CKA.hsicUnbiased(l, l)
        }
        let expected = (xy / 5) / ((xx / 5) * (yy / 5)).squareRoot()
        XCTAssertEqual(try alone.cka(CKAPair(0, 1)), expected, accuracy: 1e-12)
        XCTAssertEqual(try many.cka(CKAPair(0, 1)), expected, accuracy: 1e-12)
        // It is a different estimator from full-data debiased CKA.
        XCTAssertGreaterThan(abs(expected - (try CKA.linear(x, y, estimator: .debiased))), 1e-4)
    }

    // MARK: published oracle

    /// Kornblith et al.'s CKA demo: np.random.seed(1337); X = randn(100,10); Y = randn(100,10) + X
    /// gives linear CKA 0.55761, RBF CKA (threshold 0.5) 0.65483 and debiased linear CKA 0.51346.
    func testKornblithDemoValues() throws {
        guard let py = debianPython(modules: ["numpy"]) else {
            if pythonRequired { XCTFail("/usr/bin/python3 with numpy is required") }
            throw XCTSkip("numpy not available")
        }
        let code = """
        import numpy as np
        np.random.seed(1337)
        X = np.random.randn(100, 10)
        Y = np.random.randn(100, 10) + X
        print(" ".join(repr(v) for v in np.concatenate([X.ravel(), Y.ravel()])))
        """
        let r = try runProcess(py, ["-c", code])
        XCTAssertEqual(r.status, 0, r.stderr)
        let values = r.stdout.split(separator: " ").map { Double($0.trimmingCharacters(in: .whitespacesAndNewlines))! }
        XCTAssertEqual(values.count, 2000)
        let xs = Matrix(rows: 100, cols: 10, storage: Array(values[0..<1000]))
        let ys = Matrix(rows: 100, cols: 10, storage: Array(values[1000..<2000]))
        XCTAssertEqual(try CKA.linear(xs, ys), 0.55761, accuracy: 5e-6)
        XCTAssertEqual(try CKA.linear(xs, ys, estimator: .debiased), 0.51346, accuracy: 5e-6)
        let k = try CKA.rbfGram(xs, bandwidth: .kornblith(threshold: 0.5)).gram
        let l = try CKA.rbfGram(ys, bandwidth: .kornblith(threshold: 0.5)).gram
        XCTAssertEqual(try CKA.fromGrams(k, l, estimator: .biased), 0.65483, accuracy: 5e-6)
    }
}

/// The median by selection against numpy's definition on a full sort.
final class MedianSelectionTests: XCTestCase {
    func testSelectionGivesTheMedianOfTheSortedValues() {
        var rng = SeededGenerator(seed: 7)
        for n in [1, 2, 3, 4, 5, 10, 11, 100, 101, 1000, 1001] {
            for duplicates in [false, true] {
                // With duplicates: values from a handful of levels, so long runs of equal values.
                let values = (0..<n).map { _ in duplicates ? Double(Int.random(in: 0..<4, using: &rng)) : Double.random(in: -5..<5, using: &rng) }
                let s = values.sorted()
                let want = n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
                XCTAssertEqual(CKA.median(values), want, "n \(n), duplicates \(duplicates)")
                for k in [0, n / 3, n - 1] {
                    var a = values
                    XCTAssertEqual(CKA.select(&a, k), s[k])
                    XCTAssertTrue(a[..<k].allSatisfy { $0 <= s[k] } && a[(k + 1)...].allSatisfy { $0 >= s[k] })
                    XCTAssertEqual(a.sorted(), s, "a permutation of the values")
                }
            }
        }
        XCTAssertEqual(CKA.median([3, 1, 2, 2]), 2)
        XCTAssertEqual(CKA.median([4, 1, 3, 2]), 2.5)
    }
}
