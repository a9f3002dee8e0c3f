import ActivationStore
import Foundation
import LinearAlgebra
import RepresentationMetrics

/// `bwanalyze spectrum`: covariance-spectrum geometry, RankMe and pairwise statistics per depth.
public struct SpectrumAnalysis {
    public var depthSelection: DepthSelection = .blocks
    public var pooling: Pooling = .mean
    public var maxBatchBytes = 64 << 20
    /// Rows kept (a seeded random subset when there are more) for pairwise statistics.
    public var pairwiseRows = 4096

    public init() {}

    public static let metrics: [(name: String, convention: String)] = [
        ("effective_rank", "exp(-sum p_i log p_i), p_i = lambda_i / sum lambda, lambda = S^2/(N-1) of column-centred X (paper's eval code)"),
        ("participation_ratio", "(sum lambda)^2 / sum lambda^2"),
        ("isotropy", "lambda_max / mean lambda over all D eigenvalues"),
        ("k90", "smallest k whose k largest eigenvalues explain >= 90% of the variance"),
        ("condition_number", "lambda_max / lambda_min over the D eigenvalues; undefined when rank deficient (lambda_min <= lambda_max * max(N,D) * eps)"),
        ("rankme", "exp(-sum p_i log p_i), p_i = sigma_i / sum sigma + 1e-7, sigma = singular values of uncentred X (Garrido et al. 2023)"),
        ("uniformity", "log mean over pairs i != j of exp(-2 ||z_i - z_j||^2), z = L2-normalised rows (Wang & Isola 2020)"),
        ("mean_norm", "mean L2 norm of rows"), ("std_norm", "std (ddof 0) of row norms"),
        ("mean_cosine", "mean cosine similarity over pairs i < j"), ("std_cosine", "std (ddof 0) of pairwise cosines"),
        ("mean_distance", "mean Euclidean distance over pairs i < j"), ("std_distance", "std (ddof 0) of pairwise distances"),
    ]

    public func run(_ f: ActivationFile, progress: ((Int, Int) -> Void)? = nil) throws -> MetricReport {
        let depths = try depthSelection.depths(in: f)
        let stream = DepthStream(sources: [.init(file: f, depths: depths)], pooling: pooling, maxBatchBytes: maxBatchBytes)
        let rowsPerClip = pooling == .tokens ? f.tokenCount : 1
        let n = f.clipCount * rowsPerClip, d = f.featureCount
        var accs = depths.map { _ in CovarianceAccumulator(dimension: d) }
        let keep = PairwiseStatistics.sampleIndices(count: n, keep: pairwiseRows, seed: 0)
        let keepSet = keep.count == n ? nil : Set(keep)
        var kept: [[Double]] = depths.map { _ in [] }
        try stream.forEach(progress: progress) { r, batch in
            for i in depths.indices {
                try accs[i].add(batch[i])
                let first = r.lowerBound * rowsPerClip
                if let keepSet {
                    for row in 0..<batch[i].rows where keepSet.contains(first + row) { kept[i] += batch[i].row(row) }
                } else {
                    kept[i] += batch[i].storage
                }
            }
        }
        var records: [MetricRecord] = []
        var warnings: [String] = []
        if n < 4 * d {
            warnings.append("N = \(n) rows is not well above D = \(d): the spectrum has at most \(n - 1) nonzero eigenvalues and its estimates are biased")
        }
        let base = MetricRecord(metric: "", run: f.metadata.run, file: f.path, probeSet: f.metadata.probeSet, step: f.metadata.step)
        for (i, depth) in depths.enumerated() {
            let summary = Result { () throws -> SpectrumSummary in
                // N < 2 and NaN/Inf are reported by the summary itself; test constancy only where it applies.
                if accs[i].count >= 2, accs[i].nonFiniteCount == 0, accs[i].isEffectivelyConstant() {
                    throw MetricUndefined("zero variance (all rows equal up to float32 rounding)")
                }
                return try CovarianceSpectrum.summary(of: accs[i])
            }
            let pairwise = Result { try PairwiseStatistics.compute(Matrix(rows: kept[i].count / d, cols: d, storage: kept[i]), maxRows: Int.max) }
            func add(_ metric: String, _ body: () throws -> Double) {
                var r = base
                r.metric = metric
                r.depth = depth
                r.measure(body)
                records.append(r)
            }
            add("effective_rank") { try summary.get().effectiveRank }
            add("participation_ratio") { try summary.get().participationRatio }
            add("isotropy") { try summary.get().isotropy }
            add("k90") { Double(try summary.get().k90) }
            add("condition_number") {
                let s = try summary.get()
                guard let c = s.conditionNumber else { throw MetricUndefined(s.conditionNumberUndefined ?? "undefined") }
                return c
            }
            add("rankme") {
                guard let v = try summary.get().rankMe else { throw MetricUndefined("RankMe not computed") }
                return v
            }
            add("uniformity") { try pairwise.get().uniformity }
            add("mean_norm") { try pairwise.get().meanNorm }
            add("std_norm") { try pairwise.get().stdNorm }
            add("mean_cosine") { try pairwise.get().meanCosine }
            add("std_cosine") { try pairwise.get().stdCosine }
            add("mean_distance") { try pairwise.get().meanDistance }
            add("std_distance") { try pairwise.get().stdDistance }
        }
        let conventions = Dictionary(uniqueKeysWithValues: SpectrumAnalysis.metrics.map { ($0.name, $0.convention) })
        return MetricReport(command: "spectrum",
                            parameters: ["pooling": pooling.rawValue, "rows": "\(n)", "features": "\(d)",
                                         "pairwise_rows": "\(keep.count)", "pairwise_sampled": "\(keep.count < n)",
                                         "method": "eigenvalues of the DxD covariance (dsyevd) from streamed float64 sums",
                                         "precision": "float64 accumulation"],
                            conventions: conventions, inputs: [InputDescription(f)], records: records, warnings: warnings)
    }

    public static func table(_ report: MetricReport) -> String {
        let cols = ["effective_rank", "participation_ratio", "isotropy", "k90", "condition_number", "rankme", "uniformity", "mean_cosine"]
        var t = TextTable(header: ["depth", "eff. rank", "PR", "isotropy", "k90", "cond.", "RankMe", "uniformity", "mean cos"])
        let depths = Array(Set(report.records.compactMap(\.depth))).sorted()
        for d in depths {
            var row = ["\(d)"]
            for c in cols {
                guard let r = report.records.first(where: { $0.metric == c && $0.depth == d }) else { row.append(""); continue }
                if c == "k90", let v = r.value { row.append("\(Int(v))") } else if c == "condition_number", let v = r.value {
                    row.append(String(format: "%.3g", v))
                } else { row.append(cell(r, digits: 3)) }
            }
            t.rows.append(row)
        }
        var out = "spectrum of \(report.parameters["pooling"] == "tokens" ? "tokens" : "clip vectors")   rows \(report.parameters["rows"] ?? "")   D \(report.parameters["features"] ?? "")\n"
        out += t.render(leftColumns: 0)
        var seen = Set<String>()
        for r in report.records where r.undefined != nil {
            let line = "  n/a at depth \(r.depth!): \(r.undefined!)"
            if r.metric == "condition_number" || !seen.contains("\(r.depth!)") { out += "\(line) (\(r.metric))\n" }
            seen.insert("\(r.depth!)")
        }
        for w in report.warnings { out += "warning: \(w)\n" }
        return out
    }
}

/// `bwanalyze retrieval`: cosine retrieval of clip vectors per depth and target.
public struct RetrievalAnalysis {
    public var depthSelection: DepthSelection = .blocks
    public var targets: [String]? = nil
    public var ks = [1, 5, 10]
    public var maxBatchBytes = 64 << 20
    /// When set, mAP gets a bootstrap interval over clips (resampling the per-query average precisions).
    public var bootstrap: Bootstrap? = nil

    public init() {}

    public static let conventions: [String: String] = [
        "retrieval_top_k": "fraction of queries (with >= 1 positive) whose k most cosine-similar other clips contain a clip of the same class; self excluded, ties broken by lower index",
        "retrieval_map": "mean over queries with >= 1 positive of average precision (mean of precision at each positive's rank); cosine similarity of clip vectors, self excluded",
    ]

    public func run(_ f: ActivationFile, progress: ((Int, Int) -> Void)? = nil) throws -> MetricReport {
        let depths = try depthSelection.depths(in: f)
        let chosen = targets ?? f.targets
        guard !chosen.isEmpty else { throw AnalysisError("\(f.path): the file has no labels; retrieval needs /labels/<target>") }
        let labels = try chosen.map { try f.labels($0) }
        let vectors = try collectClipVectors(f, depths: depths, maxBatchBytes: maxBatchBytes, progress: progress)
        var records: [MetricRecord] = []
        let base = MetricRecord(metric: "", run: f.metadata.run, file: f.path, probeSet: f.metadata.probeSet, step: f.metadata.step)
        let weights = try bootstrap.map { try $0.weights(for: f) }
        for (i, depth) in depths.enumerated() {
            for (t, target) in chosen.enumerated() {
                let result = Result { try Retrieval.evaluate(vectors[i], labels: labels[t], ks: ks) }
                for (j, k) in ks.enumerated() {
                    var r = base
                    r.metric = "retrieval_top\(k)"
                    r.depth = depth
                    r.target = target
                    r.measure { try result.get().hitRates[j] }
                    records.append(r)
                }
                var r = base
                r.metric = "retrieval_map"
                r.depth = depth
                r.target = target
                r.measure { try result.get().meanAveragePrecision }
                if let bootstrap, let weights, let ap = try? result.get().averagePrecisions, ap.count == f.clipCount {
                    r.setBootstrap(Bootstrap.replicateMeans(ap, weights: weights.weights), clips: f.clipCount, clipSet: weights.clipSet,
                                   bootstrap: bootstrap)
                }
                records.append(r)
            }
        }
        return MetricReport(command: "retrieval", parameters: ["ks": ks.map(String.init).joined(separator: ","), "clips": "\(f.clipCount)",
                                                                "similarity": "cosine of clip vectors (mean over tokens)"]
                                .merging(bootstrap.map { ["bootstrap": $0.description + "; mAP intervals resample the queries' average precisions (the gallery is not resampled)"] } ?? [:]) { a, _ in a },
                            conventions: RetrievalAnalysis.conventions, inputs: [InputDescription(f)], records: records)
    }

    public static func table(_ report: MetricReport) -> String {
        let ks = (report.parameters["ks"] ?? "").split(separator: ",").map(String.init)
        var t = TextTable(header: ["depth", "target"] + ks.map { "top-\($0)" } + ["mAP"])
        for r in report.records where r.metric == "retrieval_map" {
            var row = ["\(r.depth!)", r.target ?? ""]
            for k in ks {
                let h = report.records.first { $0.metric == "retrieval_top\(k)" && $0.depth == r.depth && $0.target == r.target }
                row.append(h.map { cell($0) } ?? "")
            }
            row.append(cell(r))
            t.rows.append(row)
        }
        var out = t.render(leftColumns: 2)
        for r in report.records where r.undefined != nil && r.metric == "retrieval_map" {
            out += "  n/a at depth \(r.depth!), target \(r.target ?? ""): \(r.undefined!)\n"
        }
        return out
    }
}

/// Clip vectors (means over tokens) of the chosen depths, in one streamed pass.
public func collectClipVectors(_ f: ActivationFile, depths: [Int], maxBatchBytes: Int,
                               progress: ((Int, Int) -> Void)? = nil) throws -> [Matrix<Double>] {
    let stream = DepthStream(sources: [.init(file: f, depths: depths)], pooling: .mean, maxBatchBytes: maxBatchBytes)
    var collected: [[Double]] = depths.map { _ in [] }
    try stream.forEach(progress: progress) { _, batch in
        for i in depths.indices { collected[i] += batch[i].storage }
    }
    return collected.map { Matrix(rows: f.clipCount, cols: f.featureCount, storage: $0) }
}
