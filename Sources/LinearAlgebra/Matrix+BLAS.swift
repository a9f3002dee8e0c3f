import CBLAS

/// Low-level BLAS entry points per scalar type. Only this file and LAPACK's touch C.
public protocol BLASOps: BLASScalar {
    static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Self,
                     _ a: UnsafePointer<Self>, _ lda: Int, _ b: UnsafePointer<Self>, _ ldb: Int,
                     _ beta: Self, _ c: UnsafeMutablePointer<Self>, _ ldc: Int)
    /// C (n×n, upper triangle) = alpha · op(A)ᵀop(A) + beta · C; `trans` true means AᵀA for A k×n.
    static func syrk(_ trans: Bool, _ n: Int, _ k: Int, _ alpha: Self, _ a: UnsafePointer<Self>, _ lda: Int,
                     _ beta: Self, _ c: UnsafeMutablePointer<Self>, _ ldc: Int)
    static func dot(_ n: Int, _ x: UnsafePointer<Self>, _ y: UnsafePointer<Self>) -> Self
}

extension Float: BLASOps {
    public static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                            _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                            _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
    public static func syrk(_ trans: Bool, _ n: Int, _ k: Int, _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int,
                            _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        cblas_ssyrk(CblasRowMajor, CblasUpper, trans ? CblasTrans : CblasNoTrans, blasint(n), blasint(k),
                    alpha, a, blasint(lda), beta, c, blasint(ldc))
    }
    public static func dot(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Float {
        cblas_sdot(blasint(n), x, 1, y, 1)
    }
}

extension Double: BLASOps {
    public static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Double,
                            _ a: UnsafePointer<Double>, _ lda: Int, _ b: UnsafePointer<Double>, _ ldb: Int,
                            _ beta: Double, _ c: UnsafeMutablePointer<Double>, _ ldc: Int) {
        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
    public static func syrk(_ trans: Bool, _ n: Int, _ k: Int, _ alpha: Double, _ a: UnsafePointer<Double>, _ lda: Int,
                            _ beta: Double, _ c: UnsafeMutablePointer<Double>, _ ldc: Int) {
        cblas_dsyrk(CblasRowMajor, CblasUpper, trans ? CblasTrans : CblasNoTrans, blasint(n), blasint(k),
                    alpha, a, blasint(lda), beta, c, blasint(ldc))
    }
    public static func dot(_ n: Int, _ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>) -> Double {
        cblas_ddot(blasint(n), x, 1, y, 1)
    }
}

extension Matrix where Scalar: BLASOps {
    /// op(A)·op(B) through one cblas gemm call.
    ///
    /// - Complexity: O(m·n·k) in BLAS.
    public static func product(_ a: Matrix, _ b: Matrix, transposeA: Bool = false, transposeB: Bool = false,
                               alpha: Scalar = 1) -> Matrix {
        let m = transposeA ? a.cols : a.rows
        let k = transposeA ? a.rows : a.cols
        let kb = transposeB ? b.cols : b.rows
        let n = transposeB ? b.rows : b.cols
        precondition(k == kb, "inner dimensions differ: \(k) vs \(kb)")
        var c = Matrix(rows: m, cols: n)
        c.addProduct(a, b, transposeA: transposeA, transposeB: transposeB, alpha: alpha, beta: 0)
        return c
    }

    /// self = alpha · op(A)·op(B) + beta · self (one gemm call).
    public mutating func addProduct(_ a: Matrix, _ b: Matrix, transposeA: Bool = false, transposeB: Bool = false,
                                    alpha: Scalar = 1, beta: Scalar = 1) {
        let m = transposeA ? a.cols : a.rows
        let k = transposeA ? a.rows : a.cols
        let n = transposeB ? b.rows : b.cols
        precondition(m == rows && n == cols, "output is \(rows)x\(cols), product is \(m)x\(n)")
        precondition(k == (transposeB ? b.cols : b.rows), "inner dimensions differ")
        if m == 0 || n == 0 { return }
        if k == 0 { for i in storage.indices { storage[i] *= beta }; return }
        let ldc = cols
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                storage.withUnsafeMutableBufferPointer { pc in
                    Scalar.gemm(transposeA, transposeB, m, n, k, alpha, pa.baseAddress!, a.cols,
                                pb.baseAddress!, b.cols, beta, pc.baseAddress!, ldc)
                }
            }
        }
    }

    /// Rows per panel in `productByRowPanels` and `addTransposedProductByRowPanels`: as many rows of A
    /// as keep m·n·k of each gemm call at or below 10⁶, or all of A's rows when that would be fewer than
    /// 32 (the product is then too wide to gain).
    ///
    /// Why panels: for a tall A and a narrow B, OpenBLAS's general gemm path copies ("packs") both
    /// operands at every call, and for A (733×384) by B (384×8), the probe's shape, that copy costs as much
    /// as the multiply-adds. OpenBLAS (0.3.21 on AVX-512 CPUs) multiplies calls with m·n·k ≤ 10⁶ in place
    /// with its small-matrix kernels instead; by panels of 256–325 rows such a product took 82–90 µs
    /// against 190–215 µs in one call (one thread; BENCHMARKS.md). Elsewhere the panels only split
    /// one call into a few.
    public static func rowsPerPanel(rows m: Int, inner k: Int, narrow n: Int) -> Int {
        let rows = 1_000_000 / max(1, k * n)
        return rows < 32 ? max(m, 1) : rows
    }

    /// A·B (A m×k, B k×n) through one gemm call per panel of A's rows (`rowsPerPanel`); each row of the
    /// result is the same dot products as in one call, blocked by the BLAS as it chooses.
    public static func productByRowPanels(_ a: Matrix, _ b: Matrix) -> Matrix {
        precondition(a.cols == b.rows, "inner dimensions differ: \(a.cols) vs \(b.rows)")
        let m = a.rows, k = a.cols, n = b.cols
        var c = Matrix(rows: m, cols: n)
        if m == 0 || n == 0 || k == 0 { return c }
        let panel = rowsPerPanel(rows: m, inner: k, narrow: n)
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                c.storage.withUnsafeMutableBufferPointer { pc in
                    for first in stride(from: 0, to: m, by: panel) {
                        let count = min(panel, m - first)
                        Scalar.gemm(false, false, count, n, k, 1, pa.baseAddress! + first * k, k,
                                    pb.baseAddress!, n, 0, pc.baseAddress! + first * n, n)
                    }
                }
            }
        }
        return c
    }

    /// self = alpha · AᵀB + beta · self (A m×k, B m×n, self k×n), the sum over the m rows taken panel by
    /// panel (`rowsPerPanel`): one gemm call per panel, the first scaling self by beta, the others adding.
    public mutating func addTransposedProductByRowPanels(_ a: Matrix, _ b: Matrix, alpha: Scalar = 1, beta: Scalar = 1) {
        precondition(a.rows == b.rows, "row counts differ: \(a.rows) vs \(b.rows)")
        precondition(rows == a.cols && cols == b.cols, "output is \(rows)x\(cols), product is \(a.cols)x\(b.cols)")
        let m = a.rows, k = a.cols, n = b.cols
        if k == 0 || n == 0 { return }
        if m == 0 { for i in storage.indices { storage[i] *= beta }; return }
        let panel = Matrix.rowsPerPanel(rows: m, inner: k, narrow: n)
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                storage.withUnsafeMutableBufferPointer { pc in
                    for first in stride(from: 0, to: m, by: panel) {
                        let count = min(panel, m - first)
                        Scalar.gemm(true, false, k, n, count, alpha, pa.baseAddress! + first * k, k,
                                    pb.baseAddress! + first * n, n, first == 0 ? beta : 1, pc.baseAddress!, n)
                    }
                }
            }
        }
    }

    /// Adds alpha · AᵀA (cols×cols) to self through one syrk call, then mirrors the upper triangle.
    public mutating func addGramOfColumns(_ a: Matrix, alpha: Scalar = 1) {
        precondition(rows == a.cols && cols == a.cols, "Gram of columns must be \(a.cols)x\(a.cols)")
        addSyrk(a, transpose: true, alpha: alpha)
    }

    /// Adds alpha · AAᵀ (rows×rows) to self through one syrk call, then mirrors the upper triangle.
    public mutating func addGramOfRows(_ a: Matrix, alpha: Scalar = 1) {
        precondition(rows == a.rows && cols == a.rows, "Gram of rows must be \(a.rows)x\(a.rows)")
        addSyrk(a, transpose: false, alpha: alpha)
    }

    // Specialised so that the mirroring below runs as a plain loop rather than one generic value
    // witness call per element (2% of `cka A B` on paper-scale files).
    @_specialize(where Scalar == Double)
    @_specialize(where Scalar == Float)
    private mutating func addSyrk(_ a: Matrix, transpose: Bool, alpha: Scalar) {
        let n = rows
        let k = transpose ? a.rows : a.cols
        if n == 0 || k == 0 { return }
        a.storage.withUnsafeBufferPointer { pa in
            storage.withUnsafeMutableBufferPointer { pc in
                Scalar.syrk(transpose, n, k, alpha, pa.baseAddress!, a.cols, 1, pc.baseAddress!, n)
            }
        }
        symmetrizeFromUpper()
    }

    /// Copies the upper triangle into the lower one.
    @inlinable
    public mutating func symmetrizeFromUpper() {
        precondition(rows == cols)
        let n = rows
        storage.withUnsafeMutableBufferPointer { p in
            for i in 0..<n { for j in 0..<i { p[i * n + j] = p[j * n + i] } }
        }
    }

    /// AᵀA as a new symmetric matrix.
    public static func gramOfColumns(_ a: Matrix) -> Matrix {
        var g = Matrix(rows: a.cols, cols: a.cols)
        g.addGramOfColumns(a)
        return g
    }

    /// AAᵀ as a new symmetric matrix.
    public static func gramOfRows(_ a: Matrix) -> Matrix {
        var g = Matrix(rows: a.rows, cols: a.rows)
        g.addGramOfRows(a)
        return g
    }

    /// Σᵢⱼ aᵢⱼ bᵢⱼ (Frobenius inner product) through one BLAS dot.
    public static func frobeniusInner(_ a: Matrix, _ b: Matrix) -> Scalar {
        precondition(a.rows == b.rows && a.cols == b.cols, "Frobenius inner product needs equal shapes")
        if a.storage.isEmpty { return 0 }
        return a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in Scalar.dot(a.storage.count, pa.baseAddress!, pb.baseAddress!) }
        }
    }

    /// ‖A‖_F.
    public var frobeniusNorm: Scalar { Matrix.frobeniusInner(self, self).squareRoot() }
}
