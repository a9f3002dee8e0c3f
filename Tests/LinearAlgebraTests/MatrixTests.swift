import LinearAlgebra
import XCTest

/// Naive triple loop, the independent reference for BLAS products.
private func naiveProduct(_ a: Matrix<Double>, _ b: Matrix<Double>) -> Matrix<Double> {
    Matrix(rows: a.rows, cols: b.cols) { i, j in (0..<a.cols).reduce(0) { $0 + a[i, $1] * b[$1, j] } }
}

private func randomMatrix(_ r: Int, _ c: Int, seed: UInt64) -> Matrix<Double> {
    var g = SeededGenerator(seed: seed)
    return Matrix(rows: r, cols: c) { _, _ in g.nextGaussian() }
}

private func assertClose(_ a: Matrix<Double>, _ b: Matrix<Double>, tol: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.rows, b.rows, file: file, line: line)
    XCTAssertEqual(a.cols, b.cols, file: file, line: line)
    let diff = zip(a.storage, b.storage).map { abs($0 - $1) }.max() ?? 0
    XCTAssertLessThanOrEqual(diff, tol, "max abs difference \(diff)", file: file, line: line)
}

final class MatrixTests: XCTestCase {
    func testProductMatchesNaiveLoopsForEveryTransposeCombination() {
        let a = randomMatrix(7, 5, seed: 1), b = randomMatrix(5, 4, seed: 2)
        let expected = naiveProduct(a, b)
        assertClose(Matrix.product(a, b), expected, tol: 1e-12)
        assertClose(Matrix.product(a.transposed, b, transposeA: true), expected, tol: 1e-12)
        assertClose(Matrix.product(a, b.transposed, transposeB: true), expected, tol: 1e-12)
        assertClose(Matrix.product(a.transposed, b.transposed, transposeA: true, transposeB: true), expected, tol: 1e-12)
    }

    func testFloatProductAgreesWithDouble() {
        let a = randomMatrix(6, 9, seed: 3), b = randomMatrix(9, 3, seed: 4)
        let f = Matrix.product(a.converted(to: Float.self), b.converted(to: Float.self)).converted(to: Double.self)
        // float32 has a unit roundoff of 6e-8; 9-term sums of O(1) products stay well below 1e-5.
        assertClose(f, naiveProduct(a, b), tol: 1e-5)
    }

    func testAddProductAccumulatesWithBeta() {
        let a = randomMatrix(3, 3, seed: 5), b = randomMatrix(3, 3, seed: 6)
        var c = Matrix<Double>.identity(3)
        c.addProduct(a, b, alpha: 2, beta: 3)
        let expected = Matrix(rows: 3, cols: 3) { i, j in 2 * naiveProduct(a, b)[i, j] + (i == j ? 3 : 0) }
        assertClose(c, expected, tol: 1e-12)
    }

    func testRowPanelProductsMatchNaiveLoops() {
        // The probe's shape: 733 rows of 384 features by 8 classes, which rowsPerPanel splits into
        // panels of 325 rows (the last one 83), so the products below take three gemm calls each.
        let x = randomMatrix(733, 384, seed: 11), w = randomMatrix(384, 8, seed: 12), g = randomMatrix(733, 8, seed: 13)
        XCTAssertEqual(Matrix<Double>.rowsPerPanel(rows: 733, inner: 384, narrow: 8), 325)
        assertClose(Matrix.productByRowPanels(x, w), naiveProduct(x, w), tol: 1e-10)
        var gw = w
        gw.addTransposedProductByRowPanels(x, g, alpha: 2, beta: 0.5)
        let xtg = naiveProduct(x.transposed, g)
        assertClose(gw, Matrix(rows: 384, cols: 8) { i, j in 2 * xtg[i, j] + 0.5 * w[i, j] }, tol: 1e-10)
        // No rows: only the scaling by beta remains.
        var empty = w
        empty.addTransposedProductByRowPanels(Matrix(rows: 0, cols: 384), Matrix(rows: 0, cols: 8), beta: 3)
        assertClose(empty, Matrix(rows: 384, cols: 8) { i, j in 3 * w[i, j] }, tol: 0)
        // A product too wide for panels of 32 rows stays one call over all rows.
        XCTAssertEqual(Matrix<Double>.rowsPerPanel(rows: 733, inner: 384, narrow: 200), 733)
    }

    func testGramMatricesAreFullSymmetricAndMatchProducts() {
        let x = randomMatrix(11, 4, seed: 7)
        assertClose(Matrix.gramOfColumns(x), naiveProduct(x.transposed, x), tol: 1e-12)
        assertClose(Matrix.gramOfRows(x), naiveProduct(x, x.transposed), tol: 1e-12)
        // Streaming: summing the Gram of two row chunks equals the Gram of all rows.
        var g = Matrix<Double>(rows: 4, cols: 4)
        g.addGramOfColumns(x.rows(0..<5))
        g.addGramOfColumns(x.rows(5..<11))
        assertClose(g, Matrix.gramOfColumns(x), tol: 1e-12)
    }

    func testColumnMeansAndCentering() {
        let x = Matrix<Float>([[1, 10], [2, 20], [6, 60]])
        XCTAssertEqual(x.columnMeans(), [3, 30])
        let c = x.centeredColumns()
        XCTAssertEqual(c.storage, [-2, -20, -1, -10, 3, 30])
        XCTAssertEqual(c.columnMeans(), [0, 0])
    }

    func testFrobenius() {
        let a = Matrix<Double>([[1, 2], [3, 4]])
        XCTAssertEqual(a.frobeniusNorm, 30.0.squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(Matrix.frobeniusInner(a, Matrix<Double>.identity(2)), 5)
    }
}

final class DecompositionTests: XCTestCase {
    func testSymmetricEigenOfKnownMatrix() throws {
        // [[2,1],[1,2]] has eigenvalues 1 and 3 with eigenvectors (1,-1)/√2 and (1,1)/√2.
        let e = try Matrix<Double>([[2, 1], [1, 2]]).symmetricEigen()
        XCTAssertEqual(e.values[0], 1, accuracy: 1e-14)
        XCTAssertEqual(e.values[1], 3, accuracy: 1e-14)
        XCTAssertEqual(abs(e.vectors[0, 1]), 0.5.squareRoot(), accuracy: 1e-14)
        XCTAssertEqual(e.vectors[0, 1], e.vectors[1, 1], accuracy: 1e-14)
        XCTAssertEqual(e.vectors[0, 0], -e.vectors[1, 0], accuracy: 1e-14)
    }

    func testSymmetricEigenReconstructsRandomMatrix() throws {
        let x = randomMatrix(20, 6, seed: 8)
        let s = Matrix.gramOfColumns(x)
        let e = try s.symmetricEigen()
        XCTAssertEqual(e.values, e.values.sorted())
        // V diag(λ) Vᵀ = S
        let vl = Matrix(rows: 6, cols: 6) { i, j in e.vectors[i, j] * e.values[j] }
        assertClose(Matrix.product(vl, e.vectors, transposeB: true), s, tol: 1e-10)
        // Trace is preserved.
        XCTAssertEqual(e.values.reduce(0, +), (0..<6).reduce(0) { $0 + s[$1, $1] }, accuracy: 1e-10)
        // Values-only runs a different LAPACK path; agreement to rounding is what can be asked.
        for (a, b) in zip(try s.symmetricEigen(vectors: false).values, e.values) { XCTAssertEqual(a, b, accuracy: 1e-12 * 50) }
    }

    func testSVDOfKnownMatrixAndReconstruction() throws {
        // diag(3, 2) padded: singular values are 3 and 2.
        let a = Matrix<Double>([[0, 2], [3, 0], [0, 0]])
        let sv = try a.singularValues()
        XCTAssertEqual(sv.count, 2)
        XCTAssertEqual(sv[0], 3, accuracy: 1e-14)
        XCTAssertEqual(sv[1], 2, accuracy: 1e-14)
        let x = randomMatrix(9, 5, seed: 9)
        let svd = try x.singularValueDecomposition()
        XCTAssertEqual(svd.singularValues.count, 5)
        let us = Matrix(rows: 9, cols: 5) { i, j in svd.u[i, j] * svd.singularValues[j] }
        assertClose(Matrix.product(us, svd.vt), x, tol: 1e-12)
        // Singular values squared are the eigenvalues of XᵀX.
        let ev = try Matrix.gramOfColumns(x).symmetricEigen(vectors: false).values.reversed()
        for (s, l) in zip(svd.singularValues, ev) { XCTAssertEqual(s * s, l, accuracy: 1e-10) }
    }

    func testCholeskySolve() throws {
        let a = Matrix<Double>([[4, 2], [2, 3]])
        let x = try a.choleskySolve(Matrix([[2], [1]]))
        // Solution of 4x + 2y = 2, 2x + 3y = 1 is (0.5, 0).
        XCTAssertEqual(x[0, 0], 0.5, accuracy: 1e-15)
        XCTAssertEqual(x[1, 0], 0, accuracy: 1e-15)
        let m = randomMatrix(15, 5, seed: 10)
        var spd = Matrix.gramOfColumns(m)
        for i in 0..<5 { spd[i, i] += 1 }
        let b = randomMatrix(5, 3, seed: 11)
        assertClose(Matrix.product(spd, try spd.choleskySolve(b)), b, tol: 1e-10)
    }

    func testCholeskyRejectsIndefiniteMatrix() {
        XCTAssertThrowsError(try Matrix<Double>([[1, 2], [2, 1]]).choleskySolve(Matrix([[1], [1]]))) { error in
            XCTAssertEqual(error as? LinearAlgebraError, .notPositiveDefinite(order: 2))
        }
        XCTAssertThrowsError(try Matrix<Double>(rows: 2, cols: 3).symmetricEigen())
    }
}

final class SeededGeneratorTests: XCTestCase {
    func testDeterministicAndRoughlyStandardNormal() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42)
        XCTAssertEqual((0..<10).map { _ in a.next() }, (0..<10).map { _ in b.next() })
        // SplitMix64's first output for seed 0 is a published constant (Vigna's reference code).
        var z = SeededGenerator(seed: 0)
        XCTAssertEqual(z.next(), 0xE220_A839_7B1D_CDAF)
        var g = SeededGenerator(seed: 7)
        let xs = (0..<100_000).map { _ in g.nextGaussian() }
        let mean = xs.reduce(0, +) / Double(xs.count)
        let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(xs.count - 1)
        // Standard errors: 1/√n ≈ 0.003 for the mean, √(2/n) ≈ 0.0045 for the variance; 5σ bounds.
        XCTAssertEqual(mean, 0, accuracy: 0.016)
        XCTAssertEqual(variance, 1, accuracy: 0.023)
    }
}
