import Foundation
import LinearAlgebra
import RepresentationMetrics
import XCTest

/// Deterministic test data shared by the spectrum, pairwise-geometry and retrieval tests.
enum GeomTestData {
    /// The matrix Python's `lcg(rows, cols, seed)` builds, value for value (every operation is exact in float64):
    /// ```python
    /// def lcg(rows, cols, seed):
    ///     s = seed; u = np.empty((rows, cols))
    ///     for i in range(rows):
    ///         for j in range(cols):
    ///             s = (1103515245 * s + 12345) % 2**31
    ///             u[i, j] = (s >> 8) / 2**23
    ///     return (u - 0.5) * np.arange(1, cols + 1) + 0.5 * u[:, :1] + 2.0
    /// ```
    static func lcg(_ rows: Int, _ cols: Int, seed: UInt64) -> Matrix<Double> {
        var s = seed
        var u = Matrix<Double>(rows: rows, cols: cols)
        for i in 0..<rows {
            for j in 0..<cols {
                s = (1_103_515_245 &* s &+ 12345) % (1 << 31)
                u[i, j] = Double(s >> 8) / Double(1 << 23)
            }
        }
        return Matrix(rows: rows, cols: cols) { i, j in (u[i, j] - 0.5) * Double(j + 1) + 0.5 * u[i, 0] + 2.0 }
    }

    static func gaussian(_ rows: Int, _ cols: Int, seed: UInt64, scale: Double = 1, offset: Double = 0) -> Matrix<Double> {
        var g = SeededGenerator(seed: seed)
        return Matrix(rows: rows, cols: cols) { _, _ in offset + scale * g.nextGaussian() }
    }

    /// N×D data whose sample covariance XcᵀXc/(N−1) is V·diag(λ)·Vᵀ for a random orthogonal V (so its eigenvalues
    /// are exactly λ up to rounding): X = 1·oᵀ + U·diag(sqrt((N−1)λ))·Vᵀ, U orthonormal columns orthogonal to 1
    /// (left singular vectors of a centred Gaussian matrix), o a random offset — the construction of `spectrum.h5`.
    static func planted(_ lambda: [Double], samples n: Int, seed: UInt64, rotate: Bool = true) throws -> Matrix<Double> {
        let d = lambda.count
        let u = try gaussian(n, d, seed: seed).centeredColumns().singularValueDecomposition().u
        let v = rotate ? try gaussian(d, d, seed: seed + 1).singularValueDecomposition().u : .identity(d)
        let scaled = Matrix(rows: n, cols: d) { i, j in u[i, j] * (Double(n - 1) * lambda[j]).squareRoot() }
        var x = Matrix.product(scaled, v, transposeB: true)
        let offset = gaussian(1, d, seed: seed + 2, scale: 3)
        for i in 0..<n { for j in 0..<d { x[i, j] += offset[0, j] } }
        return x
    }
}

/// |a − b| ≤ tol·max(|b|, floor).
func assertRelative(_ a: Double, _ b: Double, _ tol: Double, floor: Double = 1e-300, _ message: String = "",
                    file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertLessThanOrEqual(abs(a - b), tol * max(abs(b), floor), "\(a) vs \(b) \(message)", file: file, line: line)
}

/// Largest |aᵢⱼ − bᵢⱼ| relative to the largest |bᵢⱼ|.
func maxRelativeDifference(_ a: Matrix<Double>, _ b: Matrix<Double>) -> Double {
    precondition(a.rows == b.rows && a.cols == b.cols)
    let scale = b.storage.map(abs).max() ?? 0
    let diff = zip(a.storage, b.storage).map { abs($0 - $1) }.max() ?? 0
    return scale > 0 ? diff / scale : diff
}

func assertUndefined<T>(_ expression: @autoclosure () throws -> T, containing text: String,
                        file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try expression(), file: file, line: line) { error in
        guard let undefined = error as? MetricUndefined else {
            return XCTFail("expected MetricUndefined, got \(error)", file: file, line: line)
        }
        XCTAssertTrue(undefined.reason.contains(text), "reason '\(undefined.reason)' lacks '\(text)'", file: file, line: line)
    }
}

final class SpectrumTests: XCTestCase {
    // Closed forms hold to rounding; data built by `planted` carries ~1e-15 relative error into λ, so 1e-10
    // leaves a wide margin while still failing on any wrong formula.
    let closedFormTolerance = 1e-10

    // MARK: closed forms

    func testIsotropicCovarianceGivesFullRankEverywhere() throws {
        let d = 10
        let x = try GeomTestData.planted([Double](repeating: 1, count: d), samples: 50, seed: 1)
        let s = try CovarianceSpectrum.summary(of: x)
        XCTAssertEqual(s.samples, 50)
        XCTAssertEqual(s.dimension, d)
        for l in s.eigenvalues { assertRelative(l, 1, closedFormTolerance) }
        assertRelative(s.effectiveRank, Double(d), closedFormTolerance)
        assertRelative(s.participationRatio, Double(d), closedFormTolerance)
        assertRelative(s.isotropy, 1, closedFormTolerance)
        assertRelative(try XCTUnwrap(s.conditionNumber), 1, closedFormTolerance)
        XCTAssertNil(s.conditionNumberUndefined)
        // 9 of 10 equal eigenvalues explain exactly 90%: the tie counts as reached.
        XCTAssertEqual(s.k90, 9)
    }

    func testRankDeficientDataHasEffectiveRankRAndNoConditionNumber() throws {
        // spectrum.h5 depth 1: λ = (1, 1, 1, 0, 0, 0, 0, 0), N = 64.
        let x = try GeomTestData.planted([1, 1, 1, 0, 0, 0, 0, 0], samples: 64, seed: 2)
        let s = try CovarianceSpectrum.summary(of: x)
        assertRelative(s.effectiveRank, 3, closedFormTolerance)
        assertRelative(s.participationRatio, 3, closedFormTolerance)
        assertRelative(s.isotropy, 8.0 / 3.0, closedFormTolerance)  // 1 / (3/8)
        XCTAssertEqual(s.k90, 3)                                      // 2/3 < 0.9 ≤ 3/3
        XCTAssertNil(s.conditionNumber)
        XCTAssertEqual(s.conditionNumberUndefined, "rank deficient (rank 3 of 8)")
        for l in s.eigenvalues.suffix(5) { XCTAssertLessThan(l, 1e-13) }
    }

    func testHandComputedSpectrum8421() throws {
        // λ = (8, 4, 2, 1), Σλ = 15, p = (8, 4, 2, 1)/15.
        // H = −Σ p log p = log 15 − (8·log 8 + 4·log 4 + 2·log 2 + 1·log 1)/15 = log 15 − (34/15)·log 2,
        // so effective rank = e^H = 15 · 2^(−34/15) ≈ 3.1171.
        // Participation ratio = 15² / (64 + 16 + 4 + 1) = 225/85 = 45/17 ≈ 2.647.
        // Isotropy = 8 / (15/4) = 32/15. Condition number = 8/1.
        // k90: 0.9·15 = 13.5; cumulative sums 8, 12, 14 → k90 = 3.
        let expectedRank = 15 * pow(2, -34.0 / 15.0)
        let fromValues = try CovarianceSpectrum.summary(eigenvalues: [1, 8, 2, 4], samples: 20)
        let fromData = try CovarianceSpectrum.summary(of: GeomTestData.planted([8, 4, 2, 1], samples: 20, seed: 3))
        for s in [fromValues, fromData] {
            XCTAssertEqual(s.eigenvalues.count, 4)
            for (l, e) in zip(s.eigenvalues, [8.0, 4, 2, 1]) { assertRelative(l, e, closedFormTolerance) }
            assertRelative(s.effectiveRank, expectedRank, closedFormTolerance)
            assertRelative(s.participationRatio, 45.0 / 17.0, closedFormTolerance)
            assertRelative(s.isotropy, 32.0 / 15.0, closedFormTolerance)
            assertRelative(try XCTUnwrap(s.conditionNumber), 8, closedFormTolerance)
            XCTAssertEqual(s.k90, 3)
        }
        XCTAssertNil(fromValues.rankMe)
        XCTAssertNotNil(fromData.rankMe)
    }

    func testK90HandCases() throws {
        // λ = (5, 3, 1, 1): Σ = 10, target 9; cumulative 5, 8, 9 → k90 = 3 (reached exactly).
        XCTAssertEqual(try CovarianceSpectrum.summary(eigenvalues: [5, 3, 1, 1], samples: 10).k90, 3)
        // λ = (5, 3, 0.9, 1.1) sorted (5, 3, 1.1, 0.9): cumulative 5, 8, 9.1 ≥ 9 → 3.
        XCTAssertEqual(try CovarianceSpectrum.summary(eigenvalues: [5, 3, 0.9, 1.1], samples: 10).k90, 3)
        // λ = (9.5, 0.5): 9.5 ≥ 9 → 1.  λ = (8.9, 1.1): 8.9 < 9 → 2.
        XCTAssertEqual(try CovarianceSpectrum.summary(eigenvalues: [0.5, 9.5], samples: 10).k90, 1)
        XCTAssertEqual(try CovarianceSpectrum.summary(eigenvalues: [8.9, 1.1], samples: 10).k90, 2)
    }

    func testZeroVarianceAndBadInputAreUndefined() throws {
        // spectrum.h5 depth 3: all clips identical.
        let constant = Matrix<Double>(rows: 10, cols: 4) { _, j in Double(j) + 0.5 }
        assertUndefined(try CovarianceSpectrum.summary(of: constant), containing: "zero variance")
        assertUndefined(try CovarianceSpectrum.summary(eigenvalues: [0, 0, 0], samples: 5), containing: "zero variance")
        assertUndefined(try CovarianceSpectrum.summary(of: Matrix<Double>(rows: 1, cols: 3, repeating: 1)),
                        containing: "at least 2 samples")
        var withNaN = GeomTestData.lcg(6, 3, seed: 1)
        withNaN[2, 1] = .nan
        assertUndefined(try CovarianceSpectrum.summary(of: withNaN), containing: "non-finite")
        assertUndefined(try CovarianceSpectrum.rankMe(singularValues: [0, 0]), containing: "zero")
    }

    // MARK: numpy cross-checks

    func testTallMatrixMatchesNumpy() throws {
        // numpy 1.24.2 (Debian /usr/bin/python3), with lcg() from GeomTestData.lcg:
        //   X = lcg(40, 6, 7); n, d = X.shape
        //   S = np.linalg.svd(X - X.mean(0), compute_uv=False); lam = S**2 / (n - 1)
        //   (agrees with np.sort(np.linalg.eigvalsh(np.cov(X, rowvar=False)))[::-1] to 1.1e-15)
        //   p = lam / lam.sum(); np.exp(-(p * np.log(p)).sum()); lam.sum()**2 / (lam**2).sum()
        //   lam.max() / lam.mean(); np.searchsorted(np.cumsum(lam) / lam.sum(), 0.9) + 1; lam.max() / lam.min()
        //   s = np.linalg.svd(X, compute_uv=False); q = s / s.sum() + 1e-7; np.exp(-(q * np.log(q)).sum())
        let lambda = [3.6506564688487217, 1.7028994946161526, 0.8524450393534465,
                      0.5957944068464288, 0.4116959378106876, 0.16315767844397788]
        let s = try CovarianceSpectrum.summary(of: GeomTestData.lcg(40, 6, seed: 7))
        // Both float64 with O(1) condition: agreement to 1e-10 relative (observed ~1e-15).
        let tol = 1e-10
        for (a, b) in zip(s.eigenvalues, lambda) { assertRelative(a, b, tol) }
        assertRelative(s.effectiveRank, 3.9928118857115114, tol)
        assertRelative(s.participationRatio, 3.1085541535124848, tol)
        assertRelative(s.isotropy, 2.9693616622030157, tol)
        XCTAssertEqual(s.k90, 4)
        assertRelative(try XCTUnwrap(s.conditionNumber), 22.375020922488893, tol)
        assertRelative(try XCTUnwrap(s.rankMe), 4.046054045144638, tol)
    }

    func testWideMatrixMatchesNumpyThroughTheGramPath() throws {
        // N = 5 ≤ D = 8, so the N×N centred Gram is used. numpy, as in the previous test:
        //   X = lcg(5, 8, 11); S = np.linalg.svd(X - X.mean(0), compute_uv=False)
        //   lam = np.concatenate([S**2 / 4, np.zeros(3)])   # 5 values, the last ~2e-32, padded to D = 8
        //   p = lam / lam.sum(); pp = p[p > 1e-15]; np.exp(-(pp * np.log(pp)).sum()) ... (rest as above)
        let lambda = [11.056972299078836, 6.812351251341538, 1.3617334797128189, 1.0532091043126552]
        let s = try CovarianceSpectrum.summary(of: GeomTestData.lcg(5, 8, seed: 11))
        let tol = 1e-10
        XCTAssertEqual(s.eigenvalues.count, 8)
        for (a, b) in zip(s.eigenvalues, lambda) { assertRelative(a, b, tol) }
        for l in s.eigenvalues.suffix(4) { XCTAssertLessThan(l, 1e-12 * lambda[0]) }
        assertRelative(s.effectiveRank, 2.8070062282618875, tol)
        assertRelative(s.participationRatio, 2.397339904588349, tol)
        assertRelative(s.isotropy, 4.360807426127138, tol)
        XCTAssertEqual(s.k90, 3)
        XCTAssertNil(s.conditionNumber)
        XCTAssertEqual(s.conditionNumberUndefined, "rank deficient (rank 4 of 8)")
        assertRelative(try XCTUnwrap(s.rankMe), 3.8530290341380504, tol)
    }

    func testGramPathAgreesWithCovariancePath() throws {
        // Same nonzero eigenvalues from the N×N Gram and the D×D covariance (computed here directly).
        for (n, d) in [(6, 9), (9, 9), (3, 20)] {
            let x = GeomTestData.gaussian(n, d, seed: UInt64(n * 100 + d), offset: 1)
            let viaSummary = try CovarianceSpectrum.summary(of: x).eigenvalues
            var c = Matrix.gramOfColumns(x.centeredColumns())
            for i in c.storage.indices { c.storage[i] /= Double(n - 1) }
            let viaCovariance = try CovarianceSpectrum.eigenvalues(covariance: c)
            XCTAssertEqual(viaSummary.count, d)
            // Absolute agreement relative to λmax: zeros on one path are ~1e-16·λmax on the other.
            for (a, b) in zip(viaSummary, viaCovariance) { XCTAssertEqual(a, b, accuracy: 1e-12 * viaCovariance[0]) }
        }
    }

    // MARK: RankMe

    func testRankMeClosedFormAndEpsilon() throws {
        // k equal singular values: p = 1/k + 1e-7 for all k, so RankMe = exp(−(1 + k·1e-7)·log(1/k + 1e-7)),
        // slightly above k (numpy: k = 4, p = 0.25 + 1e-7; np.exp(-4 * p * np.log(p)) -> 4.000000618070706).
        for k in [1, 4, 10] {
            let p = 1 / Double(k) + 1e-7
            let expected = exp(-Double(k) * p * log(p))
            assertRelative(try CovarianceSpectrum.rankMe(singularValues: [Double](repeating: 2.5, count: k)), expected, 1e-14)
        }
        // Without ε this would be exactly 4; with ε it must differ by far more than rounding.
        assertRelative(try CovarianceSpectrum.rankMe(singularValues: [1, 1, 1, 1]), 4.000000618070706, 1e-12)
        // numpy: s = np.array([3., 2., 1., 0.]); q = s / s.sum() + 1e-7; np.exp(-(q * np.log(q)).sum())
        //   -> 2.749463866041801
        assertRelative(try CovarianceSpectrum.rankMe(singularValues: [0, 1, 3, 2]), 2.749463866041801, 1e-12)
    }

    func testRankMeFromUncentredGramMatchesSVD() throws {
        for (n, d) in [(40, 6), (5, 8)] {
            let x = GeomTestData.lcg(n, d, seed: 7)
            let viaSVD = try CovarianceSpectrum.rankMe(singularValues: x.singularValues())
            let viaGram = try CovarianceSpectrum.rankMe(uncentredGram: Matrix.gramOfColumns(x), samples: n)
            // σ from sqrt(eig(XᵀX)): relative error ≲ ε·(σmax/σ)²; well under 1e-10 for this well-conditioned X
            // (for N < D the D − N zero σ come out ~1e-8·σmax, moving RankMe by ~1e-8·(D−N)·|log|, hence 1e-7).
            assertRelative(viaGram, viaSVD, n > d ? 1e-10 : 1e-7)
        }
    }

    // MARK: streaming accumulator

    func testChunkedAccumulationEqualsOneShot() throws {
        // A large common offset (1e4 on unit-scale spread): the naive XᵀX − n·x̄x̄ᵀ loses ~8 digits here, so the
        // 1e-12 tolerance also checks that the reference-row shift is in effect.
        let x = GeomTestData.gaussian(101, 7, seed: 5, offset: 1e4)
        let reference = Matrix.gramOfColumns(x.centeredColumns())
        let expected = Matrix(rows: 7, cols: 7) { i, j in reference[i, j] / 100 }
        var acc = CovarianceAccumulator(dimension: 7)
        var start = 0
        for size in [1, 7, 13, 40, 40] {
            try acc.add(x.rows(start..<(start + size)))
            start += size
        }
        XCTAssertEqual(acc.count, 101)
        XCTAssertLessThanOrEqual(maxRelativeDifference(try acc.covariance(), expected), 1e-12)
        XCTAssertLessThanOrEqual(maxRelativeDifference(acc.uncentredGram(), Matrix.gramOfColumns(x)), 1e-12)

        // Float32 chunks are accepted and accumulated in float64.
        var accF = CovarianceAccumulator(dimension: 7)
        let xf = GeomTestData.gaussian(30, 7, seed: 6).converted(to: Float.self)
        try accF.add(xf)
        let refF = Matrix.gramOfColumns(xf.converted(to: Double.self).centeredColumns())
        XCTAssertLessThanOrEqual(maxRelativeDifference(try accF.covariance(), Matrix(rows: 7, cols: 7) { refF[$0, $1] / 29 }), 1e-12)
    }

    func testMergeAcrossDifferentReferencesIsExact() throws {
        // Three "processes" with different reference rows (their first rows) and very different offsets.
        let a = GeomTestData.gaussian(20, 5, seed: 10, offset: 50)
        let b = GeomTestData.gaussian(33, 5, seed: 11, offset: -20)
        let c = GeomTestData.gaussian(1, 5, seed: 12, offset: 3)
        var all = a.storage; all += b.storage; all += c.storage
        let x = Matrix(rows: 54, cols: 5, storage: all)

        var single = CovarianceAccumulator(dimension: 5)
        try single.add(x)
        var pa = CovarianceAccumulator(dimension: 5), pb = CovarianceAccumulator(dimension: 5)
        var pc = CovarianceAccumulator(dimension: 5)
        try pa.add(a); try pb.add(b); try pc.add(c)
        var merged = CovarianceAccumulator(dimension: 5)      // empty first: takes the other's state
        try merged.merge(pb)
        try merged.merge(pa)
        try merged.merge(CovarianceAccumulator(dimension: 5)) // empty other: no change
        try merged.merge(pc)

        XCTAssertEqual(merged.count, 54)
        XCTAssertNotEqual(merged.reference, single.reference)
        let covariance = try single.covariance()
        let reference = Matrix.gramOfColumns(x.centeredColumns())
        XCTAssertLessThanOrEqual(maxRelativeDifference(covariance, Matrix(rows: 5, cols: 5) { reference[$0, $1] / 53 }), 1e-12)
        XCTAssertLessThanOrEqual(maxRelativeDifference(try merged.covariance(), covariance), 1e-12)
        XCTAssertLessThanOrEqual(maxRelativeDifference(merged.uncentredGram(), Matrix.gramOfColumns(x)), 1e-12)

        // The spectrum summary from the stream equals the one-shot summary.
        let streamed = try CovarianceSpectrum.summary(of: merged)
        let oneShot = try CovarianceSpectrum.summary(of: x)
        for (s, o) in zip(streamed.eigenvalues, oneShot.eigenvalues) { assertRelative(s, o, 1e-10) }
        assertRelative(streamed.effectiveRank, oneShot.effectiveRank, 1e-10)
        assertRelative(try XCTUnwrap(streamed.rankMe), try XCTUnwrap(oneShot.rankMe), 1e-10)
    }

    func testAccumulatorRejectsBadInput() throws {
        var acc = CovarianceAccumulator(dimension: 3)
        XCTAssertThrowsError(try acc.add(Matrix<Double>(rows: 2, cols: 4)))
        XCTAssertThrowsError(try acc.merge(CovarianceAccumulator(dimension: 2)))
        try acc.add(Matrix<Double>([[1, 2, 3]]))
        assertUndefined(try acc.covariance(), containing: "at least 2 samples")
        try acc.add(Matrix<Double>([[1, .infinity, 3]]))
        assertUndefined(try acc.covariance(), containing: "non-finite")
        assertUndefined(try CovarianceSpectrum.summary(of: acc), containing: "non-finite")
    }

    func testSummaryIsCodable() throws {
        let s = try CovarianceSpectrum.summary(of: GeomTestData.lcg(5, 8, seed: 11))
        let decoded = try JSONDecoder().decode(SpectrumSummary.self, from: JSONEncoder().encode(s))
        XCTAssertEqual(decoded, s)
    }
}
