import ActivationStore
import Collective
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
    /// The job this analysis is part of: each rank streams its share of the clips, the covariance sums
    /// are added over ranks and the rows kept for the pairwise statistics gathered in row order.
    public var communicator: any Communicator = SingleProcess()

    public init() {}

    /// The metrics of one depth, in output order: the covariance spectrum, then the pairwise geometry.
    public static let metrics: [Metric] = MetricFamily.spectrum.metrics + MetricFamily.pairwiseGeometry.metrics

    public func run(_ f: ActivationFile, progress: ((Int, Int) -> Void)? = nil) throws -> MetricReport {
        let depths = try depthSelection.depths(in: f)
        let comm = communicator
        var stream = DepthStream(sources: [.init(file: f, depths: depths)], pooling: pooling, maxBatchBytes: maxBatchBytes)
        if comm.size > 1 { stream.clips = comm.share(of: f.clipCount) }
        let rowsPerClip = pooling == .tokens ? f.tokenCount : 1
        let n = f.clipCount * rowsPerClip, d = f.featureCount
        // Ranks shift by the same reference row (one process's: the first row of clip 0) so their sums add.
        let references = comm.size > 1 ? try comm.jointly { try referenceRows(stream.sources, pooling: pooling) } : nil
        var accs = depths.indices.map { i in
            references.map { CovarianceAccumulator(dimension: d, reference: $0[i]) } ?? CovarianceAccumulator(dimension: d)
        }
        let keep = PairwiseStatistics.sampleIndices(count: n, keep: pairwiseRows, seed: 0)
        let keepSet = keep.count == n ? nil : Set(keep)
        var kept: [[Double]] = depths.map { _ in [] }
        try comm.jointly { try stream.forEach(progress: progress) { r, batch in
            for i in depths.indices {
                try accs[i].add(batch[i])
                let first = r.lowerBound * rowsPerClip
                if let keepSet {
                    for row in 0..<batch[i].rows where keepSet.contains(first + row) { kept[i] += batch[i].row(row) }
                } else {
                    kept[i] += batch[i].storage
                }
            }
        } }
        for i in depths.indices {
            accs[i].combineSums(comm.sumOverRanks)
            kept[i] = comm.allGather(kept[i])
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
            func add(_ metric: Metric, _ body: () throws -> Double) {
                var r = base
                r.metric = metric.name
                r.depth = depth
                r.measure(body)
                records.append(r)
            }
            add(.effectiveRank) { try summary.get().effectiveRank }
            add(.participationRatio) { try summary.get().participationRatio }
            add(.isotropy) { try summary.get().isotropy }
            add(.k90) { Double(try summary.get().k90) }
            add(.conditionNumber) {
                let s = try summary.get()
                guard let c = s.conditionNumber else { throw MetricUndefined(s.conditionNumberUndefined ?? "undefined") }
                return c
            }
            add(.rankMe) {
                guard let v = try summary.get().rankMe else { throw MetricUndefined("RankMe not computed") }
                return v
            }
            add(.uniformity) { try pairwise.get().uniformity }
            add(.meanNorm) { try pairwise.get().meanNorm }
            add(.stdNorm) { try pairwise.get().stdNorm }
            add(.meanCosine) { try pairwise.get().meanCosine }
            add(.stdCosine) { try pairwise.get().stdCosine }
            add(.meanDistance) { try pairwise.get().meanDistance }
            add(.stdDistance) { try pairwise.get().stdDistance }
        }
        let conventions = MetricReport.conventions(SpectrumAnalysis.metrics)
        return MetricReport(command: MetricFamily.spectrum.command,
                            parameters: ["pooling": pooling.rawValue, "rows": "\(n)", "features": "\(d)",
                                         "pairwise_rows": "\(keep.count)", "pairwise_sampled": "\(keep.count < n)",
                                         "method": "eigenvalues of the DxD covariance (dsyevd) from streamed float64 sums",
                                         "precision": "float64 accumulation"],
                            conventions: conventions, inputs: [InputDescription(f)], records: records, warnings: warnings)
    }

    public static func table(_ report: MetricReport) -> String {
        let cols: [Metric] = [.effectiveRank, .participationRatio, .isotropy, .k90, .conditionNumber, .rankMe, .uniformity, .meanCosine]
        var t = TextTable(header: ["depth", "eff. rank", "PR", Metric.isotropy.name, Metric.k90.name, "cond.", "RankMe", Metric.uniformity.name, "mean cos"])
        let depths = Array(Set(report.records.compactMap(\.depth))).sorted()
        for d in depths {
            var row = ["\(d)"]
            for c in cols {
                guard let r = report.records.first(where: { $0.metric == c.name && $0.depth == d }) else { row.append(""); continue }
                if c == .k90, let v = r.value { row.append("\(Int(v))") } else if c == .conditionNumber, let v = r.value {
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
            if r.metric == Metric.conditionNumber.name || !seen.contains("\(r.depth!)") { out += "\(line) (\(r.metric))\n" }
            seen.insert("\(r.depth!)")
        }
        for w in report.warnings { out += "warning: \(w)\n" }
        return out
    }
}
