import Foundation
import LinearAlgebra
import RepresentationMetrics
import XCTest

final class RetrievalTests: XCTestCase {
    private func unit(degrees: Double, scale: Double = 1) -> [Double] {
        [scale * cos(degrees * .pi / 180), scale * sin(degrees * .pi / 180)]
    }

    func testHandCheckedFivePointsOnACircle() throws {
        // Angles 0°, 10°, 30°, 90°, 100° (p1 scaled by 3: cosine ignores norms); labels A B A B A.
        // Rankings by angular distance (label in brackets), positives' ranks and AP = mean of (m / rank_m):
        //   q0 (A, 0°):   p1[B] 10°, p2[A] 30°, p3[B] 90°, p4[A] 100° → ranks 2, 4 → AP = (1/2 + 2/4)/2 = 1/2
        //   q1 (B, 10°):  p0[A] 10°, p2[A] 20°, p3[B] 80°, p4[A] 90°  → rank 3     → AP = 1/3
        //   q2 (A, 30°):  p1[B] 20°, p0[A] 30°, p3[B] 60°, p4[A] 70°  → ranks 2, 4 → AP = 1/2
        //   q3 (B, 90°):  p4[A] 10°, p2[A] 60°, p1[B] 80°, p0[A] 90°  → rank 3     → AP = 1/3
        //   q4 (A, 100°): p3[B] 10°, p2[A] 70°, p1[B] 90°, p0[A] 100° → ranks 2, 4 → AP = 1/2
        // mAP = (3·1/2 + 2·1/3)/5 = 13/30. First-positive ranks 2, 3, 2, 3, 2:
        // hit@1 = 0, hit@2 = 3/5, hit@3 = 1, hit@10 (> N−1) = 1.
        let x = Matrix<Double>([unit(degrees: 0), unit(degrees: 10, scale: 3), unit(degrees: 30),
                                unit(degrees: 90), unit(degrees: 100)])
        let r = try Retrieval.evaluate(x, labels: [0, 1, 0, 1, 0], ks: [1, 2, 3, 10])
        XCTAssertEqual(r.ks, [1, 2, 3, 10])
        XCTAssertEqual(r.hitRates[0], 0)
        XCTAssertEqual(r.hitRates[1], 0.6, accuracy: 1e-15)
        XCTAssertEqual(r.hitRates[2], 1)
        XCTAssertEqual(r.hitRates[3], 1)
        XCTAssertEqual(r.meanAveragePrecision, 13.0 / 30.0, accuracy: 1e-15)
        XCTAssertEqual(r.queries, 5)
        XCTAssertEqual(r.queriesWithoutPositives, 0)
    }

    func testTiesAreBrokenByLowerIndex() throws {
        // p0 = (1,0), p1 = (0,1), p2 = (0,−1): cos(p0, p1) = cos(p0, p2) = 0 exactly, cos(p1, p2) = −1.
        // Labels A B A: q0 ranks p1[B], p2[A] (tie → lower index first) → AP = 1/2, no hit@1;
        //   q1 has no positive; q2 ranks p0[A] first → AP = 1. mAP = 3/4, hit@1 = 1/2.
        //   (Breaking the tie the other way would give mAP = 1, hit@1 = 1.)
        let x = Matrix<Double>([[1, 0], [0, 1], [0, -1]])
        let r = try Retrieval.evaluate(x, labels: [0, 1, 0], ks: [1])
        XCTAssertEqual(r.meanAveragePrecision, 0.75, accuracy: 1e-15)
        XCTAssertEqual(r.hitRates, [0.5])
        XCTAssertEqual(r.queriesWithoutPositives, 1)
        // Labels A A B: now the lower index is the positive: q0 ranks p1[A] first → AP = 1; q1 ranks p0[A]
        //   first → AP = 1; q2 has no positive. mAP = 1 (the other tie order would give 3/4).
        let s = try Retrieval.evaluate(x, labels: [0, 0, 1], ks: [1])
        XCTAssertEqual(s.meanAveragePrecision, 1)
        XCTAssertEqual(s.hitRates, [1])
    }

    func testQueriesWithoutPositivesAreExcludedFromBothDenominators() throws {
        // The circle case plus a sixth point at 5° with a label nobody else has. It sits between p0 and p1, so
        // rankings change: q0: p5[C] 5°, p1 10°, p2 30°, p3, p4 → positives at ranks 3, 5 → AP = (1/3 + 2/5)/2
        // = 11/30; q1: p5 5°, p0 10°, p2 20°, p3 80° → rank 4 → AP = 1/4; q2: p1 20°, p5 25°, p0 30°, p3, p4 →
        // ranks 3, 5 → 11/30; q3: p4, p2, p1, p5 85°, p0 → rank 3 → 1/3; q4: p3, p2, p1, p5 95°, p0 → ranks 2, 5
        // → (1/2 + 2/5)/2 = 9/20. mAP over the 5 queries with positives = (11/30 + 1/4 + 11/30 + 1/3 + 9/20)/5
        // = (22 + 15 + 22 + 20 + 27)/60/5 = 106/300. First-positive ranks 3, 4, 3, 3, 2 → hit@1 0, hit@3 4/5.
        let x = Matrix<Double>([unit(degrees: 0), unit(degrees: 10, scale: 3), unit(degrees: 30),
                                unit(degrees: 90), unit(degrees: 100), unit(degrees: 5)])
        let r = try Retrieval.evaluate(x, labels: [0, 1, 0, 1, 0, 2], ks: [1, 3])
        XCTAssertEqual(r.queries, 5)
        XCTAssertEqual(r.queriesWithoutPositives, 1)
        XCTAssertEqual(r.meanAveragePrecision, 106.0 / 300.0, accuracy: 1e-15)
        XCTAssertEqual(r.hitRates[0], 0)
        XCTAssertEqual(r.hitRates[1], 0.8, accuracy: 1e-15)
    }

    func testMatchesScikitLearn() throws {
        // numpy 1.24.2 / scikit-learn 1.2.1, lcg() as in GeomTestData.lcg:
        //   from sklearn.metrics import average_precision_score
        //   X = lcg(30, 5, 3) - 2.0; y = np.arange(30) % 4; y[29] = 7
        //   Z = X / np.linalg.norm(X, axis=1, keepdims=True); S = Z @ Z.T
        //   for i in range(30): m = np.arange(30) != i; t = y[m] == y[i]; skip if not t.any()
        //       aps.append(average_precision_score(t, S[i, m]))
        //       order = np.argsort(-S[i, m], kind="stable"); hits[k].append(t[order[:k]].any())
        //   np.mean(aps) -> 0.2564449465039102; hit@1, 5, 10 -> 2/29, 23/29, 29/29; 29 queries
        var x = GeomTestData.lcg(30, 5, seed: 3)
        for i in x.storage.indices { x.storage[i] -= 2 }
        var labels = (0..<30).map { $0 % 4 }
        labels[29] = 7
        let r = try Retrieval.evaluate(x, labels: labels)
        XCTAssertEqual(r.ks, [1, 5, 10])
        // No ties in continuous data, so sklearn's threshold-based AP equals the rank-based definition; float64
        // sums of ≤ 8 terms: 1e-12.
        assertRelative(r.meanAveragePrecision, 0.2564449465039102, 1e-12)
        XCTAssertEqual(r.hitRates[0], 2.0 / 29.0, accuracy: 1e-15)
        XCTAssertEqual(r.hitRates[1], 23.0 / 29.0, accuracy: 1e-15)
        XCTAssertEqual(r.hitRates[2], 1)
        XCTAssertEqual(r.queries, 29)
        XCTAssertEqual(r.queriesWithoutPositives, 1)
    }

    /// A second formulation: a positive's rank is 1 + the number of other items that beat it (higher similarity,
    /// or equal similarity and lower index); similarities from explicit normalised dot products.
    private func bruteForce(_ x: Matrix<Double>, labels: [Int], ks: [Int]) -> (hits: [Double], map: Double, queries: Int) {
        let n = x.rows
        let z = (0..<n).map { i -> [Double] in
            let r = Array(x.row(i)); let norm = r.reduce(0) { $0 + $1 * $1 }.squareRoot(); return r.map { $0 / norm }
        }
        func sim(_ i: Int, _ j: Int) -> Double { zip(z[i], z[j]).reduce(0) { $0 + $1.0 * $1.1 } }
        var apSum = 0.0, queries = 0
        var hits = [Double](repeating: 0, count: ks.count)
        for i in 0..<n {
            let positives = (0..<n).filter { $0 != i && labels[$0] == labels[i] }
            if positives.isEmpty { continue }
            queries += 1
            let ranks = positives.map { p in
                1 + (0..<n).filter { m in m != i && (sim(i, m) > sim(i, p) || (sim(i, m) == sim(i, p) && m < p)) }.count
            }.sorted()
            apSum += ranks.enumerated().reduce(0) { $0 + Double($1.offset + 1) / Double($1.element) } / Double(ranks.count)
            for (index, k) in ks.enumerated() where ranks[0] <= k { hits[index] += 1 }
        }
        return (hits.map { $0 / Double(queries) }, apSum / Double(queries), queries)
    }

    func testRandomLabelsAgreeWithBruteForceAndAreConsistent() throws {
        for seed in 0..<5 as Range<UInt64> {
            let n = 37
            let x = GeomTestData.gaussian(n, 6, seed: 100 + seed)
            var g = SeededGenerator(seed: seed)
            let labels = (0..<n).map { _ in Int(g.next() % 5) }
            let ks = [1, 2, 5, 10, n - 1]
            let r = try Retrieval.evaluate(x, labels: labels, ks: ks)
            let reference = bruteForce(x, labels: labels, ks: ks)
            // The two similarity computations (syrk vs explicit dot) can differ by an ulp; with Gaussian data no
            // two similarities of one query are that close, so rankings and hence results agree to rounding.
            XCTAssertEqual(r.queries, reference.queries)
            assertRelative(r.meanAveragePrecision, reference.map, 1e-12)
            for (a, b) in zip(r.hitRates, reference.hits) { XCTAssertEqual(a, b, accuracy: 1e-15) }
            // Hit rates cannot decrease with k; at k = N − 1 every query with a positive hits.
            XCTAssertEqual(r.hitRates, r.hitRates.sorted())
            XCTAssertEqual(r.hitRates.last, 1)
            XCTAssertGreaterThan(r.meanAveragePrecision, 0)
            XCTAssertLessThanOrEqual(r.meanAveragePrecision, 1)
            // Positive row scaling does not change cosines.
            var scaled = x
            for i in 0..<n { for j in 0..<6 { scaled[i, j] *= Double(i + 1) } }
            let s = try Retrieval.evaluate(scaled, labels: labels, ks: ks)
            assertRelative(s.meanAveragePrecision, r.meanAveragePrecision, 1e-12)
            XCTAssertEqual(s.hitRates, r.hitRates)
        }
    }

    func testPerfectlySeparatedClassesScoreOne() throws {
        // Two tight clusters far apart in angle: every query's positives come first.
        let x = Matrix<Double>([unit(degrees: 0), unit(degrees: 1), unit(degrees: 2),
                                unit(degrees: 90), unit(degrees: 91), unit(degrees: 92)])
        let r = try Retrieval.evaluate(x, labels: [3, 3, 3, 8, 8, 8], ks: [1, 5])
        XCTAssertEqual(r.meanAveragePrecision, 1)
        XCTAssertEqual(r.hitRates, [1, 1])
    }

    func testChanceMAPEqualsTheAverageOverEveryPlacementOfThePositives() throws {
        // Under a uniformly random ranking the ranks of a query's P positives are a uniformly random
        // P-subset of 1...M. Enumerate every subset and average the AP (independent of the closed form).
        func subsets(_ m: Int, _ p: Int) -> [[Int]] {
            guard p > 0 else { return [[]] }
            guard m >= p else { return [] }
            return subsets(m - 1, p) + subsets(m - 1, p - 1).map { $0 + [m] }
        }
        let labels = [0, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3]  // class sizes 1, 2, 4, 5; the singleton has no positive
        let m = labels.count - 1
        var total = 0.0, queries = 0
        for label in labels {
            let p = labels.filter { $0 == label }.count - 1
            guard p > 0 else { continue }
            let placements = subsets(m, p)
            let ap = placements.map { ranks in
                ranks.sorted().enumerated().map { Double($0.offset + 1) / Double($0.element) }.reduce(0, +) / Double(p)
            }
            total += ap.reduce(0, +) / Double(placements.count)
            queries += 1
        }
        XCTAssertEqual(queries, 11)
        XCTAssertEqual(try Retrieval.chanceMeanAveragePrecision(labels: labels), total / Double(queries), accuracy: 1e-14)
        // By hand: 3 clips, labels 0, 0, 1: each of the two queries finds its one positive at rank 1 or 2.
        XCTAssertEqual(try Retrieval.chanceMeanAveragePrecision(labels: [0, 0, 1]), (1 + 0.5) / 2, accuracy: 1e-15)
        XCTAssertEqual(try Retrieval.chanceMeanAveragePrecision(labels: [4, 4]), 1)
        assertUndefined(try Retrieval.chanceMeanAveragePrecision(labels: [0, 1, 2]), containing: "no query has a positive")
        assertUndefined(try Retrieval.chanceMeanAveragePrecision(labels: [0]), containing: "at least 2")
    }

    func testUndefinedCases() {
        let x = Matrix<Double>([[1, 0], [0, 1], [1, 1]])
        assertUndefined(try Retrieval.evaluate(x, labels: [0, 1, 2]), containing: "no query has a positive")
        assertUndefined(try Retrieval.evaluate(x, labels: [0, 1]), containing: "2 labels for 3 samples")
        assertUndefined(try Retrieval.evaluate(x, labels: [0, 0, 1], ks: [0]), containing: "at least 1")
        assertUndefined(try Retrieval.evaluate(Matrix<Double>([[1, 0]]), labels: [0]), containing: "at least 2")
        assertUndefined(try Retrieval.evaluate(Matrix<Double>([[1, 0], [0, 0]]), labels: [0, 0]), containing: "row 1 has norm 0")
        assertUndefined(try Retrieval.evaluate(Matrix<Double>([[1, 0], [.nan, 0]]), labels: [0, 0]), containing: "non-finite")
    }
}
