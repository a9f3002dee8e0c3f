import ActivationStore
import Collective
import Foundation
import LinearAlgebra
import RepresentationMetrics

/// `bwanalyze similarity`: similarity measures beyond CKA (Procrustes, SVCCA, PWCCA, RSA, mutual k-NN)
/// between depths of one file, or between the depths of two files of the same clips, on clip vectors
/// (the mean over a clip's tokens), with an optional permutation test per pair.
public struct SimilarityAnalysis {
    public var depthSelection: DepthSelection = .blocks
    /// As `cka`: consecutive (default, one file), all, or matching (two files).
    public var pairs: CKAAnalysis.Pairs? = nil
    /// One file: exactly these (depth, depth) pairs instead of `pairs` (the report's checks).
    public var depthPairs: [(Int, Int)]? = nil
    public var measures: [Metric] = SimilarityAnalysis.defaultMeasures
    public var options = SimilarityOptions()
    /// When set, every pair and measure gets a permutation p-value (`SimilarityPermutationTest`).
    public var permutationTest: SimilarityPermutationTest? = nil
    public var allowDifferentProbeSets = false
    public var maxBatchBytes = 64 << 20
    /// Largest N for the measures that hold N×N matrices (RSA's RDM, CKA's Gram matrix).
    public var maxGramRows = 8192
    /// The job: each rank pools its share of the clips, the clip vectors are gathered, and the pairs are
    /// spread over the ranks.
    public var communicator: any Communicator = SingleProcess()

    public init() {}

    /// The measures `similarity` computes by default: every similarity metric.
    public static let defaultMeasures: [Metric] = MetricFamily.similarity.metrics
    /// The measures `--measure` accepts: the similarity family and biased linear CKA (whose value is
    /// the `cka` command's; here it can get a permutation test).
    public static let offeredMeasures: [Metric] = MetricFamily.similarity.metrics + [.ckaLinearBiased]

    /// The fits a measure needs.
    enum Fit: Hashable { case subspace, rdm, neighbours, gram }

    static func fit(of m: Metric) -> Fit {
        switch m {
        case .procrustesDistance, .procrustesAngle, .svcca, .pwcca: return .subspace
        case .rsa: return .rdm
        case .mutualKNN: return .neighbours
        default: return .gram
        }
    }

    /// One representation's prepared fits.
    final class Fitted: @unchecked Sendable {
        // Written once, before any pair reads it (each representation by one job).
        var subspace: Result<Similarity.Subspace, Error>?
        var rdm: Result<Similarity.RDM, Error>?
        var neighbours: Result<Similarity.Neighbours, Error>?
        var gram: Result<Similarity.CenteredGram, Error>?
    }

    /// One measure's value on one pair, with its permutation p-value when tested.
    struct PairValue: Codable { var value: Double; var p: Double? }

    /// The similarity statistic of measure `m` (its similarity form) between two fitted representations.
    static func statistic(_ m: Metric, _ a: Fitted, _ b: Fitted, _ perm: [Int]?, options o: SimilarityOptions) throws -> Double {
        switch m {
        case .procrustesDistance, .procrustesAngle:
            return try Similarity.procrustesSimilarity(a.subspace!.get(), b.subspace!.get(), alpha: o.alpha, permutation: perm)
        case .svcca: return try Similarity.svccaSimilarity(a.subspace!.get(), b.subspace!.get(), variance: o.svccaVariance, permutation: perm)
        case .pwcca: return try Similarity.pwccaSimilarity(a.subspace!.get(), b.subspace!.get(), permutation: perm)
        case .rsa: return try Similarity.rsaSimilarity(a.rdm!.get(), b.rdm!.get(), comparison: o.rdmComparison, permutation: perm)
        case .mutualKNN: return try Similarity.mutualKNNSimilarity(a.neighbours!.get(), b.neighbours!.get(), permutation: perm)
        default: return try Similarity.ckaSimilarity(a.gram!.get(), b.gram!.get(), permutation: perm)
        }
    }

    /// The reported value from the similarity statistic (Procrustes: its distance or angle).
    static func reported(_ m: Metric, _ s: Double) -> Double {
        switch m {
        case .procrustesDistance: return Similarity.procrustesDistance(similarity: s)
        case .procrustesAngle: return Similarity.procrustesAngle(similarity: s)
        default: return s
        }
    }

    static func prepare(_ x: Matrix<Double>, fits: Set<Fit>, into f: Fitted, options: SimilarityOptions, maxGramRows: Int) {
        if x.rows > maxGramRows && (fits.contains(.rdm) || fits.contains(.gram)) {
            let e = AnalysisError("RSA and CKA here hold \(x.rows)x\(x.rows) matrices; that is more than --max-gram-rows \(maxGramRows)")
            if fits.contains(.rdm) { f.rdm = .failure(e) }
            if fits.contains(.gram) { f.gram = .failure(e) }
        }
        if fits.contains(.subspace) { f.subspace = Result { try Similarity.subspace(x) } }
        if fits.contains(.rdm), f.rdm == nil { f.rdm = Result { try Similarity.rdm(x, distance: options.rdm, comparison: options.rdmComparison) } }
        if fits.contains(.neighbours) { f.neighbours = Result { try Similarity.neighbours(x, k: options.neighbours) } }
        if fits.contains(.gram), f.gram == nil { f.gram = Result { try Similarity.centeredGram(x) } }
    }

    public func run(_ a: ActivationFile, _ b: ActivationFile? = nil, progress: ((Int, Int) -> Void)? = nil) throws -> MetricReport {
        try options.validate()
        guard !measures.isEmpty else { throw AnalysisError("no measure chosen") }
        for m in measures where !SimilarityAnalysis.offeredMeasures.contains(m) {
            throw AnalysisError("\(m.name) is not a similarity measure; choose from \(SimilarityAnalysis.offeredMeasures.map(\.name).joined(separator: ", "))")
        }
        // The pairs, planned as `cka` plans them (clip alignment of B included).
        var planner = CKAAnalysis()
        planner.depthSelection = depthSelection
        planner.pairs = pairs
        planner.allowDifferentProbeSets = allowDifferentProbeSets
        var plan: CKAAnalysis.Plan
        if let depthPairs, b == nil {
            guard !depthPairs.isEmpty else { throw AnalysisError("no depth pairs given") }
            let depths = Array(Set(depthPairs.flatMap { [$0.0, $0.1] })).sorted()
            for d in depths where !a.depths.contains(d) {
                throw AnalysisError("\(a.path): no depth \(d)")
            }
            plan = CKAAnalysis.Plan(sources: [DepthStream.Source(file: a, depths: depths)], pairs: [], depths: [], mode: .all, b: nil)
            for (da, db) in depthPairs {
                plan.pairs.append(CKAPair(depths.firstIndex(of: da)!, depths.firstIndex(of: db)!))
                plan.depths.append((da, db))
            }
        } else {
            plan = try planner.plan(a, b)
        }
        let fits = Set(measures.map(SimilarityAnalysis.fit))
        let rows = a.clipCount
        let reps = plan.sources.flatMap { s in s.depths.map { (file: s.file, depth: $0) } }
        let fitted = reps.map { _ in Fitted() }
        let (measures, test, options, maxGramRows) = (self.measures, permutationTest, self.options, self.maxGramRows)
        let pairs = plan.pairs
        let used = Set(pairs.flatMap { [$0.a, $0.b] })
        var dims = reps.map { $0.file.featureCount }
        if communicator.size == 1 {
            // One process: each representation is fitted by the job that reads it, one per core, so the
            // reading and the decompositions overlap (`DepthStream.readEach`); b's rows follow a's clips.
            let chosen = reps.indices.filter { used.contains($0) }
            _ = try DepthStream.readEach(chosen.map { reps[$0] }, progress: progress) { j, x in
                SimilarityAnalysis.prepare(x, fits: fits, into: fitted[chosen[j]], options: options, maxGramRows: maxGramRows)
            }
        } else {
            // Several ranks: each pools its share of the clips, the clip vectors are gathered on every
            // rank, and each rank fits the representations its pairs need.
            var vectors: [Matrix<Double>] = []
            for s in plan.sources {
                vectors += try collectClipVectors(s.file, depths: s.depths, maxBatchBytes: maxBatchBytes, communicator: communicator, progress: progress)
            }
            dims = vectors.map(\.cols)
            let mine = Set(stride(from: communicator.rank, to: pairs.count, by: communicator.size).flatMap { [pairs[$0].a, pairs[$0].b] }).sorted()
            let shared = vectors
            _ = Parallel.map(mine.count) { i in
                SimilarityAnalysis.prepare(shared[mine[i]], fits: fits, into: fitted[mine[i]], options: options, maxGramRows: maxGramRows)
            }
        }
        // The pairs, spread over the ranks and, within a rank, one per core (single-threaded BLAS each);
        // a permutation test spreads its own permutations instead.
        let results = try communicator.distributedMap(results: pairs.count) { mine -> [[Result<PairValue, Error>]] in
            let compute = { @Sendable (k: Int) -> [Result<PairValue, Error>] in
                let p = pairs[k]
                let (fa, fb) = (fitted[p.a], fitted[p.b])
                // Procrustes distance and angle share one statistic and one test.
                var shared: Result<PairValue, Error>?
                return measures.map { m -> Result<PairValue, Error> in
                    let procrustes = m == .procrustesDistance || m == .procrustesAngle
                    let base: Result<PairValue, Error>
                    if procrustes, let done = shared {
                        base = done
                    } else {
                        base = Result {
                            if let test {
                                let r = try test.test(rows: rows) { perm in try SimilarityAnalysis.statistic(m, fa, fb, perm, options: options) }
                                return PairValue(value: r.observed, p: r.p)
                            }
                            return PairValue(value: try SimilarityAnalysis.statistic(m, fa, fb, nil, options: options), p: nil)
                        }
                        if procrustes { shared = base }
                    }
                    return base.map { PairValue(value: SimilarityAnalysis.reported(m, $0.value), p: $0.p) }
                }
            }
            return test == nil ? Parallel.map(mine.count) { compute(mine[$0]) } : mine.map(compute)
        }
        var parameters: [String: String] = [
            "measures": measures.map(\.name).joined(separator: ","), "pooling": Pooling.mean.rawValue,
            "pairs": depthPairs != nil && b == nil ? "given" : plan.mode.rawValue, "rows": "\(rows)", "precision": "float64",
            "rank_tolerance": "directions with squared singular value <= max(N, D) * eps * s_1^2 dropped",
        ]
        if fits.contains(.subspace) {
            parameters["alpha"] = "\(options.alpha)"
            if measures.contains(.svcca) { parameters["svcca_variance"] = "\(options.svccaVariance)" }
        }
        if fits.contains(.rdm) { parameters["rdm"] = options.rdm.rawValue; parameters["rdm_comparison"] = options.rdmComparison.rawValue }
        if fits.contains(.neighbours) { parameters["neighbours"] = "\(options.neighbours)" }
        if let test {
            parameters["permutations"] = "\(test.permutations)"
            parameters["permutation_seed"] = "\(test.seed)"
            parameters["p_value"] = "(b + 1) / (m + 1), b = permuted similarities >= the observed one (ties within 1e-12 relative count), same permutations for every pair"
        }
        var records: [MetricRecord] = []
        let fb = plan.b ?? a
        for k in plan.pairs.indices {
            for (j, m) in measures.enumerated() {
                var r = MetricRecord(metric: m.name, run: a.metadata.run, file: a.path, probeSet: a.metadata.probeSet,
                                     step: a.metadata.step, depth: plan.depths[k].0, runB: fb.metadata.run, depthB: plan.depths[k].1)
                r.measure { try results[k][j].get().value }
                if r.value != nil, let p = try? results[k][j].get().p {
                    r.pValue = p
                    r.permutations = test?.permutations
                }
                records.append(r)
            }
        }
        var warnings: [String] = []
        if fits.contains(.subspace), rows < 4 * (dims.max() ?? 0) {
            warnings.append("N = \(rows) clips is not well above D = \(dims.max() ?? 0): CCA-type measures (svcca, pwcca, procrustes with alpha < 1) tend to 1 when D approaches N")
        }
        var conventions = MetricReport.conventions(measures)
        conventions["pooling_mean"] = "rows are clip vectors: the mean over a clip's tokens"
        return MetricReport(command: MetricFamily.similarity.command, parameters: parameters, conventions: conventions,
                            inputs: ([a] + (b.map { [$0] } ?? [])).map(InputDescription.init), records: records, warnings: warnings)
    }

    /// A readable table: one row per pair, one column per measure (p-values in brackets).
    public static func table(_ report: MetricReport) -> String {
        let names = (report.parameters["measures"] ?? "").split(separator: ",").map(String.init)
        var out = "similarity   rows \(report.parameters["rows"] ?? "")   pairs \(report.parameters["pairs"] ?? "")\n"
        var t = TextTable(header: ["depth", "depth"] + names)
        var order: [String] = []
        var byPair: [String: [String: MetricRecord]] = [:]
        for r in report.records {
            let key = "\(r.depth ?? -1) \(r.depthB ?? -1)"
            if byPair[key] == nil { order.append(key) }
            byPair[key, default: [:]][r.metric] = r
        }
        for key in order {
            let recs = byPair[key]!
            let any = recs.values.first!
            t.rows.append(["\(any.depth!)", "\(any.depthB!)"] + names.map { n in
                guard let r = recs[n] else { return "" }
                guard let v = r.value else { return "n/a" }
                return String(format: "%.4f", v) + (r.pValue.map { String(format: " (p %.3g)", $0) } ?? "")
            })
        }
        out += t.render(leftColumns: 0)
        for r in report.records where r.undefined != nil {
            out += "  n/a \(r.metric) at depth \(r.depth!) vs \(r.depthB!): \(r.undefined!)\n"
        }
        for w in report.warnings { out += "warning: \(w)\n" }
        return out
    }
}
