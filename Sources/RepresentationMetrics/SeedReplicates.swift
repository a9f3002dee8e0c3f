import Foundation

/// Intervals for a quantity measured on S independent trainings (seeds) of one regime, each on the same
/// probe clips, with a clip bootstrap per training.
///
/// Model: the value of training s is dₛ = μ + aₛ + eₛ + c, with aₛ the training's deviation (variance
/// σ²_seed), eₛ the clip-sampling error particular to training s and c the error shared by every
/// training because they are evaluated on the same clips. The estimate is the seed mean d̄, with
/// Var(d̄) = (σ²_seed + σ²_e)/S + σ²_c.
/// - s²/S, the sample variance of the dₛ over S, estimates the first term (it holds each training's
///   own clip error as well);
/// - the shared clip variance σ²_c comes from the clip bootstrap, resampled with the same clips for
///   every training (paired): with C the bootstrap variance of the replicate seed means and V̄ the
///   mean of the trainings' own bootstrap variances, C = σ²_c + σ²_e/S and V̄ = σ²_c + σ²_e, so
///   σ̂²_c = max(0, (S·C − V̄)/(S − 1)).
///
/// The interval is d̄ ± t(S − 1; (1 + level)/2) · √(s²/S + σ̂²_c): the Student t quantile with S − 1
/// degrees of freedom, exact when the seed term dominates and conservative when the clip term does.
/// With S = 1 there is no seed variance to estimate: the interval is the clip bootstrap's percentile
/// interval, flagged `clipsOnly`.
public enum SeedReplicates {
    /// An interval over seeds and clips.
    public struct Interval: Sendable, Equatable {
        /// Seed mean of the point values.
        public var mean: Double
        public var low: Double
        public var high: Double
        /// Number of seeds S.
        public var seeds: Int
        /// s²/S: the between-training variance of the mean (nil with one seed).
        public var seedVariance: Double?
        /// σ̂²_c: the clip variance shared by the trainings (nil without paired replicates).
        public var sharedClipVariance: Double?
        /// true when the interval covers clip sampling only (one seed).
        public var clipsOnly: Bool
    }

    /// How the interval is formed.
    public enum Method: Sendable {
        /// Seeds and clips (the report's intervals).
        case seedsAndClips
        /// The clip bootstrap of the seed mean alone, ignoring the spread between trainings: the
        /// percentile interval of the replicate seed means. Kept to show what it misses (it
        /// under-covers when trainings differ).
        case clipsOnly
    }

    /// The interval of the seed mean of `points` (one per seed).
    ///
    /// - Parameters:
    ///   - points: the value of each training, S ≥ 1.
    ///   - replicates: per training, its clip-bootstrap replicate values, resampled with the same clips
    ///     for every training (so index b pairs across trainings), or nil when none are known. A
    ///     resample where any training's value is nil is left out.
    ///   - level: coverage, e.g. 0.95.
    /// - Returns: nil when `points` is empty or not finite, or, with one seed, when no replicates give
    ///   an interval.
    public static func interval(points: [Double], replicates: [[Double?]]?, level: Double = 0.95,
                                method: Method = .seedsAndClips) -> Interval? {
        let s = points.count
        guard s >= 1, points.allSatisfy(\.isFinite) else { return nil }
        let mean = points.reduce(0, +) / Double(s)
        // Replicate seed means and per-training bootstrap variances over the resamples every training defines.
        var seedMeans: [Double] = []
        var perSeed = [[Double]](repeating: [], count: s)
        if let replicates, replicates.count == s, let b = replicates.first?.count, b >= 2, replicates.allSatisfy({ $0.count == b }) {
            for r in 0..<b {
                let values = replicates.compactMap { $0[r] }
                guard values.count == s, values.allSatisfy(\.isFinite) else { continue }
                seedMeans.append(values.reduce(0, +) / Double(s))
                for k in 0..<s { perSeed[k].append(values[k]) }
            }
        }
        let paired = seedMeans.count >= 2
        if s == 1 || method == .clipsOnly {
            guard paired else { return nil }
            let q = (1 - level) / 2
            let sorted = seedMeans.sorted()
            return Interval(mean: mean, low: Bootstrap.percentile(sorted, q), high: Bootstrap.percentile(sorted, 1 - q), seeds: s,
                            seedVariance: nil, sharedClipVariance: nil, clipsOnly: true)
        }
        let seedVariance = variance(points) / Double(s)
        var shared: Double? = nil
        if paired {
            let c = variance(seedMeans)
            let vbar = perSeed.map(variance).reduce(0, +) / Double(s)
            shared = max(0, (Double(s) * c - vbar) / Double(s - 1))
        }
        let se = (seedVariance + (shared ?? 0)).squareRoot()
        let t = StudentT.quantile((1 + level) / 2, degreesOfFreedom: Double(s - 1))
        return Interval(mean: mean, low: mean - t * se, high: mean + t * se, seeds: s, seedVariance: seedVariance,
                        sharedClipVariance: shared, clipsOnly: false)
    }

    /// Sample variance (denominator n − 1); 0 for fewer than two values.
    static func variance(_ xs: [Double]) -> Double {
        guard xs.count >= 2 else { return 0 }
        let m = xs.reduce(0, +) / Double(xs.count)
        return xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count - 1)
    }
}

/// Student's t distribution.
public enum StudentT {
    /// P(T ≤ t) for ν degrees of freedom: 1 − ½ I_{ν/(ν+t²)}(ν/2, ½) for t ≥ 0 (Abramowitz & Stegun
    /// 26.7.1 with 26.5.27), symmetric for t < 0.
    public static func cdf(_ t: Double, degreesOfFreedom nu: Double) -> Double {
        guard t.isFinite else { return t > 0 ? 1 : 0 }
        let tail = 0.5 * regularizedIncompleteBeta(nu / (nu + t * t), a: nu / 2, b: 0.5)
        return t >= 0 ? 1 - tail : tail
    }

    /// The p-quantile for ν > 0 degrees of freedom, by bisection on `cdf` to 1e-13.
    public static func quantile(_ p: Double, degreesOfFreedom nu: Double) -> Double {
        precondition(p > 0 && p < 1 && nu > 0)
        if p == 0.5 { return 0 }
        if p < 0.5 { return -quantile(1 - p, degreesOfFreedom: nu) }
        var lo = 0.0, hi = 1.0
        while cdf(hi, degreesOfFreedom: nu) < p { hi *= 2 }
        for _ in 0..<200 where hi - lo > 1e-13 * max(1, hi) {
            let mid = (lo + hi) / 2
            if cdf(mid, degreesOfFreedom: nu) < p { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }

    /// I_x(a, b) by its continued fraction (Abramowitz & Stegun 26.5.8), evaluated with the modified
    /// Lentz method on whichever of I_x(a, b) and 1 − I_{1−x}(b, a) converges faster.
    static func regularizedIncompleteBeta(_ x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logGammas: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let logPowers: Double = a * log(x) + b * log(1 - x)
        let front = exp(logGammas + logPowers)
        if x < (a + 1) / (a + b + 2) { return front * continuedFraction(x, a, b) / a }
        return 1 - front * continuedFraction(1 - x, b, a) / b
    }

    static func continuedFraction(_ x: Double, _ a: Double, _ b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...300 {
            let m = Double(m)
            // Even step d_{2m} = m(b − m)x / ((a + 2m − 1)(a + 2m)), odd step d_{2m+1} = −(a + m)(a + b + m)x / ((a + 2m)(a + 2m + 1)).
            let even: Double = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            let odd: Double = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            for coefficient in [even, odd] {
                d = 1 + coefficient * d
                if abs(d) < tiny { d = tiny }
                c = 1 + coefficient / c
                if abs(c) < tiny { c = tiny }
                d = 1 / d
                h *= d * c
            }
            if abs(d * c - 1) < 1e-16 { break }
        }
        return h
    }
}
