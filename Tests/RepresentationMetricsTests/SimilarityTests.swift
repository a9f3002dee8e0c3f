import Foundation
import LinearAlgebra
@testable import RepresentationMetrics
import TestSupport
import XCTest

/// The similarity measures beyond CKA against closed forms, brute force and an independent numpy
/// implementation written from the published formulas (Tests/python/similarity_reference.py).
final class SimilarityTests: XCTestCase {
    func gaussian(_ n: Int, _ d: Int, seed: UInt64) -> Matrix<Double> {
        var rng = SeededGenerator(seed: seed)
        return Matrix(rows: n, cols: d) { _, _ in rng.nextGaussian() }
    }

    /// A random orthogonal d × d matrix (the Q of a Gaussian matrix's SVD, U·Vᵀ).
    func orthogonal(_ d: Int, seed: UInt64) throws -> Matrix<Double> {
        let svd = try gaussian(d, d, seed: seed).singularValueDecomposition()
        return Matrix.product(svd.u, svd.vt)
    }

    func shifted(_ x: Matrix<Double>, by c: Double) -> Matrix<Double> {
        Matrix(rows: x.rows, cols: x.cols) { i, j in x[i, j] + c * Double(j + 1) }
    }

    // MARK: closed forms

    /// Rotated, scaled and shifted copies have the same shape: distance and angle 0. Full whitening
    /// (α = 0) makes any invertible linear map look the same.
    func testProcrustesIsZeroForRotatedScaledShiftedCopies() throws {
        let x = gaussian(50, 6, seed: 1)
        let y = shifted(Matrix.product(x, try orthogonal(6, seed: 2), alpha: 3), by: 0.5)
        let r = try Similarity.procrustes(x, y)
        XCTAssertEqual(r.distance, 0, accuracy: 1e-6)
        XCTAssertEqual(r.angle, 0, accuracy: 1e-6)
        let mixed = Matrix.product(x, gaussian(6, 6, seed: 3))
        XCTAssertGreaterThan(try Similarity.procrustes(x, mixed).angle, 0.05)
        XCTAssertEqual(try Similarity.procrustes(x, mixed, alpha: 0).angle, 0, accuracy: 1e-6)
        XCTAssertEqual(try Similarity.svcca(x, mixed, variance: 1), 1, accuracy: 1e-12)
        XCTAssertEqual(try Similarity.pwcca(x, mixed), 1, accuracy: 1e-12)
    }

    /// One column each: X̂ᵀŶ is the Pearson correlation r, so θ = arccos |r| and d = √(2 − 2|r|).
    func testProcrustesOfOneColumnIsTheCorrelation() throws {
        let x = gaussian(40, 1, seed: 4), noise = gaussian(40, 1, seed: 5)
        let y = Matrix(rows: 40, cols: 1) { i, _ in -0.8 * x[i, 0] + noise[i, 0] }
        let xs = (0..<40).map { x[$0, 0] }, ys = (0..<40).map { y[$0, 0] }
        let mx = xs.reduce(0, +) / 40, my = ys.reduce(0, +) / 40
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in 0..<40 { sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) * (xs[i] - mx); syy += (ys[i] - my) * (ys[i] - my) }
        let r = abs(sxy / (sxx * syy).squareRoot())
        let p = try Similarity.procrustes(x, y)
        XCTAssertEqual(p.angle, Double.acos(r), accuracy: 1e-12)
        XCTAssertEqual(p.distance, (2 - 2 * r).squareRoot(), accuracy: 1e-12)
        // SVCCA and PWCCA of one column are |r| too.
        XCTAssertEqual(try Similarity.svcca(x, y), r, accuracy: 1e-12)
        XCTAssertEqual(try Similarity.pwcca(x, y), r, accuracy: 1e-12)
    }

    /// RSA is 1 for representations with the same RDM ranks, and depends only on RDM ranks.
    func testRSAOfMonotoneRelatedRDMsIsOne() throws {
        let x = gaussian(30, 5, seed: 6)
        let scaled = Matrix(rows: 30, cols: 5) { i, j in 2 * x[i, j] + 7 }  // per-row affine: same correlations
        XCTAssertEqual(try Similarity.rsa(x, scaled), 1, accuracy: 1e-12)
        let rotated = Matrix.product(x, try orthogonal(5, seed: 7))
        XCTAssertEqual(try Similarity.rsa(x, rotated, distance: .euclidean), 1, accuracy: 1e-12)
        XCTAssertEqual(try Similarity.rsa(x, rotated, distance: .cosine, comparison: .kendall), 1, accuracy: 1e-12)
    }

    func testAverageRanksAndKendallAgainstBruteForce() {
        XCTAssertEqual(Similarity.averageRanks([3, 1, 3, 2, 3]), [4, 1, 4, 2, 4])
        var rng = SeededGenerator(seed: 8)
        for m in [2, 3, 10, 57] {
            // Few levels, so many ties in x, y and both.
            let x = (0..<m).map { _ in Double(rng.next(below: 4)) }, y = (0..<m).map { _ in Double(rng.next(below: 3)) }
            var s = 0
            for i in 0..<m { for j in (i + 1)..<m { s += Int((x[i] - x[j]).sign == .minus ? -1 : (x[i] == x[j] ? 0 : 1)) * Int((y[i] - y[j]).sign == .minus ? -1 : (y[i] == y[j] ? 0 : 1)) } }
            XCTAssertEqual(Similarity.kendallTauA(x, y), Double(s) / Double(m * (m - 1) / 2), accuracy: 1e-15, "m \(m)")
        }
    }

    /// Cosine neighbours by brute force (every pair, sorted by similarity then index) against the
    /// Gram-block selection, on data with exactly tied similarities (duplicate rows of small integers).
    func testNeighboursMatchBruteForceWithTies() throws {
        var rng = SeededGenerator(seed: 9)
        var x = Matrix<Double>(rows: 700, cols: 4) { _, _ in Double(rng.next(below: 5)) + 1 }
        for i in 600..<700 { for j in 0..<4 { x[i, j] = x[i - 600, j] } }
        let k = 7
        let fast = try Similarity.neighbours(x, k: k)
        for i in stride(from: 0, to: 700, by: 37) {
            let norms = (0..<700).map { r in (0..<4).reduce(0.0) { $0 + x[r, $1] * x[r, $1] }.squareRoot() }
            let sims = (0..<700).filter { $0 != i }.map { j -> (Double, Int) in
                (Similarity.quantized((0..<4).reduce(0.0) { $0 + x[i, $1] * x[j, $1] } / (norms[i] * norms[j]), scale: 1), j)
            }
            let best = sims.sorted { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }.prefix(k).map(\.1).sorted()
            XCTAssertEqual(fast.indices[(i * k)..<((i + 1) * k)].map(Int.init), best, "row \(i)")
        }
        XCTAssertEqual(try Similarity.mutualKNN(x, Matrix(rows: 700, cols: 4) { i, j in 5 * x[i, j] }, k: k), 1)
    }

    func testUndefinedReasons() {
        let x = gaussian(12, 3, seed: 10)
        let constant = Matrix<Double>(rows: 12, cols: 3, repeating: 2)
        func reason(_ body: () throws -> Double) -> String? {
            do { _ = try body(); return nil } catch { return "\(error)" }
        }
        XCTAssertEqual(reason { try Similarity.procrustes(x, constant).angle }, "zero variance (all rows equal up to float32 rounding)")
        XCTAssertEqual(reason { try Similarity.svcca(constant, x) }, "zero variance (all rows equal up to float32 rounding)")
        XCTAssertEqual(reason { try Similarity.mutualKNN(x, x, k: 12) }, "mutual k-NN needs more than k = 12 rows, got 12")
        XCTAssertEqual(reason { try Similarity.rsa(x, constant) }, "clip vector 0 has the same value in every feature: its correlation distance is undefined")
        var bad = x
        bad[3, 1] = .nan
        XCTAssertEqual(reason { try Similarity.pwcca(x, bad) }, "NaN or Inf in the data")
        XCTAssertEqual(reason { try Similarity.rsa(x, gaussian(11, 3, seed: 1)) }, "different numbers of samples (12 vs 11)")
    }

    // MARK: permutation test

    /// Every permuted statistic equals the measure refitted on explicitly permuted rows.
    func testPermutedStatisticsEqualRefits() throws {
        let x = gaussian(40, 5, seed: 11)
        let y = Matrix.product(x, gaussian(5, 7, seed: 12))
        let perm = SimilarityPermutationTest(permutations: 1, seed: 3).orders(rows: 40)[0]
        let py = y.rows(at: perm)
        let (sx, sy, spy) = (try Similarity.subspace(x), try Similarity.subspace(y), try Similarity.subspace(py))
        XCTAssertEqual(try Similarity.procrustesSimilarity(sx, sy, alpha: 0.3, permutation: perm),
                       try Similarity.procrustesSimilarity(sx, spy, alpha: 0.3), accuracy: 1e-12)
        XCTAssertEqual(try Similarity.svccaSimilarity(sx, sy, variance: 0.95, permutation: perm),
                       try Similarity.svccaSimilarity(sx, spy, variance: 0.95), accuracy: 1e-12)
        XCTAssertEqual(try Similarity.pwccaSimilarity(sx, sy, permutation: perm), try Similarity.pwccaSimilarity(sx, spy), accuracy: 1e-12)
        for c in RDMComparison.allCases {
            let (rx, ry, rpy) = try (Similarity.rdm(x, distance: .correlation, comparison: c), Similarity.rdm(y, distance: .correlation, comparison: c),
                                     Similarity.rdm(py, distance: .correlation, comparison: c))
            XCTAssertEqual(try Similarity.rsaSimilarity(rx, ry, comparison: c, permutation: perm),
                           try Similarity.rsaSimilarity(rx, rpy, comparison: c), accuracy: 1e-12)
        }
        let (nx, ny, npy) = try (Similarity.neighbours(x, k: 5), Similarity.neighbours(y, k: 5), Similarity.neighbours(py, k: 5))
        XCTAssertEqual(try Similarity.mutualKNNSimilarity(nx, ny, permutation: perm), try Similarity.mutualKNNSimilarity(nx, npy))
        let (gx, gy) = try (Similarity.centeredGram(x), Similarity.centeredGram(y))
        XCTAssertEqual(try Similarity.ckaSimilarity(gx, gy, permutation: perm), try CKA.linear(x, py), accuracy: 1e-12)
        XCTAssertEqual(try Similarity.ckaSimilarity(gx, gy), try CKA.linear(x, y), accuracy: 1e-12)
    }

    /// Under the null (independent X and Y) the p-values are uniform: Kolmogorov–Smirnov over 200 null
    /// draws at α = 0.01 (critical D = 1.628/√200, the asymptotic value); a planted dependence gets the
    /// smallest p, 1/(m + 1). m = 1000 permutations for the Gram-level statistics (CKA, RSA); 250 for
    /// Procrustes, whose permutations each take a product and an SVD (p then has 251 levels, still
    /// fine enough for a KS test over 200 draws).
    func testPermutationPValuesAreUniformUnderTheNull() throws {
        let test = SimilarityPermutationTest(permutations: 1000, seed: 21)
        let critical = 1.628 / Double(200).squareRoot()
        let statistics: [(String, (Matrix<Double>, Matrix<Double>) throws -> @Sendable ([Int]?) throws -> Double)] = [
            ("procrustes", { x, y in let (a, b) = (try Similarity.subspace(x), try Similarity.subspace(y)); return { try Similarity.procrustesSimilarity(a, b, alpha: 1, permutation: $0) } }),
            ("rsa", { x, y in let (a, b) = (try Similarity.rdm(x, distance: .correlation, comparison: .spearman), try Similarity.rdm(y, distance: .correlation, comparison: .spearman)); return { try Similarity.rsaSimilarity(a, b, comparison: .spearman, permutation: $0) } }),
            ("cka", { x, y in let (a, b) = (try Similarity.centeredGram(x), try Similarity.centeredGram(y)); return { try Similarity.ckaSimilarity(a, b, permutation: $0) } }),
        ]
        for (name, make) in statistics {
            var ps: [Double] = []
            let nullTest = SimilarityPermutationTest(permutations: name == "procrustes" ? 250 : 1000, seed: 21)
            for draw in 0..<200 {
                let x = gaussian(24, 3, seed: UInt64(1000 + draw)), y = gaussian(24, 4, seed: UInt64(5000 + draw))
                ps.append(try nullTest.test(rows: 24, statistic: make(x, y)).p)
            }
            ps.sort()
            var d = 0.0
            for (i, p) in ps.enumerated() { d = max(d, abs(p - Double(i) / 200), abs(p - Double(i + 1) / 200)) }
            XCTAssertLessThan(d, critical, "\(name): KS distance \(d) of the null p-values from uniform")
            let x = gaussian(24, 3, seed: 77)
            let y = Matrix(rows: 24, cols: 3) { i, j in x[i, j] + 0.3 * Double((i * 7 + j * 3) % 5) }
            XCTAssertEqual(try test.test(rows: 24, statistic: make(x, y)).p, 1 / 1001, "\(name): a planted dependence")
        }
        // Mutual k-NN: the planted dependence too (its statistic is discrete, so no KS here).
        let x = gaussian(60, 3, seed: 78)
        let (a, b) = (try Similarity.neighbours(x, k: 5), try Similarity.neighbours(Matrix.product(x, try orthogonal(3, seed: 79)), k: 5))
        XCTAssertEqual(try test.test(rows: 60) { try Similarity.mutualKNNSimilarity(a, b, permutation: $0) }.p, 1 / 1001)
    }

    // MARK: independent implementation

    /// Every measure against numpy on random inputs and on degenerate ones (rank-deficient, N < D,
    /// duplicate rows): ≤ 1e-10 relative.
    func testAgainstNumpyReference() throws {
        guard let py = debianPython(modules: ["numpy"]) else {
            if pythonRequired { XCTFail("/usr/bin/python3 with numpy is required") }
            throw XCTSkip("numpy not available")
        }
        let script = repositoryRoot.appendingPathComponent("Tests/python/similarity_reference.py").path
        for (seed, n, dx, dy, mode) in [(1, 60, 8, 12, "random"), (2, 45, 10, 10, "random"), (3, 50, 10, 6, "lowrank"),
                                        (4, 20, 30, 25, "wide"), (5, 40, 6, 9, "duplicates")] {
            let r = try runProcess(py, [script, "\(seed)", "\(n)", "\(dx)", "\(dy)", mode])
            XCTAssertEqual(r.status, 0, r.stderr)
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            let x = Matrix(rows: n, cols: dx, storage: try XCTUnwrap(json["x"] as? [Double]))
            let y = Matrix(rows: n, cols: dy, storage: try XCTUnwrap(json["y"] as? [Double]))
            let want = try XCTUnwrap(json["values"] as? [String: Double])
            var got: [String: Double] = [:]
            for alpha in [1.0, 0.5, 0.0] where want["procrustes_angle_alpha\(alpha)"] != nil {
                let p = try Similarity.procrustes(x, y, alpha: alpha)
                got["procrustes_distance_alpha\(alpha)"] = p.distance
                got["procrustes_angle_alpha\(alpha)"] = p.angle
            }
            got["svcca"] = try Similarity.svcca(x, y)
            got["svcca_0.9"] = try Similarity.svcca(x, y, variance: 0.9)
            got["pwcca"] = try Similarity.pwcca(x, y)
            got["pwcca_yx"] = try Similarity.pwcca(y, x)
            for d in RDMDistance.allCases { got["rsa_\(d.rawValue)_spearman"] = try Similarity.rsa(x, y, distance: d) }
            got["rsa_correlation_kendall"] = try Similarity.rsa(x, y, comparison: .kendall)
            for k in [1, 5, 10] { got["mutual_knn_\(k)"] = try Similarity.mutualKNN(x, y, k: k) }
            got["cka_linear_biased"] = try Similarity.ckaSimilarity(Similarity.centeredGram(x), Similarity.centeredGram(y))
            XCTAssertEqual(Set(got.keys), Set(want.keys), mode)
            for (key, w) in want {
                let g = try XCTUnwrap(got[key])
                XCTAssertLessThanOrEqual(abs(g - w), 1e-10 * max(abs(w), 1e-3), "\(mode) seed \(seed): \(key) \(g) vs numpy \(w)")
            }
        }
    }
}

/// RSA against rsatoolbox itself (`calc_rdm` and `compare`), in the test venv the test command builds.
final class RSAToolboxTests: XCTestCase {
    func testRSAAgreesWithRSAToolbox() throws {
        guard let python = ProcessInfo.processInfo.environment["BWACT_PYTHON"],
              let probe = try? runProcess(python, ["-c", "import rsatoolbox"]), probe.status == 0 else {
            if pythonRequired { XCTFail("BWACT_PYTHON with rsatoolbox is required (scripts/test.sh installs it)") }
            throw XCTSkip("rsatoolbox not available")
        }
        let script = repositoryRoot.appendingPathComponent("Tests/python/rsatoolbox_check.py").path
        for (seed, n, dx, dy) in [(1, 30, 5, 7), (2, 55, 12, 4)] {
            let r = try runProcess(python, [script, "\(seed)", "\(n)", "\(dx)", "\(dy)"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            let x = Matrix(rows: n, cols: dx, storage: try XCTUnwrap(json["x"] as? [Double]))
            let y = Matrix(rows: n, cols: dy, storage: try XCTUnwrap(json["y"] as? [Double]))
            let want = try XCTUnwrap(json["values"] as? [String: Double])
            XCTAssertEqual(want.count, 4)
            for d in [RDMDistance.correlation, .euclidean] {
                for c in RDMComparison.allCases {
                    let w = try XCTUnwrap(want["\(d.rawValue)_\(c.rawValue)"])
                    let g = try Similarity.rsa(x, y, distance: d, comparison: c)
                    XCTAssertLessThanOrEqual(abs(g - w), 1e-10 * abs(w), "seed \(seed) \(d) \(c): \(g) vs rsatoolbox \(w)")
                }
            }
        }
    }
}

/// The thresholds of the measure-robustness section: values on pairs planted at a linear CKA.
final class SimilarityCalibrationTests: XCTestCase {
    /// The planted pair has the CKA asked for, and with many rows the Procrustes threshold is the
    /// closed form: for X, E independent standard normal and Y = X + σE, as N → ∞ with D fixed,
    /// CKA → 1/(1 + σ²) and ‖X̂ᵀŶ‖_* → 1/√(1 + σ²), so the angle at CKA c is arccos √c.
    func testPlantedPairsAndTheLargeSampleProcrustesThreshold() throws {
        for level in [0.8, 0.95] {
            let (x, y) = try SimilarityCalibration.plantedPair(ckaLevel: level, rows: 300, features: 12, seed: 5)
            XCTAssertEqual(try CKA.linear(x, y), level, accuracy: 1e-9)
            let angle = try SimilarityCalibration.threshold(.procrustesAngle, ckaLevel: level, rows: 6000, features: 6, draws: 2)
            XCTAssertEqual(angle, Double.acos(level.squareRoot()), accuracy: 0.01, "level \(level)")
        }
    }

    /// More similar pairs (a higher CKA) give a smaller angle and a larger neighbour overlap; the
    /// function is deterministic.
    func testThresholdsFollowTheCKALevel() throws {
        let knn95 = try SimilarityCalibration.threshold(.mutualKNN, ckaLevel: 0.95, rows: 400, features: 16)
        let knn80 = try SimilarityCalibration.threshold(.mutualKNN, ckaLevel: 0.8, rows: 400, features: 16)
        XCTAssertGreaterThan(knn95, knn80)
        XCTAssertTrue((0...1).contains(knn80) && (0...1).contains(knn95))
        XCTAssertEqual(knn95, try SimilarityCalibration.threshold(.mutualKNN, ckaLevel: 0.95, rows: 400, features: 16))
        XCTAssertLessThan(try SimilarityCalibration.threshold(.procrustesAngle, ckaLevel: 0.95, rows: 400, features: 16),
                          try SimilarityCalibration.threshold(.procrustesAngle, ckaLevel: 0.8, rows: 400, features: 16))
        XCTAssertThrowsError(try SimilarityCalibration.threshold(.mutualKNN, ckaLevel: 1, rows: 40, features: 4))
        XCTAssertThrowsError(try SimilarityCalibration.threshold(.effectiveRank, ckaLevel: 0.9, rows: 40, features: 4))
    }
}
