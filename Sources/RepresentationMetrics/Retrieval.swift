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
        try evaluate(x, labelSets: [labels], ks: ks)[0].get()
    }

    /// `evaluate` for several labellings of the same samples (the targets of one depth): the similarity
    /// and each query's ranking are computed once and scored against every labelling, with the same
    /// results as one call per labelling.
    ///
    /// - Throws: what `evaluate` throws for the samples themselves (too few, NaN/Inf, a zero row, a bad
    ///   k); a labelling's own problems (wrong count, no positives) come back as its failed result.
    public static func evaluate(_ x: Matrix<Double>, labelSets: [[Int]], ks: [Int] = [1, 5, 10]) throws -> [Result<RetrievalResult, Error>] {
        let n = x.rows, d = x.cols
        guard n >= 2 else { throw MetricUndefined("retrieval needs at least 2 samples, got \(n)") }
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

        struct Tally {
            var labels: [Int]
            var classSize: [Int: Int] = [:]
            var hits: [Int]
            var apSum = 0.0
            var queries = 0, withoutPositives = 0
            var averagePrecisions: [Double?]
        }
        var failures: [Int: Error] = [:]
        var tallies: [Tally] = []
        for (t, labels) in labelSets.enumerated() {
            if labels.count != n { failures[t] = MetricUndefined("\(labels.count) labels for \(n) samples") }
            var tally = Tally(labels: labels.count == n ? labels : [Int](repeating: 0, count: n),
                              hits: [Int](repeating: 0, count: ks.count), averagePrecisions: [Double?](repeating: nil, count: n))
            for label in tally.labels { tally.classSize[label, default: 0] += 1 }
            tallies.append(tally)
        }
        // Each query's ranking: the other samples by similarity descending, ties by lower index.
        struct Candidate { var similarity: Double; var index: Int }
        var order = [Candidate]()
        order.reserveCapacity(n - 1)
        for i in 0..<n {
            guard tallies.indices.contains(where: { failures[$0] == nil && tallies[$0].classSize[tallies[$0].labels[i]]! > 1 }) else {
                for t in tallies.indices { tallies[t].withoutPositives += 1 }
                continue
            }
            order.removeAll(keepingCapacity: true)
            similarity.storage.withUnsafeBufferPointer { s in
                for j in 0..<n where j != i { order.append(Candidate(similarity: s[i * n + j], index: j)) }
            }
            order.sort { a, b in a.similarity != b.similarity ? a.similarity > b.similarity : a.index < b.index }
            for t in tallies.indices where failures[t] == nil {
                let labels = tallies[t].labels
                let positives = tallies[t].classSize[labels[i]]! - 1
                if positives == 0 { tallies[t].withoutPositives += 1; continue }
                tallies[t].queries += 1
                var found = 0
                var firstRank = 0
                var precisionSum = 0.0
                for (position, c) in order.enumerated() where labels[c.index] == labels[i] {
                    found += 1
                    let rank = position + 1
                    if found == 1 { firstRank = rank }
                    precisionSum += Double(found) / Double(rank)
                    if found == positives { break }
                }
                tallies[t].averagePrecisions[i] = precisionSum / Double(positives)
                tallies[t].apSum += precisionSum / Double(positives)
                for (index, k) in ks.enumerated() where firstRank <= k { tallies[t].hits[index] += 1 }
            }
        }
        return tallies.indices.map { t in
            if let e = failures[t] { return .failure(e) }
            let tally = tallies[t]
            guard tally.queries > 0 else { return .failure(MetricUndefined("no query has a positive (no two samples share a label)")) }
            return .success(RetrievalResult(ks: ks, hitRates: tally.hits.map { Double($0) / Double(tally.queries) },
                                             meanAveragePrecision: tally.apSum / Double(tally.queries),
                                             queries: tally.queries, queriesWithoutPositives: tally.withoutPositives,
                                             averagePrecisions: tally.averagePrecisions))
        }
    }
}

extension Retrieval {
    /// The chance level of `evaluate`'s mAP: the expected mean average precision when every query's
    /// ranking of the other samples is a uniformly random permutation, exact for the given labels.
    ///
    /// A query with P ≥ 1 positives among the M = N − 1 other samples: a given rank k holds a positive
    /// with probability P/M, and given that, the expected number of positives in ranks 1…k is
    /// 1 + (k − 1)(P − 1)/(M − 1). So E[AP] = (1/P) Σₖ (P/M)(1 + (k − 1)(P − 1)/(M − 1))/k
    /// = ρ + (H_M/M)(1 − ρ), with ρ = (P − 1)/(M − 1) and H_M the M-th harmonic number (E[AP] = 1 when
    /// M = 1). The same closed form is derived in Bestgen (2015), "Exact expected average precision of the
    /// random baseline for system evaluation", Prague Bull. Math. Linguistics 103. The chance mAP is the
    /// mean of E[AP] over the queries with ≥ 1 positive, as `evaluate` averages.
    ///
    /// - Throws: `MetricUndefined` for fewer than 2 samples or when no query has a positive.
    /// - Complexity: O(N).
    public static func chanceMeanAveragePrecision(labels: [Int]) throws -> Double {
        let n = labels.count
        guard n >= 2 else { throw MetricUndefined("retrieval needs at least 2 samples, got \(n)") }
        var classSize: [Int: Int] = [:]
        for label in labels { classSize[label, default: 0] += 1 }
        let m = n - 1
        var harmonic = 0.0
        for k in 1...m { harmonic += 1 / Double(k) }
        var sum = 0.0, queries = 0
        for label in labels {
            let positives = classSize[label]! - 1
            guard positives >= 1 else { continue }
            queries += 1
            if m == 1 { sum += 1; continue }
            let rho = Double(positives - 1) / Double(m - 1)
            sum += rho + harmonic / Double(m) * (1 - rho)
        }
        guard queries > 0 else { throw MetricUndefined("no query has a positive (no two samples share a label)") }
        return sum / Double(queries)
    }
}

extension Metric {
    /// Cosine retrieval of clip vectors (`Retrieval.evaluate`).
    static let retrievalDefinitions: [Metric: MetricDefinition] = [
        .retrievalTopK: MetricDefinition(unit: "fraction of queries (0 to 1)", convention: "fraction of queries (with >= 1 positive) whose k most cosine-similar other clips contain a clip of the same class; self excluded, ties broken by lower index", undefinedWhen: ["no query has another clip of its class", "NaN or Inf in the data"]),
        .retrievalMAP: MetricDefinition(unit: "fraction (0 to 1)", convention: "mean over queries with >= 1 positive of average precision (mean of precision at each positive's rank); cosine similarity of clip vectors, self excluded", undefinedWhen: ["no query has another clip of its class", "NaN or Inf in the data"]),
.retrievalMAPChance: MetricDefinition(unit: "fraction (0 to 1)", convention: "chance level of retrieval_map, exact: the expected mAP when each query ranks the other clips in uniformly random order, from the labels alone (a query with P positives among M other clips: E[AP] = rho + (H_M / M)(1 - rho), rho = (P - 1)/(M - 1), H_M the harmonic number; mean over queries with >= 1 positive); one value per target, recorded at the last selected depth", undefinedWhen: ["no query has another clip of its class"]),
    ]
}
