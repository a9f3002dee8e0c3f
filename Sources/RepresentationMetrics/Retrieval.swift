import LinearAlgebra

/// Leave-one-out retrieval quality of labelled samples.
public struct RetrievalResult: Sendable, Codable, Equatable {
    /// The cut-offs k, as requested.
    public var ks: [Int]
    /// Top-k hit rate for each k in `ks`, over the queries with ≥ 1 positive (the same denominator as mAP).
    public var hitRates: [Double]
    /// Mean average precision over the queries with ≥ 1 positive.
    public var meanAveragePrecision: Double
    /// Number of queries with at least one positive (another sample with the same label): the denominator.
    public var queries: Int
    /// Number of queries whose label no other sample has; excluded from every average.
    public var queriesWithoutPositives: Int
    /// Average precision of every sample as a query, in row order; nil for a query without positives.
    /// `meanAveragePrecision` is the mean of the non-nil entries (bootstrap intervals resample these).
    public var averagePrecisions: [Double?]

    public init(ks: [Int], hitRates: [Double], meanAveragePrecision: Double, queries: Int, queriesWithoutPositives: Int,
                averagePrecisions: [Double?] = []) {
        self.ks = ks
        self.hitRates = hitRates
        self.meanAveragePrecision = meanAveragePrecision
        self.queries = queries
        self.queriesWithoutPositives = queriesWithoutPositives
        self.averagePrecisions = averagePrecisions
    }
}

/// Cosine-similarity retrieval: every sample queries all the others.
public enum Retrieval {
    /// Top-k hit rates and mean average precision of cosine-similarity retrieval, self excluded.
    ///
    /// Rows are L2-normalised and S = Z Zᵀ (one BLAS syrk). Query i ranks the other N − 1 samples by Sᵢⱼ
    /// descending, ties broken by lower index j. Its positives are the other samples with labels[j] = labels[i].
    /// - hit@k(i) = 1 when one of the first min(k, N − 1) ranked samples is a positive;
    /// - AP(i) = (1/Pᵢ) Σ_{m=1…Pᵢ} m / rₘ, with r₁ < … < r_Pᵢ the ranks (1-based) of i's positives, i.e. the
    ///   mean over its positives of the precision at that positive's rank;
    /// - hit rate@k = mean hit@k and mAP = mean AP, both over the queries with ≥ 1 positive; queries without
    ///   positives are counted in `queriesWithoutPositives` and left out of both denominators.
    ///
    /// - Parameters:
    ///   - x: N×D, one sample per row.
    ///   - labels: N class labels.
    ///   - ks: cut-offs, each ≥ 1 (a k ≥ N − 1 retrieves every other sample).
    /// - Throws: `MetricUndefined` for N < 2, a label count ≠ N, a k < 1, NaN/Inf, a row of norm 0, or when no
    ///   query has a positive.
    /// - Complexity: O(N²·D) in one syrk plus O(N² log N) for the rankings.
    public static func evaluate(_ x: Matrix<Double>, labels: [Int], ks: [Int] = [1, 5, 10]) throws -> RetrievalResult {
        let n = x.rows, d = x.cols
        guard n >= 2 else { throw MetricUndefined("retrieval needs at least 2 samples, got \(n)") }
        guard labels.count == n else { throw MetricUndefined("\(labels.count) labels for \(n) samples") }
        if let k = ks.first(where: { $0 < 1 }) { throw MetricUndefined("retrieval cut-off k must be at least 1, got \(k)") }
        let bad = x.nonFiniteCount
        guard bad == 0 else { throw MetricUndefined("non-finite input: \(bad) NaN or infinite values") }

        var z = x
        for i in 0..<n {
            var sq = 0.0
            for j in 0..<d { sq += z.storage[i * d + j] * z.storage[i * d + j] }
            let norm = sq.squareRoot()
            guard norm > 0 else { throw MetricUndefined("row \(i) has norm 0 (cosine undefined)") }
            for j in 0..<d { z.storage[i * d + j] /= norm }
        }
        let similarity = Matrix.gramOfRows(z)

        var classSize: [Int: Int] = [:]
        for label in labels { classSize[label, default: 0] += 1 }

        var hits = [Int](repeating: 0, count: ks.count)
        var apSum = 0.0
        var queries = 0, withoutPositives = 0
        var averagePrecisions = [Double?](repeating: nil, count: n)
        var order = [Int]()
        order.reserveCapacity(n - 1)
        for i in 0..<n {
            let positives = classSize[labels[i]]! - 1
            if positives == 0 { withoutPositives += 1; continue }
            queries += 1
            let s = Array(similarity.row(i))
            order.removeAll(keepingCapacity: true)
            for j in 0..<n where j != i { order.append(j) }
            order.sort { a, b in s[a] != s[b] ? s[a] > s[b] : a < b }

            var found = 0
            var firstRank = 0
            var precisionSum = 0.0
            for (position, j) in order.enumerated() where labels[j] == labels[i] {
                found += 1
                let rank = position + 1
                if found == 1 { firstRank = rank }
                precisionSum += Double(found) / Double(rank)
                if found == positives { break }
            }
            averagePrecisions[i] = precisionSum / Double(positives)
            apSum += precisionSum / Double(positives)
            for (index, k) in ks.enumerated() where firstRank <= k { hits[index] += 1 }
        }
        guard queries > 0 else { throw MetricUndefined("no query has a positive (no two samples share a label)") }
        return RetrievalResult(ks: ks, hitRates: hits.map { Double($0) / Double(queries) },
                               meanAveragePrecision: apSum / Double(queries),
                               queries: queries, queriesWithoutPositives: withoutPositives, averagePrecisions: averagePrecisions)
    }
}

extension Metric {
    /// Cosine retrieval of clip vectors (`Retrieval.evaluate`).
    static let retrievalDefinitions: [Metric: MetricDefinition] = [
        .retrievalTopK: MetricDefinition(unit: "fraction of queries (0 to 1)", convention: "fraction of queries (with >= 1 positive) whose k most cosine-similar other clips contain a clip of the same class; self excluded, ties broken by lower index", undefinedWhen: ["no query has another clip of its class", "NaN or Inf in the data"]),
        .retrievalMAP: MetricDefinition(unit: "fraction (0 to 1)", convention: "mean over queries with >= 1 positive of average precision (mean of precision at each positive's rank); cosine similarity of clip vectors, self excluded", undefinedWhen: ["no query has another clip of its class", "NaN or Inf in the data"]),
    ]
}
