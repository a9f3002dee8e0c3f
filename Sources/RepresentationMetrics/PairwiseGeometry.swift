import Foundation
import LinearAlgebra

/// Pairwise geometry of a set of samples: uniformity, norms, cosines and distances.
///
/// Every statistic is over the rows used (all rows, or the deterministic subset when `sampled`); pair
/// statistics are over the `pairs` = M(M−1)/2 UNORDERED pairs i < j of those M rows (for these symmetric
/// quantities the mean over ordered pairs i ≠ j is the same). Standard deviations are population standard
/// deviations (divide by the count, numpy's default `ddof=0`).
public struct PairwiseGeometry: Sendable, Codable, Equatable {
    /// log mean_{i<j} exp(−2‖zᵢ − zⱼ‖²), zᵢ = xᵢ/‖xᵢ‖ (Wang & Isola 2020); in [−4, 0].
    public var uniformity: Double
    /// Mean and population std of ‖xᵢ‖ over the rows used.
    public var meanNorm: Double
    public var stdNorm: Double
    /// Mean and population std of cos(xᵢ, xⱼ) over pairs i < j.
    public var meanCosine: Double
    public var stdCosine: Double
    /// Mean and population std of the Euclidean distance ‖xᵢ − xⱼ‖ of the raw (unnormalised) rows, pairs i < j.
    public var meanDistance: Double
    public var stdDistance: Double
    /// Number of unordered pairs i < j used: M(M−1)/2.
    public var pairs: Int
    /// True when a random subset of the rows was used (N > maxRows).
    public var sampled: Bool

    public init(uniformity: Double, meanNorm: Double, stdNorm: Double, meanCosine: Double, stdCosine: Double,
                meanDistance: Double, stdDistance: Double, pairs: Int, sampled: Bool) {
        self.uniformity = uniformity
        self.meanNorm = meanNorm
        self.stdNorm = stdNorm
        self.meanCosine = meanCosine
        self.stdCosine = stdCosine
        self.meanDistance = meanDistance
        self.stdDistance = stdDistance
        self.pairs = pairs
        self.sampled = sampled
    }
}

/// Pairwise statistics of rows: uniformity (Wang & Isola 2020), norms, cosine similarities, distances.
public enum PairwiseStatistics {
    /// Uniformity, norm, cosine and distance statistics of the rows of X.
    ///
    /// With zᵢ = xᵢ/‖xᵢ‖ and G = Z Zᵀ (one BLAS syrk), over the unordered pairs i < j of the M rows used:
    /// - cos(xᵢ, xⱼ) = Gᵢⱼ (clamped to [−1, 1]);
    /// - ‖zᵢ − zⱼ‖² = 2 − 2Gᵢⱼ, uniformity = log[(1/P) Σ_{i<j} exp(−2‖zᵢ − zⱼ‖²)] by log-sum-exp, P = M(M−1)/2
    ///   (equal to the mean over ordered pairs i ≠ j of Wang & Isola's definition);
    /// - ‖xᵢ − xⱼ‖ = sqrt(max(0, ‖xᵢ‖² + ‖xⱼ‖² − 2‖xᵢ‖‖xⱼ‖Gᵢⱼ)) (Gram identity: for near-duplicate rows the
    ///   distance has absolute error about sqrt(ε)·‖x‖);
    /// - means and population standard deviations (two passes) of norms, cosines and distances.
    /// When N > maxRows, M = maxRows rows are drawn without replacement by a partial Fisher–Yates shuffle driven
    /// by `SeededGenerator(seed:)` (same seed, same subset) and `sampled` is true.
    ///
    /// - Parameters:
    ///   - x: N×D, one sample per row.
    ///   - maxRows: the largest number of rows used (≥ 2).
    ///   - seed: seed of the row subset when N > maxRows.
    /// - Throws: `MetricUndefined` for fewer than 2 rows, maxRows < 2, NaN/Inf, or a row of norm 0.
    /// - Complexity: O(M²·D) in one syrk plus O(M²) for the pair sums.
    public static func compute(_ x: Matrix<Double>, maxRows: Int = 4096, seed: UInt64 = 0) throws -> PairwiseGeometry {
        guard maxRows >= 2 else { throw MetricUndefined("maxRows must be at least 2, got \(maxRows)") }
        guard x.rows >= 2 else { throw MetricUndefined("pairwise statistics need at least 2 samples, got \(x.rows)") }
        let bad = x.nonFiniteCount
        guard bad == 0 else { throw MetricUndefined("non-finite input: \(bad) NaN or infinite values") }

        let sampled = x.rows > maxRows
        let used = sampled ? sampleIndices(count: x.rows, keep: maxRows, seed: seed) : Array(0..<x.rows)
        let rows = sampled ? x.rows(at: used) : x
        let m = rows.rows, d = rows.cols

        // Row norms, then Z = rows scaled to unit length.
        var z = rows
        var norms = [Double](repeating: 0, count: m)
        for i in 0..<m {
            var sq = 0.0
            for j in 0..<d { sq += z.storage[i * d + j] * z.storage[i * d + j] }
            let norm = sq.squareRoot()
            guard norm > 0 else { throw MetricUndefined("row \(used[i]) has norm 0 (cosine undefined)") }
            norms[i] = norm
            for j in 0..<d { z.storage[i * d + j] /= norm }
        }
        let gram = Matrix.gramOfRows(z)

        let (meanNorm, stdNorm) = meanAndStd(norms)
        let pairs = m * (m - 1) / 2
        let p = Double(pairs)

        // Pass 1: sums for the means; the log-sum-exp shift is the largest exponent −2‖zᵢ − zⱼ‖² = 4cos − 4.
        var cosSum = 0.0, distSum = 0.0, maxExponent = -Double.infinity
        gram.storage.withUnsafeBufferPointer { g in
            for i in 0..<m {
                for j in (i + 1)..<m {
                    let c = min(1, max(-1, g[i * m + j]))
                    cosSum += c
                    distSum += distance(norms[i], norms[j], c)
                    maxExponent = max(maxExponent, 4 * c - 4)
                }
            }
        }
        let meanCosine = cosSum / p, meanDistance = distSum / p

        // Pass 2: squared deviations and the shifted exponential sum.
        var cosSq = 0.0, distSq = 0.0, expSum = 0.0
        gram.storage.withUnsafeBufferPointer { g in
            for i in 0..<m {
                for j in (i + 1)..<m {
                    let c = min(1, max(-1, g[i * m + j]))
                    let dc = c - meanCosine
                    cosSq += dc * dc
                    let dd = distance(norms[i], norms[j], c) - meanDistance
                    distSq += dd * dd
                    expSum += exp(4 * c - 4 - maxExponent)
                }
            }
        }

        return PairwiseGeometry(uniformity: maxExponent + log(expSum) - log(p),
                                meanNorm: meanNorm, stdNorm: stdNorm,
                                meanCosine: meanCosine, stdCosine: (cosSq / p).squareRoot(),
                                meanDistance: meanDistance, stdDistance: (distSq / p).squareRoot(),
                                pairs: pairs, sampled: sampled)
    }

    /// The sorted indices of `keep` of `count` rows, chosen by a partial Fisher–Yates shuffle seeded by `seed`.
    ///
    /// - Complexity: O(count).
    public static func sampleIndices(count: Int, keep: Int, seed: UInt64) -> [Int] {
        var generator = SeededGenerator(seed: seed)
        var indices = Array(0..<count)
        let k = min(keep, count)
        for i in 0..<k {
            let j = i + Int(generator.next() % UInt64(count - i))
            indices.swapAt(i, j)
        }
        return indices[0..<k].sorted()
    }

    @inline(__always)
    static func distance(_ a: Double, _ b: Double, _ cosine: Double) -> Double {
        max(0, a * a + b * b - 2 * a * b * cosine).squareRoot()
    }

    /// Mean and population standard deviation, two passes.
    static func meanAndStd(_ values: [Double]) -> (Double, Double) {
        let n = Double(values.count)
        let mean = values.reduce(0, +) / n
        let sq = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        return (mean, (sq / n).squareRoot())
    }
}

extension Metric {
    /// Norms, cosines and distances of the rows and their pairs (`PairwiseStatistics.compute`).
    static let pairwiseGeometryDefinitions: [Metric: MetricDefinition] = {
        let undefined = ["fewer than 2 rows", "NaN or Inf in the data"]
        return [
            .uniformity: MetricDefinition(unit: "log of a mean Gaussian kernel value (<= 0)", convention: "log mean over pairs i != j of exp(-2 ||z_i - z_j||^2), z = L2-normalised rows (Wang & Isola 2020)", undefinedWhen: undefined + ["a zero row"]),
            .meanNorm: MetricDefinition(unit: "activation units (L2 norm)", convention: "mean L2 norm of rows", undefinedWhen: undefined),
            .stdNorm: MetricDefinition(unit: "activation units (L2 norm)", convention: "std (ddof 0) of row norms", undefinedWhen: undefined),
            .meanCosine: MetricDefinition(unit: "cosine (-1 to 1)", convention: "mean cosine similarity over pairs i < j", undefinedWhen: undefined + ["a zero row"]),
            .stdCosine: MetricDefinition(unit: "cosine", convention: "std (ddof 0) of pairwise cosines", undefinedWhen: undefined + ["a zero row"]),
            .meanDistance: MetricDefinition(unit: "activation units (Euclidean distance)", convention: "mean Euclidean distance over pairs i < j", undefinedWhen: undefined),
            .stdDistance: MetricDefinition(unit: "activation units (Euclidean distance)", convention: "std (ddof 0) of pairwise distances", undefinedWhen: undefined),
        ]
    }()
}
