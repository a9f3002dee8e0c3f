import LinearAlgebra

/// Thresholds for the similarity measures that correspond to a linear-CKA threshold, from synthetic
/// data only: the value a measure takes on pairs planted at a given linear CKA.
///
/// A pair is X, N × D with independent standard normal entries, and Y = X + σE with E independent of X
/// and of the same law; σ is found by bisection so that linear CKA (biased) of the pair equals the level
/// to 1e-9. The threshold is the mean of the measure over `draws` such pairs (fixed seeds). It uses the
/// shape of the data (N clips, D features) and nothing measured on it, so a threshold is fixed before
/// any reproduction runs.
public enum SimilarityCalibration {
    /// The mean value of `measure` on pairs planted at linear CKA `level`.
    /// - Throws: `MetricUndefined` when the level is outside (0, 1) or the measure is undefined on the
    ///   planted pairs (e.g. mutual k-NN with N ≤ k).
    public static func threshold(_ measure: Metric, ckaLevel level: Double, rows n: Int, features d: Int,
                                 options: SimilarityOptions = SimilarityOptions(), draws: Int = 5, seed: UInt64 = 0xca11) throws -> Double {
        guard level > 0, level < 1 else { throw MetricUndefined("the CKA level must lie in (0, 1), got \(level)") }
        var total = 0.0
        for draw in 0..<draws {
            let (x, y) = try plantedPair(ckaLevel: level, rows: n, features: d, seed: seed &+ UInt64(draw) &* 0x9E37_79B9)
            total += try value(measure, x, y, options: options)
        }
        return total / Double(draws)
    }

    /// One pair X, Y = X + σE with linear CKA(X, Y) = `level` (to 1e-9).
    public static func plantedPair(ckaLevel level: Double, rows n: Int, features d: Int, seed: UInt64) throws -> (Matrix<Double>, Matrix<Double>) {
        var rng = SeededGenerator(seed: seed)
        let x = Matrix<Double>(rows: n, cols: d) { _, _ in rng.nextGaussian() }
        let e = Matrix<Double>(rows: n, cols: d) { _, _ in rng.nextGaussian() }
        func pair(_ sigma: Double) -> Matrix<Double> {
            Matrix(rows: n, cols: d, storage: zip(x.storage, e.storage).map { $0 + sigma * $1 })
        }
        // CKA falls from 1 (σ = 0) towards CKA(X, E) as σ grows; widen the bracket until it is below the level.
        var lo = 0.0, hi = 1.0
        while try CKA.linear(x, pair(hi)) > level {
            hi *= 2
            guard hi < 1e6 else { throw MetricUndefined("linear CKA \(level) cannot be planted with N = \(n), D = \(d)") }
        }
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            let c = try CKA.linear(x, pair(mid))
            if abs(c - level) < 1e-9 { return (x, pair(mid)) }
            if c > level { lo = mid } else { hi = mid }
        }
        return (x, pair((lo + hi) / 2))
    }

    /// A measure's reported value on one pair.
    static func value(_ m: Metric, _ x: Matrix<Double>, _ y: Matrix<Double>, options o: SimilarityOptions) throws -> Double {
        switch m {
        case .procrustesDistance: return try Similarity.procrustes(x, y, alpha: o.alpha).distance
        case .procrustesAngle: return try Similarity.procrustes(x, y, alpha: o.alpha).angle
        case .svcca: return try Similarity.svcca(x, y, variance: o.svccaVariance)
        case .pwcca: return try Similarity.pwcca(x, y)
        case .rsa: return try Similarity.rsa(x, y, distance: o.rdm, comparison: o.rdmComparison)
        case .mutualKNN: return try Similarity.mutualKNN(x, y, k: o.neighbours)
        case .ckaLinearBiased: return try CKA.linear(x, y)
        default: throw MetricUndefined("\(m.name) is not a similarity measure")
        }
    }
}
