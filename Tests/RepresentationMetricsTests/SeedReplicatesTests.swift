import LinearAlgebra
@testable import RepresentationMetrics
import XCTest

final class SeedReplicatesTests: XCTestCase {
    /// Quantiles of Student's t against scipy.stats.t.ppf (itself accurate to about 1e-9), and the
    /// distribution function against the closed forms for ν = 2 and 4.
    func testStudentTQuantilesMatchScipy() {
        let known: [(Double, Double, Double)] = [
            (0.975, 1, 12.706204736432095), (0.975, 2, 4.302652729911275), (0.975, 3, 3.182446305284263),
            (0.975, 5, 2.5705818366147395), (0.975, 9, 2.2621571627409915), (0.975, 30, 2.0422724563012373),
            (0.95, 2, 2.919985580355516), (0.95, 4, 2.13184678133629),
        ]
        for (p, nu, t) in known {
            let q = StudentT.quantile(p, degreesOfFreedom: nu)
            XCTAssertEqual(q, t, accuracy: 1e-8 * t, "p \(p), df \(nu)")
            XCTAssertEqual(StudentT.quantile(1 - p, degreesOfFreedom: nu), -q, accuracy: 1e-15)
            XCTAssertEqual(StudentT.cdf(q, degreesOfFreedom: nu), p, accuracy: 1e-13, "round trip")
        }
        // Closed forms: ν = 2: F(t) = ½ + t / (2√(2 + t²)); ν = 4: F(t) = ½ + ¾ x (1 − x²/3), x = t / √(4 + t²).
        for t in [-3.0, -0.5, 0.2, 1.7, 9.0] {
            XCTAssertEqual(StudentT.cdf(t, degreesOfFreedom: 2), 0.5 + t / (2 * (2 + t * t).squareRoot()), accuracy: 1e-13)
            let x = t / (4 + t * t).squareRoot()
            XCTAssertEqual(StudentT.cdf(t, degreesOfFreedom: 4), 0.5 + 0.75 * x * (1 - x * x / 3), accuracy: 1e-13)
        }
    }

    /// Known answers: with no replicates the interval is mean ± t(S−1)·s/√S; with replicates that move
    /// every training alike (a shared clip error) their variance is added.
    func testIntervalKnownAnswers() throws {
        let points = [0.10, 0.14, 0.12]
        let i = try XCTUnwrap(SeedReplicates.interval(points: points, replicates: nil))
        let se = (0.0004 / 3).squareRoot()  // s² = 0.0004
        XCTAssertEqual(i.mean, 0.12, accuracy: 1e-15)
        XCTAssertEqual(i.high - i.mean, 4.302652729911275 * se, accuracy: 1e-10)
        XCTAssertEqual(i.mean - i.low, 4.302652729911275 * se, accuracy: 1e-10)
        XCTAssertFalse(i.clipsOnly)
        // Replicates shifted by the same amount in every training: C = V̄ = Var(shift), σ̂²_c = Var(shift).
        let shifts = [-0.02, 0.0, 0.02, 0.01, -0.01]
        let reps = points.map { p in shifts.map { Optional(p + $0) } }
        let j = try XCTUnwrap(SeedReplicates.interval(points: points, replicates: reps))
        let shiftVariance = 0.001 / 4  // Σ shift² = 0.001 over n − 1 = 4
        XCTAssertEqual(try XCTUnwrap(j.sharedClipVariance), shiftVariance, accuracy: 1e-15)
        XCTAssertEqual(j.high - j.mean, 4.302652729911275 * (0.0004 / 3 + shiftVariance).squareRoot(), accuracy: 1e-10)
        // One seed: the clip bootstrap's percentile interval.
        let one = try XCTUnwrap(SeedReplicates.interval(points: [0.5], replicates: [[0.4, 0.5, 0.6]]))
        XCTAssertTrue(one.clipsOnly)
        XCTAssertEqual(one.low, 0.405, accuracy: 1e-12)
        XCTAssertEqual(one.high, 0.595, accuracy: 1e-12)
        XCTAssertNil(SeedReplicates.interval(points: [0.5], replicates: nil))
        XCTAssertNil(SeedReplicates.interval(points: [], replicates: nil))
    }

    /// Calibration at S = 3, through the function the report's findings call: simulated experiments with
    /// a known effect, a known spread between trainings and clip noise (shared by the trainings, which
    /// see the same clips, and particular to each), each training's value a mean over clips with a clip
    /// bootstrap paired across trainings. The seed-and-clip interval covers the truth in 90–99% of 400
    /// experiments; the clip-only interval, which ignores the spread between trainings, does not.
    func testCalibratedAtThreeSeedsWhereTheClipOnlyIntervalUnderCovers() {
        var g = SeededGenerator(seed: 2026)
        func normal() -> Double {
            let u1 = max(g.nextUniform(), 1e-300), u2 = g.nextUniform()
            return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
        }
        let truth = 0.03, seedSD = 0.02, sharedSD = 0.05, ownSD = 0.1
        let (s, n, experiments) = (3, 100, 400)
        let bootstrap = Bootstrap(resamples: 200, seed: 0, level: 0.95)
        let draws = bootstrap.indices(clips: n)
        var covered = 0, coveredClipsOnly = 0
        for _ in 0..<experiments {
            let shared = (0..<n).map { _ in sharedSD * normal() }
            var points: [Double] = [], replicates: [[Double?]] = []
            for _ in 0..<s {
                let a = seedSD * normal()
                let x = (0..<n).map { truth + a + shared[$0] + ownSD * normal() }
                points.append(x.reduce(0, +) / Double(n))
                replicates.append(draws.map { idx in idx.reduce(0) { $0 + x[$1] } / Double(n) })
            }
            let both = SeedReplicates.interval(points: points, replicates: replicates)!
            let clips = SeedReplicates.interval(points: points, replicates: replicates, method: .clipsOnly)!
            if both.low <= truth && truth <= both.high { covered += 1 }
            if clips.low <= truth && truth <= clips.high { coveredClipsOnly += 1 }
        }
        let coverage = Double(covered) / Double(experiments), clipCoverage = Double(coveredClipsOnly) / Double(experiments)
        print("calibration at S = 3 over \(experiments) experiments: seeds and clips cover \(coverage), clips only \(clipCoverage)")
        XCTAssertGreaterThanOrEqual(coverage, 0.90, "seeds and clips: \(coverage)")
        XCTAssertLessThanOrEqual(coverage, 0.99, "seeds and clips: \(coverage)")
        XCTAssertLessThan(clipCoverage, 0.85, "the clip-only interval must under-cover here: \(clipCoverage)")
    }
}
