import Foundation
import LinearAlgebra

/// Percentile bootstrap over clips, shared by every metric that has per-clip terms.
///
/// A resample draws N clip indices uniformly with replacement from 0..<N. Resample b (0-based) takes
/// the N draws `SeededGenerator(seed:).next(below: N)` numbered b·N … b·N + N − 1 of one stream, so the
/// resamples depend only on (seed, N, B): every run, depth and target evaluated on the same N clips
/// uses the same resampled clip indices, and differences between them get paired intervals.
/// The resamples are held as an N×B matrix of multiplicities W (column b counts how often each clip
/// was drawn), so the replicate means of many per-clip quantities are one gemm.
///
/// Interval: the percentile interval of the B replicate values, with numpy's default (linear)
/// interpolation: for sorted values v₀ ≤ … ≤ v_{B−1} and probability q, position h = q·(B − 1),
/// value v_⌊h⌋ + (h − ⌊h⌋)(v_⌊h⌋₊₁ − v_⌊h⌋); a 95% interval uses q = 0.025 and 0.975.
public struct Bootstrap: Sendable, Equatable {
    /// Number of resamples B (≥ 1).
    public var resamples: Int
    /// Seed of the resampling stream.
    public var seed: UInt64
    /// Coverage of the interval, e.g. 0.95.
    public var level: Double

    public init(resamples: Int = 1000, seed: UInt64 = 0, level: Double = 0.95) {
        self.resamples = resamples
        self.seed = seed
        self.level = level
    }

    /// The resampled clip indices: B arrays of N indices each, in drawing order.
    ///
    /// - Complexity: O(N·B) draws.
    public func indices(clips n: Int) -> [[Int]] {
        var g = SeededGenerator(seed: seed)
        return (0..<resamples).map { _ in (0..<n).map { _ in Int(g.next(below: UInt64(n))) } }
    }

    /// The N×B matrix of multiplicities: W[i, b] = how often clip i is drawn in resample b.
    ///
    /// Each column sums to N.
    public func weights(clips n: Int) -> Matrix<Double> {
        var w = Matrix<Double>(rows: n, cols: resamples)
        guard n > 0 else { return w }
        var g = SeededGenerator(seed: seed)
        let b = resamples
        w.storage.withUnsafeMutableBufferPointer { p in
            for r in 0..<b {
                for _ in 0..<n { p[Int(g.next(below: UInt64(n))) * b + r] += 1 }
            }
        }
        return w
    }

    /// Replicate means of several per-clip quantities at once.
    ///
    /// values is M×N (one quantity per row, one clip per column); the result is M×B with entry (m, b) =
    /// (1/N) Σᵢ W[i, b]·values[m, i], the mean of quantity m over resample b. One gemm.
    public static func replicateMeans(_ values: Matrix<Double>, weights: Matrix<Double>) -> Matrix<Double> {
        precondition(values.cols == weights.rows, "\(values.cols) clips of values, \(weights.rows) rows of weights")
        return Matrix.product(values, weights, alpha: 1 / Double(max(1, values.cols)))
    }

    /// Replicate means of a per-clip quantity that is undefined (nil) for some clips: in resample b,
    /// Σᵢ W[i, b]·vᵢ / Σᵢ W[i, b] over the defined clips; nil for a resample that draws no defined clip.
    public static func replicateMeans(_ values: [Double?], weights: Matrix<Double>) -> [Double?] {
        precondition(values.count == weights.rows)
        let n = values.count
        // Row 0: the defined values (0 elsewhere); row 1: the indicator of defined clips.
        var v = Matrix<Double>(rows: 2, cols: n)
        for (i, x) in values.enumerated() {
            if let x { v[0, i] = x; v[1, i] = 1 }
        }
        let s = Matrix.product(v, weights)
        return (0..<weights.cols).map { b in s[1, b] > 0 ? s[0, b] / s[1, b] : nil }
    }

    /// The percentile at probability q ∈ [0, 1] of values, with numpy's default linear interpolation.
    ///
    /// - Precondition: values is not empty.
    public static func percentile(_ values: [Double], _ q: Double) -> Double {
        precondition(!values.isEmpty, "percentile of no values")
        let s = values.sorted()
        let h = q * Double(s.count - 1)
        let lo = Int(h.rounded(.down))
        let hi = min(lo + 1, s.count - 1)
        return s[lo] + (h - Double(lo)) * (s[hi] - s[lo])
    }

    /// The percentile interval of the replicate values at this bootstrap's level; nil when any
    /// replicate is missing or not finite (the interval would not describe the statistic).
    public func interval(_ replicates: [Double?]) -> (low: Double, high: Double)? {
        let values = replicates.compactMap { $0 }
        guard !values.isEmpty, values.count == replicates.count, values.allSatisfy(\.isFinite) else { return nil }
        let tail = (1 - level) / 2
        return (Bootstrap.percentile(values, tail), Bootstrap.percentile(values, 1 - tail))
    }

    /// A one-line statement of the method (for conventions and documentation).
    public var description: String {
        "percentile bootstrap over clips: \(resamples) resamples of the N clips with replacement (SplitMix64 seed \(seed), drawn over the clips sorted by clip id when a file has /clip_ids, else in file order; every run, depth and target on the same clips is resampled with the same clips, so differences are paired), \(String(format: "%g", level * 100))% interval = the \(String(format: "%g", 50 * (1 - level))) and \(String(format: "%g", 100 - 50 * (1 - level))) percentiles with linear interpolation (numpy's default)"
    }
}
