import ActivationStore
import Collective
import Foundation
import LinearAlgebra
import RepresentationMetrics

/// `bwanalyze retrieval`: cosine retrieval of clip vectors per depth and target.
public struct RetrievalAnalysis {
    public var depthSelection: DepthSelection = .blocks
    public var targets: [String]? = nil
    public var ks = [1, 5, 10]
    public var maxBatchBytes = 64 << 20
    /// When set, mAP gets a bootstrap interval over clips (resampling the per-query average precisions).
    public var bootstrap: Bootstrap? = nil
    /// The job this analysis is part of: each rank pools its share of the clips, the clip vectors are
    /// gathered, and the depths' rankings (all targets at once) are spread over the ranks.
    public var communicator: any Communicator = SingleProcess()

    public init() {}

    public static let conventions = MetricReport.conventions(MetricFamily.retrieval.metrics)

    public func run(_ f: ActivationFile, progress: ((Int, Int) -> Void)? = nil) throws -> MetricReport {
        let depths = try depthSelection.depths(in: f)
        let chosen = targets ?? f.targets
        guard !chosen.isEmpty else { throw AnalysisError("\(f.path): the file has no labels; retrieval needs /labels/<target>") }
        let labels = try chosen.map { try f.labels($0) }
        let vectors = try collectClipVectors(f, depths: depths, maxBatchBytes: maxBatchBytes, communicator: communicator, progress: progress)
        var records: [MetricRecord] = []
        let base = MetricRecord(metric: "", run: f.metadata.run, file: f.path, probeSet: f.metadata.probeSet, step: f.metadata.step)
        let weights = try bootstrap.map { try $0.weights(for: f) }
        // One ranking per query and depth for every target; the depths spread over the ranks and each
        // rank's cores.
        let ks = self.ks
        let perDepth = try communicator.distributedMap(results: depths.count) { mine in
            Parallel.map(mine.count) { k -> [Result<RetrievalResult, Error>] in
                do { return try Retrieval.evaluate(vectors[mine[k]], labelSets: labels, ks: ks) } catch { return labels.map { _ in .failure(error) } }
            }
        }
        for (i, depth) in depths.enumerated() {
            for (t, target) in chosen.enumerated() {
                let result = perDepth[i][t]
                for (j, k) in ks.enumerated() {
                    var r = base
                    r.metric = Metric.retrievalTop(k)
                    r.depth = depth
                    r.target = target
                    r.measure { try result.get().hitRates[j] }
                    records.append(r)
                }
                var r = base
                r.metric = Metric.retrievalMAP.name
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
        // Chance (a random ranking), exact from the labels: once per target, at the last depth.
        if let last = depths.last {
            for (t, target) in chosen.enumerated() {
                var r = base
                r.metric = Metric.retrievalMAPChance.name
                r.depth = last
                r.target = target
                r.measure { try Retrieval.chanceMeanAveragePrecision(labels: labels[t]) }
                records.append(r)
            }
        }
        return MetricReport(command: MetricFamily.retrieval.command, parameters: ["ks": ks.map(String.init).joined(separator: ","), "clips": "\(f.clipCount)",
                                                                "similarity": "cosine of clip vectors (mean over tokens)"]
                                .merging(bootstrap.map { ["bootstrap": $0.description + "; mAP intervals resample the queries' average precisions (the gallery is not resampled)"] } ?? [:]) { a, _ in a },
                            conventions: RetrievalAnalysis.conventions, inputs: [InputDescription(f)], records: records)
    }

    public static func table(_ report: MetricReport) -> String {
        let ks = (report.parameters["ks"] ?? "").split(separator: ",").compactMap { Int($0) }
        var t = TextTable(header: ["depth", "target"] + ks.map { "top-\($0)" } + ["mAP"])
        for r in report.records where r.metric == Metric.retrievalMAP.name {
            var row = ["\(r.depth!)", r.target ?? ""]
            for k in ks {
                let h = report.records.first { $0.metric == Metric.retrievalTop(k) && $0.depth == r.depth && $0.target == r.target }
                row.append(h.map { cell($0) } ?? "")
            }
            row.append(cell(r))
            t.rows.append(row)
        }
        var out = t.render(leftColumns: 2)
        for r in report.records where r.undefined != nil && r.metric == Metric.retrievalMAP.name {
            out += "  n/a at depth \(r.depth!), target \(r.target ?? ""): \(r.undefined!)\n"
        }
        return out
    }
}
