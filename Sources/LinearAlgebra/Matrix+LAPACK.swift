import CLAPACKE

/// Eigen-decomposition of a real symmetric matrix.
public struct SymmetricEigen: Sendable {
    /// Eigenvalues in ascending order.
    public var values: [Double]
    /// Eigenvectors as columns: column k belongs to `values[k]`. Empty when only values were asked for.
    public var vectors: Matrix<Double>
}

/// Singular value decomposition A = U · diag(s) · Vᵀ (thin).
public struct SingularValueDecomposition: Sendable {
    public var u: Matrix<Double>
    /// Singular values in descending order, min(m, n) of them.
    public var singularValues: [Double]
    public var vt: Matrix<Double>
}

extension Matrix where Scalar == Double {
    /// Eigenvalues (ascending) and optionally eigenvectors of a symmetric matrix by LAPACKE `dsyevd`
    /// (divide and conquer). Only the upper triangle is read.
    ///
    /// - Complexity: O(n³).
    public func symmetricEigen(vectors: Bool = true) throws -> SymmetricEigen {
        guard rows == cols else { throw LinearAlgebraError.shapeMismatch("eigendecomposition needs a square matrix, got \(rows)x\(cols)") }
        let n = rows
        if n == 0 { return SymmetricEigen(values: [], vectors: Matrix(rows: 0, cols: 0)) }
        var a = storage
        var w = [Double](repeating: 0, count: n)
        let info = a.withUnsafeMutableBufferPointer { pa in
            w.withUnsafeMutableBufferPointer { pw in
                LAPACKE_dsyevd(LAPACK_ROW_MAJOR, vectors ? CChar(UInt8(ascii: "V")) : CChar(UInt8(ascii: "N")),
                               CChar(UInt8(ascii: "U")), Int32(n), pa.baseAddress, Int32(n), pw.baseAddress)
            }
        }
        guard info == 0 else { throw LinearAlgebraError.lapackFailed(routine: "dsyevd", info: info) }
        return SymmetricEigen(values: w, vectors: vectors ? Matrix(rows: n, cols: n, storage: a) : Matrix(rows: 0, cols: 0))
    }

    /// Thin SVD by LAPACKE `dgesdd`.
    ///
    /// - Complexity: O(m·n·min(m, n)).
    public func singularValueDecomposition() throws -> SingularValueDecomposition {
        let m = rows, n = cols, k = Swift.min(m, n)
        if k == 0 {
            return SingularValueDecomposition(u: Matrix(rows: m, cols: 0), singularValues: [], vt: Matrix(rows: 0, cols: n))
        }
        var a = storage
        var s = [Double](repeating: 0, count: k)
        var u = [Double](repeating: 0, count: m * k)
        var vt = [Double](repeating: 0, count: k * n)
        let info = a.withUnsafeMutableBufferPointer { pa in
            s.withUnsafeMutableBufferPointer { ps in
                u.withUnsafeMutableBufferPointer { pu in
                    vt.withUnsafeMutableBufferPointer { pvt in
                        LAPACKE_dgesdd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "S")), Int32(m), Int32(n),
                                       pa.baseAddress, Int32(n), ps.baseAddress, pu.baseAddress, Int32(k),
                                       pvt.baseAddress, Int32(n))
                    }
                }
            }
        }
        guard info == 0 else { throw LinearAlgebraError.lapackFailed(routine: "dgesdd", info: info) }
        return SingularValueDecomposition(u: Matrix(rows: m, cols: k, storage: u), singularValues: s,
                                          vt: Matrix(rows: k, cols: n, storage: vt))
    }

    /// Singular values only (descending), by `dgesdd` with jobz = 'N'.
    public func singularValues() throws -> [Double] {
        let m = rows, n = cols, k = Swift.min(m, n)
        if k == 0 { return [] }
        var a = storage
        var s = [Double](repeating: 0, count: k)
        let info = a.withUnsafeMutableBufferPointer { pa in
            s.withUnsafeMutableBufferPointer { ps in
                LAPACKE_dgesdd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "N")), Int32(m), Int32(n),
                               pa.baseAddress, Int32(n), ps.baseAddress, nil, Int32(Swift.max(1, k)), nil, Int32(Swift.max(1, n)))
            }
        }
        guard info == 0 else { throw LinearAlgebraError.lapackFailed(routine: "dgesdd", info: info) }
        return s
    }

    /// Solves A·X = B for symmetric positive definite A by Cholesky (LAPACKE `dposv`).
    ///
    /// - Throws: `LinearAlgebraError.notPositiveDefinite` when the factorisation fails.
    public func choleskySolve(_ b: Matrix<Double>) throws -> Matrix<Double> {
        guard rows == cols else { throw LinearAlgebraError.shapeMismatch("Cholesky solve needs a square matrix, got \(rows)x\(cols)") }
        guard b.rows == rows else { throw LinearAlgebraError.shapeMismatch("right-hand side has \(b.rows) rows, matrix is \(rows)x\(cols)") }
        let n = rows
        if n == 0 || b.cols == 0 { return b }
        var a = storage
        var x = b.storage
        let info = a.withUnsafeMutableBufferPointer { pa in
            x.withUnsafeMutableBufferPointer { px in
                LAPACKE_dposv(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "U")), Int32(n), Int32(b.cols),
                              pa.baseAddress, Int32(n), px.baseAddress, Int32(b.cols))
            }
        }
        if info > 0 { throw LinearAlgebraError.notPositiveDefinite(order: info) }
        guard info == 0 else { throw LinearAlgebraError.lapackFailed(routine: "dposv", info: info) }
        return Matrix(rows: n, cols: b.cols, storage: x)
    }
}
