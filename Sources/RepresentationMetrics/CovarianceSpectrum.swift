import Foundation
import LinearAlgebra

/// Streaming float64 accumulator of n, column sums and XᵀX (shifted by a reference row to limit cancellation).
///
/// Rows arrive in chunks (`add`), or whole accumulators from other processes (`merge`). The accumulator keeps
/// a reference row r (the first row it saw) and sums of the shifted rows y = x − r:
/// s = Σ y and S = Σ y yᵀ (one syrk per chunk). Then
/// - centred covariance C = [S − s sᵀ/n] / (n − 1) (invariant to the shift, and far better conditioned than
///   XᵀX − n·x̄x̄ᵀ when the rows share a large offset);
/// - uncentred XᵀX = S + r sᵀ + s rᵀ + n r rᵀ (for RankMe).
///
/// Merging an accumulator with reference r′ into one with reference r moves it to r with d = r′ − r:
/// s ← s + s′ + n′d, S ← S + S′ + s′dᵀ + d s′ᵀ + n′ d dᵀ — the same sums a single accumulator would hold,
/// up to rounding.
public struct CovarianceAccumulator: Sendable {
    /// Number of columns D of every row added.
    public let dimension: Int
    /// Number of rows added so far (over all merged accumulators).
    public private(set) var count: Int = 0
    /// Number of NaN or infinite values seen; `covariance()` refuses to answer when it is not 0.
    public private(set) var nonFiniteCount: Int = 0
    /// The reference row r (the first row added); nil while empty.
    public private(set) var reference: [Double]?
    /// s = Σ (x − r).
    private var shiftedSum: [Double]
    /// S = Σ (x − r)(x − r)ᵀ, full symmetric D×D.
    private var shiftedScatter: Matrix<Double>

    /// An empty accumulator for rows of `dimension` columns.
    public init(dimension: Int) {
        precondition(dimension >= 0, "dimension must be non-negative")
        self.dimension = dimension
        shiftedSum = [Double](repeating: 0, count: dimension)
        shiftedScatter = Matrix(rows: dimension, cols: dimension)
    }

    /// An empty accumulator whose rows will be shifted by `reference` (length D): give every part of a
    /// split computation the same reference to combine them with `combineSums`.
    public init(dimension: Int, reference: [Double]) {
        precondition(reference.count == dimension, "the reference row must have D entries")
        self.init(dimension: dimension)
        self.reference = reference
    }

    /// Replaces every sum by its total over the parts of a computation split by rows (for example the
    /// ranks of an MPI job, each on its own clips): `reduce` is called on each array of sums in a fixed
    /// order, the same on every part, and must leave in it the elementwise sum of that array over the
    /// parts (an allreduce). Counts travel as float64, exact below 2⁵³. A part that saw no rows
    /// contributes zeros.
    ///
    /// The parts must share their reference row (`init(dimension:reference:)`).
    public mutating func combineSums(_ reduce: (UnsafeMutableBufferPointer<Double>) -> Void) {
        var scalars = [Double(count), Double(nonFiniteCount)]
        scalars.withUnsafeMutableBufferPointer { reduce($0) }
        count = Int(scalars[0])
        nonFiniteCount = Int(scalars[1])
        shiftedSum.withUnsafeMutableBufferPointer { reduce($0) }
        shiftedScatter.storage.withUnsafeMutableBufferPointer { reduce($0) }
    }

    /// Adds the rows of a chunk (float32 or float64; accumulation is float64).
    ///
    /// - Parameters:
    ///   - rows: n×D, one sample per row.
    /// - Throws: `LinearAlgebraError.shapeMismatch` when the chunk does not have D columns.
    /// - Complexity: O(n·D²) in one BLAS syrk.
    public mutating func add<S: BLASScalar>(_ rows: Matrix<S>) throws {
        guard rows.cols == dimension else {
            throw LinearAlgebraError.shapeMismatch("accumulator has dimension \(dimension), chunk has \(rows.cols) columns")
        }
        let n = rows.rows
        guard n > 0, dimension > 0 else { count += n; return }
        // Callers in other modules reach this generic function unspecialised: take the float64 case
        // without the element-wise generic conversion.
        var y = (rows as? Matrix<Double>) ?? rows.converted(to: Double.self)
        if reference == nil { reference = Array(y.row(0)) }
        let r = reference!
        let d = dimension
        var bad = 0
        y.storage.withUnsafeMutableBufferPointer { p in
            shiftedSum.withUnsafeMutableBufferPointer { s in
                for i in 0..<n {
                    let base = i * d
                    for j in 0..<d {
                        let v = p[base + j]
                        if !v.isFinite { bad += 1 }
                        let shifted = v - r[j]
                        p[base + j] = shifted
                        s[j] += shifted
                    }
                }
            }
        }
        shiftedScatter.addGramOfColumns(y)
        nonFiniteCount += bad
        count += n
    }

    /// Adds everything another accumulator has seen (for example one per process or per clip range).
    ///
    /// The other accumulator's sums are moved to this one's reference row algebraically (see the type's
    /// documentation), so the result equals accumulating all rows here, up to rounding.
    ///
    /// - Parameters:
    ///   - other: an accumulator of the same dimension.
    /// - Throws: `LinearAlgebraError.shapeMismatch` when the dimensions differ.
    /// - Complexity: O(D²).
    public mutating func merge(_ other: CovarianceAccumulator) throws {
        guard other.dimension == dimension else {
            throw LinearAlgebraError.shapeMismatch("cannot merge accumulators of dimension \(dimension) and \(other.dimension)")
        }
        guard let otherReference = other.reference else {
            count += other.count
            nonFiniteCount += other.nonFiniteCount
            return
        }
        guard let r = reference else { self = other; return }
        let d = zip(otherReference, r).map { $0 - $1 }
        let n2 = Double(other.count)
        let dColumn = Matrix(rows: dimension, cols: 1, storage: d)
        let sColumn = Matrix(rows: dimension, cols: 1, storage: other.shiftedSum)
        // S ← S + S′ + s′dᵀ + d s′ᵀ + n′ d dᵀ
        for i in shiftedScatter.storage.indices { shiftedScatter.storage[i] += other.shiftedScatter.storage[i] }
        shiftedScatter.addProduct(sColumn, dColumn, transposeB: true)
        shiftedScatter.addProduct(dColumn, sColumn, transposeB: true)
        shiftedScatter.addProduct(dColumn, dColumn, transposeB: true, alpha: n2)
        for j in 0..<dimension { shiftedSum[j] += other.shiftedSum[j] + n2 * d[j] }
        count += other.count
        nonFiniteCount += other.nonFiniteCount
    }

    /// True when the rows seen are constant up to float32 rounding (see `ConstantRows`).
    public func isEffectivelyConstant() -> Bool {
        let n = Double(count)
        var centredTrace = 0.0, shiftedTrace = 0.0
        for i in 0..<dimension {
            shiftedTrace += shiftedScatter[i, i]
            centredTrace += shiftedScatter[i, i] - (count > 0 ? shiftedSum[i] * shiftedSum[i] / n : 0)
        }
        // Σ‖x‖² = Σ‖x − r‖² + 2 r·s + n‖r‖², s = Σ(x − r).
        let r = reference ?? []
        var rs = 0.0, rr = 0.0
        for i in r.indices { rs += r[i] * shiftedSum[i]; rr += r[i] * r[i] }
        return ConstantRows.areConstant(centredTrace: centredTrace, squaredNormSum: shiftedTrace + 2 * rs + n * rr, count: count)
    }

    /// The column-centred sample covariance of all rows seen.
    ///
    /// C = [S − s sᵀ/n] / (n − 1) with s, S the sums of the rows shifted by the reference row.
    ///
    /// - Throws: `MetricUndefined` when fewer than 2 rows were added or a value was NaN/infinite.
    /// - Complexity: O(D²).
    public func covariance() throws -> Matrix<Double> {
        guard count >= 2 else { throw MetricUndefined("covariance needs at least 2 samples, got \(count)") }
        guard nonFiniteCount == 0 else { throw MetricUndefined("non-finite input: \(nonFiniteCount) NaN or infinite values") }
        var c = shiftedScatter
        let n = Double(count)
        let sColumn = Matrix(rows: dimension, cols: 1, storage: shiftedSum)
        c.addProduct(sColumn, sColumn, transposeB: true, alpha: -1 / n, beta: 1)
        let scale = 1 / (n - 1)
        for i in c.storage.indices { c.storage[i] *= scale }
        return c
    }

    /// XᵀX of the original (uncentred, unshifted) rows: S + r sᵀ + s rᵀ + n r rᵀ.
    ///
    /// Its eigenvalues are the squared singular values of X (for RankMe). An empty accumulator gives the zero
    /// matrix; non-finite input shows up as non-finite entries (`rankMe(uncentredGram:)` rejects them).
    ///
    /// - Complexity: O(D²).
    public func uncentredGram() -> Matrix<Double> {
        var g = shiftedScatter
        guard let r = reference else { return g }
        let rColumn = Matrix(rows: dimension, cols: 1, storage: r)
        let sColumn = Matrix(rows: dimension, cols: 1, storage: shiftedSum)
        g.addProduct(rColumn, sColumn, transposeB: true)
        g.addProduct(sColumn, rColumn, transposeB: true)
        g.addProduct(rColumn, rColumn, transposeB: true, alpha: Double(count))
        return g
    }
}

/// Covariance-spectrum geometry of a set of samples (rows), with the conventions of `CovarianceSpectrum`.
public struct SpectrumSummary: Sendable, Codable, Equatable {
    /// N, the number of samples.
    public var samples: Int
    /// D, the number of features (and of eigenvalues).
    public var dimension: Int
    /// λ of the centred covariance, descending; negatives from rounding clamped to 0. Always D of them.
    public var eigenvalues: [Double]
    /// exp(−Σ pᵢ log pᵢ), pᵢ = λᵢ/Σλ, terms with pᵢ = 0 contribute 0.
    public var effectiveRank: Double
    /// (Σλ)² / Σλ².
    public var participationRatio: Double
    /// λmax / mean λ, the mean over all D eigenvalues (zeros included).
    public var isotropy: Double
    /// Smallest k with Σ_{i≤k} λ_(i) ≥ 0.9·Σλ (λ descending).
    public var k90: Int
    /// λmax / λmin over all D eigenvalues; nil when the spectrum is rank deficient.
    public var conditionNumber: Double?
    /// Why `conditionNumber` is nil, e.g. "rank deficient (rank 3 of 8)".
    public var conditionNumberUndefined: String?
    /// RankMe of the uncentred samples (Garrido et al. 2023), when the samples were available.
    public var rankMe: Double?

    public init(samples: Int, dimension: Int, eigenvalues: [Double], effectiveRank: Double, participationRatio: Double,
                isotropy: Double, k90: Int, conditionNumber: Double?, conditionNumberUndefined: String?, rankMe: Double?) {
        self.samples = samples
        self.dimension = dimension
        self.eigenvalues = eigenvalues
        self.effectiveRank = effectiveRank
        self.participationRatio = participationRatio
        self.isotropy = isotropy
        self.k90 = k90
        self.conditionNumber = conditionNumber
        self.conditionNumberUndefined = conditionNumberUndefined
        self.rankMe = rankMe
    }
}

/// Covariance-spectrum geometry (effective rank, participation ratio, isotropy, k90, condition number) and RankMe.
///
/// Conventions (docs/metrics.md, "Covariance spectrum"): λ = S²/(N−1), S the singular values of the column-centred
/// X (rows = samples), i.e. the eigenvalues of the sample covariance XcᵀXc/(N−1), padded with zeros to D.
public enum CovarianceSpectrum {
    /// Explained-variance fraction that defines `k90`.
    public static let explainedVarianceFraction = 0.9
    /// The ε Garrido et al. (2023) add to every pᵢ in RankMe.
    public static let rankMeEpsilon = 1e-7

    /// Eigenvalues of a symmetric covariance matrix, descending, negatives from rounding clamped to 0.
    ///
    /// LAPACK `dsyevd` on the upper triangle.
    ///
    /// - Parameters:
    ///   - covariance: a symmetric D×D matrix.
    /// - Throws: `LinearAlgebraError.shapeMismatch` for a non-square matrix, `MetricUndefined` for NaN/Inf.
    /// - Complexity: O(D³).
    public static func eigenvalues(covariance: Matrix<Double>) throws -> [Double] {
        guard covariance.rows == covariance.cols else {
            throw LinearAlgebraError.shapeMismatch("covariance must be square, got \(covariance.rows)x\(covariance.cols)")
        }
        let bad = covariance.nonFiniteCount
        guard bad == 0 else { throw MetricUndefined("non-finite input: \(bad) NaN or infinite values in the covariance") }
        return try descendingClamped(covariance.symmetricEigen(vectors: false).values)
    }

    /// Spectrum geometry from covariance eigenvalues.
    ///
    /// With λ sorted descending and clamped at 0, D = λ.count, pᵢ = λᵢ/Σλ:
    /// - effective rank = exp(−Σ pᵢ log pᵢ) (terms with pᵢ = 0 contribute 0);
    /// - participation ratio = (Σλ)²/Σλ²;
    /// - isotropy = λmax / (Σλ/D), the mean over all D eigenvalues, zeros included;
    /// - k90 = smallest k with Σ_{i≤k} λᵢ ≥ 0.9·Σλ, compared with a relative slack of 1e-12·Σλ so that exact
    ///   ties (e.g. 9 equal of 10) are not lost to rounding in the cumulative sum;
    /// - condition number = λmax/λmin, undefined ("rank deficient (rank r of D)") when λmin ≤ τ with
    ///   τ = λmax·max(N, D)·ε₆₄ (numpy's `matrix_rank` tolerance applied to the eigenvalues); r = #{λᵢ > τ}.
    /// `rankMe` is nil (it needs the uncentred samples).
    ///
    /// - Parameters:
    ///   - eigenvalues: the D covariance eigenvalues in any order.
    ///   - samples: N, the number of samples the covariance came from (recorded, and used in τ).
    /// - Throws: `MetricUndefined` when Σλ = 0 ("zero variance"), N < 2, D = 0 or a λ is not finite.
    /// - Complexity: O(D log D).
    public static func summary(eigenvalues: [Double], samples: Int) throws -> SpectrumSummary {
        guard !eigenvalues.isEmpty else { throw MetricUndefined("no features (dimension 0)") }
        guard samples >= 2 else { throw MetricUndefined("covariance spectrum needs at least 2 samples, got \(samples)") }
        guard eigenvalues.allSatisfy(\.isFinite) else { throw MetricUndefined("non-finite eigenvalues") }
        let lambda = descendingClamped(eigenvalues)
        let d = lambda.count
        let total = lambda.reduce(0, +)
        guard total > 0 else { throw MetricUndefined("zero variance") }

        var entropy = 0.0
        var sumOfSquares = 0.0
        for l in lambda {
            sumOfSquares += l * l
            let p = l / total
            if p > 0 { entropy -= p * log(p) }
        }

        let threshold = explainedVarianceFraction * total - 1e-12 * total
        var cumulative = 0.0
        var k90 = d
        for (i, l) in lambda.enumerated() {
            cumulative += l
            if cumulative >= threshold { k90 = i + 1; break }
        }

        let lambdaMax = lambda[0], lambdaMin = lambda[d - 1]
        let tolerance = lambdaMax * Double(max(samples, d)) * Double.ulpOfOne
        var condition: Double? = nil
        var conditionReason: String? = nil
        if lambdaMin <= tolerance {
            let rank = lambda.filter { $0 > tolerance }.count
            conditionReason = "rank deficient (rank \(rank) of \(d))"
        } else {
            condition = lambdaMax / lambdaMin
        }

        return SpectrumSummary(samples: samples, dimension: d, eigenvalues: lambda, effectiveRank: exp(entropy),
                               participationRatio: total * total / sumOfSquares,
                               isotropy: lambdaMax / (total / Double(d)), k90: k90,
                               conditionNumber: condition, conditionNumberUndefined: conditionReason, rankMe: nil)
    }

    /// Spectrum geometry and RankMe of the rows of X, in one shot.
    ///
    /// Xc = X − 1·x̄ᵀ (two-pass centring). When N > D the eigenvalues of the D×D covariance XcᵀXc/(N−1) are
    /// used; when N ≤ D those of the N×N Gram XcXcᵀ/(N−1) (the same nonzero eigenvalues), padded with zeros to
    /// D. RankMe uses the singular values of the uncentred X (`dgesdd`, min(N, D) of them).
    /// See `summary(eigenvalues:samples:)` for the metrics.
    ///
    /// - Parameters:
    ///   - x: N×D, one sample per row.
    /// - Throws: `MetricUndefined` for N < 2, D = 0, NaN/Inf, or zero variance.
    /// - Complexity: O(N·D·min(N, D)) (one syrk, one symmetric eigenproblem of order min(N, D), one SVD).
    public static func summary(of x: Matrix<Double>) throws -> SpectrumSummary {
        let n = x.rows, d = x.cols
        guard d > 0 else { throw MetricUndefined("no features (dimension 0)") }
        guard n >= 2 else { throw MetricUndefined("covariance spectrum needs at least 2 samples, got \(n)") }
        let bad = x.nonFiniteCount
        guard bad == 0 else { throw MetricUndefined("non-finite input: \(bad) NaN or infinite values") }
        let xc = x.centeredColumns()
        let scale = 1 / Double(n - 1)
        var lambda: [Double]
        if n > d {
            var c = Matrix<Double>(rows: d, cols: d)
            c.addGramOfColumns(xc, alpha: scale)
            lambda = try eigenvalues(covariance: c)
        } else {
            var g = Matrix<Double>(rows: n, cols: n)
            g.addGramOfRows(xc, alpha: scale)
            lambda = try eigenvalues(covariance: g)
            lambda += [Double](repeating: 0, count: d - n)
        }
        var result = try summary(eigenvalues: lambda, samples: n)
        result.rankMe = try rankMe(singularValues: x.singularValues())
        return result
    }

    /// Spectrum geometry and RankMe from streamed statistics.
    ///
    /// Eigenvalues of `accumulator.covariance()`; RankMe from `accumulator.uncentredGram()` keeping
    /// min(N, D) eigenvalues (so it matches the SVD of X). See `summary(eigenvalues:samples:)`.
    ///
    /// - Parameters:
    ///   - accumulator: the rows' streamed sums.
    /// - Throws: `MetricUndefined` for N < 2, NaN/Inf, or zero variance.
    /// - Complexity: O(D³).
    public static func summary(of accumulator: CovarianceAccumulator) throws -> SpectrumSummary {
        let lambda = try eigenvalues(covariance: accumulator.covariance())
        var result = try summary(eigenvalues: lambda, samples: accumulator.count)
        result.rankMe = try rankMe(uncentredGram: accumulator.uncentredGram(), samples: accumulator.count)
        return result
    }

    /// RankMe (Garrido et al. 2023) from singular values.
    ///
    /// pᵢ = σᵢ/Σσ + 1e-7, RankMe = exp(−Σ pᵢ log pᵢ), with σ the singular values of the UNcentred X
    /// (min(N, D) of them, as `torch.linalg.svd(full_matrices=False)` gives).
    ///
    /// - Parameters:
    ///   - singularValues: σ ≥ 0, any order.
    /// - Throws: `MetricUndefined` when there are none, one is negative or not finite, or all are 0.
    /// - Complexity: O(count).
    public static func rankMe(singularValues: [Double]) throws -> Double {
        guard !singularValues.isEmpty else { throw MetricUndefined("RankMe needs at least one singular value") }
        guard singularValues.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw MetricUndefined("singular values must be finite and non-negative")
        }
        let total = singularValues.reduce(0, +)
        guard total > 0 else { throw MetricUndefined("all singular values are zero") }
        var entropy = 0.0
        for s in singularValues {
            let p = s / total + rankMeEpsilon
            entropy -= p * log(p)
        }
        return exp(entropy)
    }

    /// RankMe from the uncentred Gram XᵀX (e.g. `CovarianceAccumulator.uncentredGram()`).
    ///
    /// σᵢ = sqrt(max(eigᵢ(XᵀX), 0)); with `samples` = N given, only the largest min(N, D) are kept, which is
    /// exactly the set of singular values of the N×D matrix X; otherwise all D are used. Then
    /// `rankMe(singularValues:)`.
    ///
    /// - Parameters:
    ///   - uncentredGram: XᵀX, symmetric D×D.
    ///   - samples: N, or nil to use all D eigenvalues.
    /// - Throws: `MetricUndefined` for NaN/Inf or X = 0; `LinearAlgebraError.shapeMismatch` if not square.
    /// - Complexity: O(D³).
    public static func rankMe(uncentredGram: Matrix<Double>, samples: Int? = nil) throws -> Double {
        var eig = try eigenvalues(covariance: uncentredGram)
        if let samples { eig = Array(eig.prefix(max(0, min(samples, eig.count)))) }
        return try rankMe(singularValues: eig.map { $0.squareRoot() })
    }

    /// Sorted descending with negatives (rounding noise of a PSD matrix) set to 0.
    static func descendingClamped(_ values: [Double]) -> [Double] {
        values.map { max($0, 0) }.sorted(by: >)
    }
}

extension Metric {
    /// The covariance spectrum of the rows (`CovarianceSpectrum.summary`).
    static let spectrumDefinitions: [Metric: MetricDefinition] = {
        let undefined = ["fewer than 2 rows", "zero variance (all rows equal up to float32 rounding)", "NaN or Inf in the data"]
        return [
            .effectiveRank: MetricDefinition(unit: "dimensions", convention: "exp(-sum p_i log p_i), p_i = lambda_i / sum lambda, lambda = S^2/(N-1) of column-centred X (paper's eval code)", undefinedWhen: undefined),
            .participationRatio: MetricDefinition(unit: "dimensions", convention: "(sum lambda)^2 / sum lambda^2", undefinedWhen: undefined),
            .isotropy: MetricDefinition(unit: "ratio (>= 1)", convention: "lambda_max / mean lambda over all D eigenvalues", undefinedWhen: undefined),
            .k90: MetricDefinition(unit: "dimensions (a count)", convention: "smallest k whose k largest eigenvalues explain >= 90% of the variance", undefinedWhen: undefined),
            .conditionNumber: MetricDefinition(unit: "ratio (>= 1)", convention: "lambda_max / lambda_min over the D eigenvalues; undefined when rank deficient (lambda_min <= lambda_max * max(N,D) * eps)", undefinedWhen: undefined + ["rank deficient"]),
            .rankMe: MetricDefinition(unit: "dimensions", convention: "exp(-sum p_i log p_i), p_i = sigma_i / sum sigma + 1e-7, sigma = singular values of uncentred X (Garrido et al. 2023)", undefinedWhen: undefined),
        ]
    }()
}
