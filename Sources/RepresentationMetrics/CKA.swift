import LinearAlgebra
import Numerics

/// Which HSIC estimator a CKA value uses.
public enum CKAEstimator: String, Sendable, Codable, CaseIterable {
    /// HSIC₀ = ‖XcᵀYc‖²_F (Kornblith et al. 2019).
    case biased
    /// The U-statistic HSIC₁ of Song et al. 2012 (Gram diagonals zeroed), as in Nguyen et al. 2021.
    case debiased
    /// Mean over minibatches of HSIC₁, normalised by the means of the self terms (Nguyen et al. 2021, eq. 3).
    case minibatch
}

/// The kernel applied to the rows.
public enum CKAKernel: String, Sendable, Codable, CaseIterable {
    case linear, rbf
}

/// How the RBF bandwidth is chosen.
public enum RBFBandwidth: Sendable, Codable, Equatable {
    /// The paper's rule: γ = 1/(2·m²) with m the median Euclidean distance over pairs i < j.
    case paperMedian
    /// Kornblith et al.'s rule: 2σ² = 2·threshold²·(median of all squared distances, diagonal included).
    case kornblith(threshold: Double)

    public var description: String {
        switch self {
        case .paperMedian: return "paper: gamma = 1/(2 m^2), m = median Euclidean distance over pairs i<j"
        case .kornblith(let t): return "kornblith: sigma^2 = \(t)^2 * median squared distance (diagonal included)"
        }
    }
}

/// Centered kernel alignment and the HSIC estimators behind it.
///
/// CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L)) for one HSIC estimator. The Gram-level
/// functions here work on N×N kernel matrices held in memory; `LinearCKAAccumulator` computes the
/// same linear-kernel quantities in feature space from statistics streamed over clip chunks.
public enum CKA {
    /// The linear kernel K = XXᵀ (one syrk).
    public static func linearGram(_ x: Matrix<Double>) -> Matrix<Double> {
        Matrix.gramOfRows(x)
    }

    /// Squared Euclidean distances ‖xᵢ − xⱼ‖² from one Gram matrix (clamped at 0 against rounding).
    public static func squaredDistances(_ x: Matrix<Double>) -> Matrix<Double> {
        let g = Matrix.gramOfRows(x)
        let n = x.rows
        var d = Matrix<Double>(rows: n, cols: n)
        for i in 0..<n {
            for j in 0..<n { d[i, j] = i == j ? 0 : max(0, g[i, i] + g[j, j] - 2 * g[i, j]) }
        }
        return d
    }

    /// Median as numpy computes it (mean of the two middle values for an even count).
    /// The middle order statistics are found by selection (expected O(n)) rather than a full sort:
    /// the same values, so the same median. Values must not be NaN.
    static func median(_ values: [Double]) -> Double {
        var s = values
        let n = s.count
        let upper = select(&s, n / 2)
        guard n % 2 == 0 else { return upper }
        // After selection every value before n/2 is at most s[n/2]: the lower middle is their maximum.
        let lower = s[0..<(n / 2)].max()!
        return (lower + upper) / 2
    }

    /// Rearranges `a` so that `a[k]` is the value a sort would put there, every value before it is at
    /// most it and every value after it at least it (quickselect with a three-way partition, so runs of
    /// equal values cost no more than distinct ones; pivots from a fixed-seed generator).
    static func select(_ a: inout [Double], _ k: Int) -> Double {
        var lo = 0, hi = a.count - 1
        var rng = SeededGenerator(seed: 0x5e1ec7)
        while lo < hi {
            let pivot = a[lo + Int(rng.next(below: UInt64(hi - lo + 1)))]
            // [lo, lt) < pivot, [lt, i) == pivot, (gt, hi] > pivot.
            var lt = lo, i = lo, gt = hi
            while i <= gt {
                if a[i] < pivot { a.swapAt(lt, i); lt += 1; i += 1 } else if a[i] > pivot { a.swapAt(i, gt); gt -= 1 } else { i += 1 }
            }
            if k < lt { hi = lt - 1 } else if k > gt { lo = gt + 1 } else { return a[k] }
        }
        return a[k]
    }

    /// The Gaussian kernel K = exp(−γ‖xᵢ − xⱼ‖²) with γ from `bandwidth`.
    ///
    /// - Returns: the Gram matrix and the γ used.
    /// - Throws: `MetricUndefined` when the median distance is 0 (too many identical rows).
    public static func rbfGram(_ x: Matrix<Double>, bandwidth: RBFBandwidth) throws -> (gram: Matrix<Double>, gamma: Double) {
        let n = x.rows
        guard n >= 2 else { throw MetricUndefined("RBF kernel needs at least 2 rows, got \(n)") }
        let d2 = squaredDistances(x)
        let gamma: Double
        switch bandwidth {
        case .paperMedian:
            var pairs: [Double] = []
            pairs.reserveCapacity(n * (n - 1) / 2)
            for i in 0..<n { for j in (i + 1)..<n { pairs.append(d2[i, j].squareRoot()) } }
            let m = median(pairs)
            guard m > 0 else { throw MetricUndefined("RBF bandwidth undefined: the median pairwise distance is 0") }
            gamma = 1 / (2 * m * m)
        case .kornblith(let threshold):
            let m2 = median(d2.storage)
            guard m2 > 0, threshold > 0 else {
                throw MetricUndefined("RBF bandwidth undefined: the median squared distance (diagonal included) is 0")
            }
            gamma = 1 / (2 * threshold * threshold * m2)
        }
        var k = d2
        for i in k.storage.indices { k.storage[i] = Double.exp(-gamma * d2.storage[i]) }
        return (k, gamma)
    }

    /// Double-centres a Gram matrix: HKH with H = I − 11ᵀ/n.
    public static func centered(_ k: Matrix<Double>) -> Matrix<Double> {
        let n = k.rows
        var rowMeans = [Double](repeating: 0, count: n)
        var total = 0.0
        for i in 0..<n {
            var s = 0.0
            for j in 0..<n { s += k[i, j] }
            rowMeans[i] = s / Double(n)
            total += s
        }
        let grand = total / Double(n * n)
        var c = k
        for i in 0..<n { for j in 0..<n { c[i, j] = k[i, j] - rowMeans[i] - rowMeans[j] + grand } }
        return c
    }

    /// Biased HSIC₀ = ⟨HKH, HLH⟩_F / (n − 1)².
    ///
    /// - Complexity: O(n²).
    public static func hsicBiased(_ k: Matrix<Double>, _ l: Matrix<Double>) -> Double {
        let n = Double(k.rows)
        return Matrix.frobeniusInner(centered(k), centered(l)) / ((n - 1) * (n - 1))
    }

    /// The unbiased HSIC₁ of Song et al. (2012), with K̃, L̃ the Gram matrices with zeroed diagonals:
    ///
    ///     HSIC₁ = [tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1)/((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1] / (n(n−3))
    ///
    /// The diagonals are removed by masking (setting K̃ᵢᵢ = 0), not by subtracting a broadcast vector.
    /// - Throws: `MetricUndefined` when n < 4.
    /// - Complexity: O(n²).
    public static func hsicUnbiased(_ k: Matrix<Double>, _ l: Matrix<Double>) throws -> Double {
        let n = k.rows
        guard n >= 4 else { throw MetricUndefined("the debiased HSIC estimator needs at least 4 samples, got \(n)") }
        var kt = k, lt = l
        for i in 0..<n { kt[i, i] = 0; lt[i, i] = 0 }
        let trace = Matrix.frobeniusInner(kt, lt)  // tr(K̃L̃) for symmetric matrices
        var kRow = [Double](repeating: 0, count: n), lRow = [Double](repeating: 0, count: n)
        for i in 0..<n { for j in 0..<n { kRow[i] += kt[i, j]; lRow[i] += lt[i, j] } }
        let kSum = kRow.reduce(0, +), lSum = lRow.reduce(0, +)
        let cross = zip(kRow, lRow).reduce(0) { $0 + $1.0 * $1.1 }
        let nn = Double(n)
        return (trace + kSum * lSum / ((nn - 1) * (nn - 2)) - 2 / (nn - 2) * cross) / (nn * (nn - 3))
    }

    /// CKA from the three HSIC values.
    ///
    /// - Throws: `MetricUndefined` when a self term is not positive (zero variance, or a debiased
    ///   estimate that came out ≤ 0 on too few samples).
    public static func fromHSIC(xy: Double, xx: Double, yy: Double) throws -> Double {
        guard xx.isFinite, yy.isFinite, xy.isFinite else { throw MetricUndefined("non-finite HSIC (NaN/Inf in the data)") }
        guard xx > 0 else { throw MetricUndefined(xx == 0 ? "zero variance in the first representation" : "HSIC(X, X) ≤ 0 (too few samples for the debiased estimator)") }
        guard yy > 0 else { throw MetricUndefined(yy == 0 ? "zero variance in the second representation" : "HSIC(Y, Y) ≤ 0 (too few samples for the debiased estimator)") }
        return xy / (xx.squareRoot() * yy.squareRoot())
    }

    /// True when the rows of x are constant up to float32 rounding (see `ConstantRows`).
    public static func isEffectivelyConstant(_ x: Matrix<Double>) -> Bool {
        var acc = LinearCKAAccumulator(dimensions: [x.cols], pairs: [])
        guard (try? acc.add([x])) != nil else { return false }
        return acc.isEffectivelyConstant(0)
    }

    /// CKA between two Gram matrices with the biased or debiased estimator.
    public static func fromGrams(_ k: Matrix<Double>, _ l: Matrix<Double>, estimator: CKAEstimator) throws -> Double {
        guard k.rows == l.rows else { throw MetricUndefined("Gram matrices of different sizes (\(k.rows) vs \(l.rows))") }
        switch estimator {
        case .biased:
            return try fromHSIC(xy: hsicBiased(k, l), xx: hsicBiased(k, k), yy: hsicBiased(l, l))
        case .debiased, .minibatch:
            return try fromHSIC(xy: hsicUnbiased(k, l), xx: hsicUnbiased(k, k), yy: hsicUnbiased(l, l))
        }
    }

    /// Linear CKA in feature space from whole matrices (rows = samples): a convenience over the
    /// streaming accumulator with one chunk.
    public static func linear(_ x: Matrix<Double>, _ y: Matrix<Double>, estimator: CKAEstimator = .biased) throws -> Double {
        guard x.rows == y.rows else { throw MetricUndefined("different numbers of samples (\(x.rows) vs \(y.rows))") }
        var acc = LinearCKAAccumulator(dimensions: [x.cols, y.cols], pairs: [CKAPair(0, 1)])
        try acc.add([x, y])
        return try acc.cka(CKAPair(0, 1), estimator: estimator)
    }
}

extension Metric {
    /// CKA between two representations of the same rows (`CKA.linear`, `CKA.fromGrams`, the accumulators).
    static let ckaDefinitions: [Metric: MetricDefinition] = {
        let unit = "unitless (0 to 1)"
        let undefined = ["zero variance (all rows equal up to float32 rounding)", "NaN or Inf in the data",
                         "too few rows for the estimator (debiased: N >= 4)"]
        return [
            .ckaLinearBiased: MetricDefinition(unit: unit, convention: "||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), Xc column-centred (Kornblith et al. 2019)", undefinedWhen: undefined),
            .ckaLinearDebiased: MetricDefinition(unit: unit, convention: "HSIC_1 U-statistic of Song et al. 2012 with Gram diagonals zeroed; CKA = HSIC_1(K,L)/sqrt(HSIC_1(K,K) HSIC_1(L,L)) (Nguyen et al. 2021)", undefinedWhen: undefined),
            .ckaLinearMinibatch: MetricDefinition(unit: unit, convention: "mean over minibatches of HSIC_1(K,L) / sqrt(mean HSIC_1(K,K) * mean HSIC_1(L,L)) (Nguyen et al. 2021, eq. 3); a different estimator from full-data CKA", undefinedWhen: undefined + ["no full minibatch"]),
            .ckaRBFBiased: MetricDefinition(unit: unit, convention: "Gaussian kernel exp(-gamma ||xi-xj||^2), Gram matrices double-centred, biased HSIC", undefinedWhen: undefined),
            .ckaRBFDebiased: MetricDefinition(unit: unit, convention: "Gaussian kernel, HSIC_1 U-statistic", undefinedWhen: undefined),
        ]
    }()
}
