import Foundation
import LinearAlgebra
import RepresentationMetrics
import XCTest

final class PairwiseGeometryTests: XCTestCase {
    /// Wang & Isola's uniformity straight from the definition: explicit differences zᵢ − zⱼ, mean over ordered
    /// pairs i ≠ j, no Gram identity and no log-sum-exp.
    private func naiveUniformity(_ x: Matrix<Double>) -> Double {
        let n = x.rows
        let z = (0..<n).map { i -> [Double] in
            let r = Array(x.row(i))
            let norm = r.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return r.map { $0 / norm }
        }
        var sum = 0.0
        for i in 0..<n {
            for j in 0..<n where j != i {
                let d2 = zip(z[i], z[j]).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                sum += exp(-2 * d2)
            }
        }
        return log(sum / Double(n * (n - 1)))
    }

    func testUniformityMatchesNaiveDoubleLoop() throws {
        for (n, d, seed) in [(2, 3, 1), (17, 4, 2), (60, 8, 3)] {
            let x = GeomTestData.gaussian(n, d, seed: UInt64(seed), offset: 0.3)
            let g = try PairwiseStatistics.compute(x)
            // Gram identity vs explicit differences: ‖zᵢ − zⱼ‖² differ by ~1e-16, exponentials by a few ulp.
            assertRelative(g.uniformity, naiveUniformity(x), 1e-12)
            XCTAssertEqual(g.pairs, n * (n - 1) / 2)
            XCTAssertFalse(g.sampled)
        }
    }

    func testMatchesNumpy() throws {
        // numpy 1.24.2, lcg() as in GeomTestData.lcg:
        //   X = lcg(40, 6, 7); Z = X / np.linalg.norm(X, axis=1, keepdims=True); iu = np.triu_indices(40, 1)
        //   dz2 = ((Z[:, None] - Z[None]) ** 2).sum(-1)[iu]; np.log(np.mean(np.exp(-2 * dz2)))
        //   nr = np.linalg.norm(X, axis=1); nr.mean(), nr.std()
        //   cos = (Z @ Z.T)[iu]; cos.mean(), cos.std()
        //   dist = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))[iu]; dist.mean(), dist.std()
        let g = try PairwiseStatistics.compute(GeomTestData.lcg(40, 6, seed: 7))
        // Float64 on both sides; distances via the Gram identity lose up to ~ε·‖x‖²/‖xᵢ − xⱼ‖² ≈ 1e-14 here.
        let tol = 1e-10
        assertRelative(g.uniformity, -0.6142800462228385, tol)
        assertRelative(g.meanNorm, 6.071188425689064, tol)
        assertRelative(g.stdNorm, 0.9239102473704893, tol)
        assertRelative(g.meanCosine, 0.8225241406150813, tol)
        assertRelative(g.stdCosine, 0.11942250026610812, tol)
        assertRelative(g.meanDistance, 3.6526303427791835, tol)
        assertRelative(g.stdDistance, 1.1881033754887047, tol)
        XCTAssertEqual(g.pairs, 780)
    }

    func testClosedForms() throws {
        // Orthogonal rows of norms 1, 2, 3: every cosine 0, every ‖zᵢ − zⱼ‖² = 2 → uniformity = log e^{−4} = −4.
        // Distances √(1+4), √(1+9), √(4+9). Norm mean 2, population std √(2/3).
        let x = Matrix<Double>([[1, 0, 0], [0, 2, 0], [0, 0, 3]])
        let g = try PairwiseStatistics.compute(x)
        assertRelative(g.uniformity, -4, 1e-14)
        XCTAssertEqual(g.meanCosine, 0, accuracy: 1e-15)
        XCTAssertEqual(g.stdCosine, 0, accuracy: 1e-15)
        assertRelative(g.meanNorm, 2, 1e-14)
        assertRelative(g.stdNorm, (2.0 / 3.0).squareRoot(), 1e-14)
        let distances = [(5.0).squareRoot(), (10.0).squareRoot(), (13.0).squareRoot()]
        let meanDistance = distances.reduce(0, +) / 3
        assertRelative(g.meanDistance, meanDistance, 1e-14)
        let variance = distances.reduce(0) { $0 + ($1 - meanDistance) * ($1 - meanDistance) } / 3
        assertRelative(g.stdDistance, variance.squareRoot(), 1e-12)
        XCTAssertEqual(g.pairs, 3)

        // All rows on one ray: cosines 1, ‖zᵢ − zⱼ‖ = 0 → uniformity log 1 = 0.
        let ray = Matrix<Double>([[1, 2], [2, 4], [0.5, 1]])
        let r = try PairwiseStatistics.compute(ray)
        XCTAssertEqual(r.uniformity, 0, accuracy: 1e-15)
        assertRelative(r.meanCosine, 1, 1e-15)

        // Two antipodal points: ‖z₁ − z₂‖² = 4 → uniformity −8, cosine −1, distance 2.
        let antipodal = try PairwiseStatistics.compute(Matrix<Double>([[0, 1], [0, -1]]))
        assertRelative(antipodal.uniformity, -8, 1e-14)
        assertRelative(antipodal.meanCosine, -1, 1e-15)
        assertRelative(antipodal.meanDistance, 2, 1e-15)
        XCTAssertEqual(antipodal.pairs, 1)
    }

    func testSubsamplingIsDeterministicAndUsesTheStatedRows() throws {
        let x = GeomTestData.gaussian(50, 5, seed: 9)
        let a = try PairwiseStatistics.compute(x, maxRows: 20, seed: 4)
        let b = try PairwiseStatistics.compute(x, maxRows: 20, seed: 4)
        XCTAssertEqual(a, b)
        XCTAssertTrue(a.sampled)
        XCTAssertEqual(a.pairs, 190)
        let indices = PairwiseStatistics.sampleIndices(count: 50, keep: 20, seed: 4)
        XCTAssertEqual(indices.count, 20)
        XCTAssertEqual(Set(indices).count, 20)
        XCTAssertEqual(indices, indices.sorted())
        // The sampled result is the full computation on exactly those rows.
        var rows = [Double]()
        for i in indices { rows += x.row(i) }
        let onSubset = try PairwiseStatistics.compute(Matrix(rows: 20, cols: 5, storage: rows))
        XCTAssertEqual(a.uniformity, onSubset.uniformity)
        XCTAssertEqual(a.meanDistance, onSubset.meanDistance)
        XCTAssertFalse(onSubset.sampled)
        // A different seed draws a different subset.
        XCTAssertNotEqual(PairwiseStatistics.sampleIndices(count: 50, keep: 20, seed: 5), indices)
        // No sampling at N = maxRows.
        XCTAssertFalse(try PairwiseStatistics.compute(x, maxRows: 50).sampled)
    }

    func testUndefinedCases() {
        assertUndefined(try PairwiseStatistics.compute(Matrix<Double>([[1, 0], [0, 0], [1, 1]])), containing: "row 1 has norm 0")
        assertUndefined(try PairwiseStatistics.compute(Matrix<Double>([[1, 0]])), containing: "at least 2")
        assertUndefined(try PairwiseStatistics.compute(Matrix<Double>([[1, .nan], [1, 1]])), containing: "non-finite")
        assertUndefined(try PairwiseStatistics.compute(GeomTestData.lcg(5, 2, seed: 1), maxRows: 1), containing: "maxRows")
    }
}
