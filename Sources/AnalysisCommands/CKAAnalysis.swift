import ActivationStore
import Foundation
import LinearAlgebra
import RepresentationMetrics

extension InputDescription {
    public init(_ f: ActivationFile) {
        self.init(file: f.path, run: f.metadata.run, regime: f.metadata.regime, probeSet: f.metadata.probeSet,
                  step: f.metadata.step, clips: f.clipCount, tokens: f.tokenCount, features: f.featureCount,
                  dtype: Array(Set(f.tokenTypes.map(\.rawValue))).sorted().joined(separator: "/"), bytes: f.fileSize)
    }
}

/// `bwanalyze cka`: CKA between depths of one file, or between the depths of two files of the same clips.
public struct CKAAnalysis {
    public enum Pairs: String, Sendable, CaseIterable {
        /// One file: each depth with the next selected depth.
        case consecutive
        /// One file: every pair i < j. Two files: every depth of A with every depth of B.
        case all
        /// Two files: the same depth in both.
        case matching
    }

    public var depthSelection: DepthSelection = .blocks
    public var pairs: Pairs? = nil
    public var kernel: CKAKernel = .linear
    public var estimator: CKAEstimator = .biased
    public var bandwidth: RBFBandwidth = .paperMedian
    public var batchSize = 256
    public var pooling: Pooling = .mean
    public var allowDifferentProbeSets = false
    /// Largest number of rows for which N×N Gram matrices are formed (RBF, or linear with D > N).
    public var maxGramRows = 8192
    /// Memory budget of one streamed batch (bytes of float64 tokens over all selected depths).
    public var maxBatchBytes = 64 << 20
    /// When set (linear kernel, biased estimator, mean pooling), CKA values get bootstrap intervals over
    /// clips (`CKA.linearBootstrap`). With `--pairs all` on one file only the pairs a report reads get
    /// them: consecutive selected depths, consecutive block boundaries, and the first with the last depth.
    public var bootstrap: Bootstrap? = nil
    /// Largest N for the bootstrap (its cost is O(N²·B) per pair).
    public var maxBootstrapClips = 2048

    public init() {}

    public static let conventions: [String: String] = [
        "cka_linear_biased": "||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), Xc column-centred (Kornblith et al. 2019)",
        "cka_linear_debiased": "HSIC_1 U-statistic of Song et al. 2012 with Gram diagonals zeroed; CKA = HSIC_1(K,L)/sqrt(HSIC_1(K,K) HSIC_1(L,L)) (Nguyen et al. 2021)",
        "cka_linear_minibatch": "mean over minibatches of HSIC_1(K,L) / sqrt(mean HSIC_1(K,K) * mean HSIC_1(L,L)) (Nguyen et al. 2021, eq. 3); a different estimator from full-data CKA",
        "cka_rbf_biased": "Gaussian kernel exp(-gamma ||xi-xj||^2), Gram matrices double-centred, biased HSIC",
        "cka_rbf_debiased": "Gaussian kernel, HSIC_1 U-statistic",
        "pooling_mean": "rows are clip vectors: the mean over a clip's tokens",
        "pooling_tokens": "rows are tokens: N*T rows",
    ]

    var metricName: String { "cka_\(kernel.rawValue)_\(estimator.rawValue)" }

    public func run(_ a: ActivationFile, _ b: ActivationFile? = nil,
                    progress: ((Int, Int) -> Void)? = nil) throws -> MetricReport {
        if kernel == .rbf && estimator == .minibatch {
            throw AnalysisError("the minibatch estimator is implemented for the linear kernel only; use --kernel linear or --estimator biased|debiased")
        }
        let depthsA = try depthSelection.depths(in: a)
        var sources = [DepthStream.Source(file: a, depths: depthsA)]
        var pairList: [CKAPair] = []
        var labels: [(Int, Int)] = []  // (depth A, depth B) per pair
        let mode: Pairs
        if let unaligned = b {
            let b = try alignClips(a, unaligned, allowDifferentProbeSets: allowDifferentProbeSets)
            let depthsB = try depthSelection.depths(in: b)
            sources.append(DepthStream.Source(file: b, depths: depthsB))
            mode = pairs ?? .all
            switch mode {
            case .consecutive:
                throw AnalysisError("--pairs consecutive compares depths within one file; with two files use --pairs all or matching")
            case .all:
                for (i, da) in depthsA.enumerated() {
                    for (j, db) in depthsB.enumerated() { pairList.append(CKAPair(i, depthsA.count + j)); labels.append((da, db)) }
                }
            case .matching:
                for (i, da) in depthsA.enumerated() {
                    if let j = depthsB.firstIndex(of: da) { pairList.append(CKAPair(i, depthsA.count + j)); labels.append((da, da)) }
                }
                if pairList.isEmpty { throw AnalysisError("the two files share no selected depth") }
            }
        } else {
            mode = pairs ?? .consecutive
            switch mode {
            case .consecutive:
                guard depthsA.count >= 2 else { throw AnalysisError("consecutive CKA needs at least two depths; got \(depthsA)") }
                for i in 0..<(depthsA.count - 1) { pairList.append(CKAPair(i, i + 1)); labels.append((depthsA[i], depthsA[i + 1])) }
            case .all:
                for i in depthsA.indices { for j in depthsA.indices where i < j { pairList.append(CKAPair(i, j)); labels.append((depthsA[i], depthsA[j])) } }
            case .matching:
                throw AnalysisError("--pairs matching needs two files")
            }
        }
        let stream = DepthStream(sources: sources, pooling: pooling, maxBatchBytes: maxBatchBytes,
                                 clipMultiple: estimator == .minibatch ? batchSize : 1)
        let parametersBatches = stream.batches().count
        let dims = sources.flatMap { s in s.depths.map { _ in s.file.featureCount } }
        let rows = a.clipCount * (pooling == .tokens ? a.tokenCount : 1)
        var warnings: [String] = []
        var values: [Result<Double, Error>]
        var parameters: [String: String] = [
            "batches": "\(parametersBatches)",
            "kernel": kernel.rawValue, "estimator": estimator.rawValue, "pooling": pooling.rawValue,
            "pairs": mode.rawValue, "rows": "\(rows)", "precision": "float64 accumulation",
        ]
        let repDepth = sources.flatMap { s in s.depths.map { (s.file.path, $0) } }
        // Pairs that get bootstrap intervals, and the clip vectors they need.
        var bootstrapPairs: [Int] = []
        if bootstrap != nil {
            if kernel != .linear || estimator != .biased || pooling != .mean {
                warnings.append("bootstrap intervals are computed for linear biased CKA of clip vectors only")
            } else if rows > maxBootstrapClips {
                warnings.append("bootstrap intervals skipped: N = \(rows) > \(maxBootstrapClips) clips")
            } else if b == nil && mode == .all {
                let blockDepths = [0] + a.metadata.blockEnds
                bootstrapPairs = pairList.indices.filter { k in
                    let (da, db) = labels[k]
                    let i = depthsA.firstIndex(of: da)!, j = depthsA.firstIndex(of: db)!
                    if j == i + 1 || (da == depthsA.first! && db == depthsA.last!) { return true }
                    if let bi = blockDepths.firstIndex(of: da), bi + 1 < blockDepths.count, blockDepths[bi + 1] == db { return true }
                    return false
                }
            } else {
                bootstrapPairs = Array(pairList.indices)
            }
        }
        let keep = Set(bootstrapPairs.flatMap { [pairList[$0].a, pairList[$0].b] })
        var clipVectors: [Int: [Double]] = [:]
        let useGram = kernel == .rbf || (estimator != .minibatch && dims.max()! > rows)
        if useGram {
            guard rows <= maxGramRows else {
                throw AnalysisError("\(kernel == .rbf ? "RBF CKA" : "this CKA") needs \(rows)x\(rows) Gram matrices; that is more than --max-gram-rows \(maxGramRows). Use --pool mean, fewer clips, or the linear kernel")
            }
            var reps = [Matrix<Double>](repeating: Matrix(rows: 0, cols: 0), count: dims.count)
            for m in dims.indices { reps[m] = Matrix(rows: 0, cols: dims[m]) }
            var collected: [[Double]] = dims.map { _ in [] }
            try stream.forEach(progress: progress) { _, batch in
                for (m, x) in batch.enumerated() { collected[m] += x.storage }
            }
            for m in dims.indices { reps[m] = Matrix(rows: rows, cols: dims[m], storage: collected[m]) }
            for m in keep { clipVectors[m] = collected[m] }
            var grams: [Int: Result<Matrix<Double>, Error>] = [:]
            var gammas: [String] = []
            for m in Set(pairList.flatMap { [$0.a, $0.b] }).sorted() {
                grams[m] = Result {
                    if CKA.isEffectivelyConstant(reps[m]) {
                        throw MetricUndefined("zero variance at depth \(repDepth[m].1) of \(repDepth[m].0) (all rows equal up to float32 rounding)")
                    }
                    if kernel == .linear {
                        guard reps[m].nonFiniteCount == 0 else { throw MetricUndefined("NaN or Inf in the data") }
                        return CKA.linearGram(reps[m])
                    }
                    let (k, gamma) = try CKA.rbfGram(reps[m], bandwidth: bandwidth)
                    gammas.append(String(format: "%.6g", gamma))
                    return k
                }
            }
            if kernel == .rbf {
                parameters["bandwidth"] = bandwidth.description
                parameters["gamma_per_representation"] = gammas.joined(separator: ",")
            }
            parameters["form"] = "gram"
            values = pairList.map { p in
                Result { try CKA.fromGrams(grams[p.a]!.get(), grams[p.b]!.get(), estimator: estimator) }
            }
        } else if estimator == .minibatch {
            var acc = try MinibatchCKAAccumulator(dimensions: dims, pairs: pairList,
                                                  batchSize: batchSize * (pooling == .tokens ? a.tokenCount : 1))
            try stream.forEach(progress: progress) { _, batch in try acc.add(batch) }
            parameters["batch_size_clips"] = "\(batchSize)"
            parameters["minibatches"] = "\(acc.batches)"
            if acc.droppedRows > 0 {
                warnings.append("\(acc.droppedRows) rows after the last full minibatch were not used")
            }
            parameters["form"] = "feature"
            values = pairList.map { p in Result { try acc.cka(p) } }
        } else {
            var acc = LinearCKAAccumulator(dimensions: dims, pairs: pairList)
            // A representation with NaN/Inf is replaced by zeros so the others still accumulate;
            // every pair that involves it is reported undefined.
            var nonFinite = Set<Int>()
            try stream.forEach(progress: progress) { _, batch in
                for m in keep { clipVectors[m, default: []] += batch[m].storage }
                var clean = batch
                for m in clean.indices where clean[m].nonFiniteCount > 0 {
                    nonFinite.insert(m)
                    clean[m] = Matrix(rows: clean[m].rows, cols: clean[m].cols)
                }
                try acc.add(clean)
            }
            parameters["form"] = "feature"
            values = pairList.map { p in
                if let m = [p.a, p.b].first(where: nonFinite.contains) {
                    return .failure(MetricUndefined("NaN or Inf in \(repDepth[m].0) at depth \(repDepth[m].1)"))
                }
                return Result {
                    for m in [p.a, p.b] where acc.isEffectivelyConstant(m) {
                        throw MetricUndefined("zero variance at depth \(repDepth[m].1) of \(repDepth[m].0) (all rows equal up to float32 rounding)")
                    }
                    return try acc.cka(p, estimator: estimator)
                }
            }
        }
        if pooling == .mean && rows < 4 * (dims.max() ?? 0) && kernel == .linear {
            warnings.append("N = \(rows) rows is not well above D = \(dims.max() ?? 0): linear CKA is biased towards 1 when D is large relative to N; consider --estimator debiased")
        }
        var replicates: [Int: [Double?]] = [:]
        var clipSet = ""
        if let bootstrap, !bootstrapPairs.isEmpty {
            // Rows follow a's clip order (b was aligned to it), so a's resamples apply to both.
            let (weights, key) = try bootstrap.weights(for: a)
            clipSet = key
            let ms = keep.sorted()
            let slot = Dictionary(uniqueKeysWithValues: ms.enumerated().map { ($1, $0) })
            let matrices = ms.map { Matrix(rows: rows, cols: dims[$0], storage: clipVectors[$0]!) }
            let reps = CKA.linearBootstrap(matrices, pairs: bootstrapPairs.map { CKAPair(slot[pairList[$0].a]!, slot[pairList[$0].b]!) },
                                           weights: weights)
            for (i, k) in bootstrapPairs.enumerated() { replicates[k] = reps[i] }
            parameters["bootstrap"] = bootstrap.description + "; rows of the clip-vector matrices resampled"
        }
        var records: [MetricRecord] = []
        for k in pairList.indices {
            let fa = a, fb = b ?? a
            var r = MetricRecord(metric: metricName, run: fa.metadata.run, file: fa.path, probeSet: fa.metadata.probeSet,
                                 step: fa.metadata.step, depth: labels[k].0, runB: fb.metadata.run, depthB: labels[k].1)
            r.measure { try values[k].get() }
            if let bootstrap, let reps = replicates[k] { r.setBootstrap(reps, clips: rows, clipSet: clipSet, bootstrap: bootstrap) }
            records.append(r)
        }
        var conventions = [metricName: CKAAnalysis.conventions[metricName] ?? "",
                           "pooling_\(pooling.rawValue)": CKAAnalysis.conventions["pooling_\(pooling.rawValue)"]!]
        if kernel == .rbf { conventions["rbf_bandwidth"] = bandwidth.description }
        return MetricReport(command: "cka", parameters: parameters, conventions: conventions,
                            inputs: ([a] + (b.map { [$0] } ?? [])).map(InputDescription.init), records: records, warnings: warnings)
    }

    /// A readable table: a matrix for all-pairs and cross-file comparisons, a list for consecutive pairs.
    public static func table(_ report: MetricReport) -> String {
        let recs = report.records
        var out = "\(report.records.first?.metric ?? "cka")   pooling \(report.parameters["pooling"] ?? "")   rows \(report.parameters["rows"] ?? "")\n"
        let rowsA = Array(Set(recs.compactMap(\.depth))).sorted()
        let colsB = Array(Set(recs.compactMap(\.depthB))).sorted()
        let pairsMode = report.parameters["pairs"] ?? ""
        if pairsMode == "consecutive" || pairsMode == "matching" {
            var t = TextTable(header: ["depth", "depth", "CKA"])
            for r in recs { t.rows.append(["\(r.depth!)", "\(r.depthB!)", cell(r)]) }
            out += t.render(leftColumns: 0)
        } else {
            let runA = recs.first?.run ?? "", runB = recs.first?.runB ?? ""
            let symmetric = runA == runB && report.inputs.count == 1
            var t = TextTable(header: ["\(runA) \\ \(runB)"] + colsB.map { "\($0)" })
            for da in (symmetric ? Array(Set(rowsA + colsB)).sorted() : rowsA) {
                var row = ["\(da)"]
                for db in (symmetric ? Array(Set(rowsA + colsB)).sorted() : colsB) {
                    if symmetric && da == db { row.append("1"); continue }
                    let r = recs.first { ($0.depth == da && $0.depthB == db) || (symmetric && $0.depth == db && $0.depthB == da) }
                    row.append(r.map { cell($0) } ?? "")
                }
                t.rows.append(row)
            }
            if symmetric { t.header = ["depth"] + Array(Set(rowsA + colsB)).sorted().map { "\($0)" } }
            out += t.render()
        }
        for r in recs where r.undefined != nil {
            out += "  n/a at depth \(r.depth!) vs \(r.depthB!): \(r.undefined!)\n"
        }
        for w in report.warnings { out += "warning: \(w)\n" }
        return out
    }
}
