import ActivationStore
import Collective
import Foundation
import LinearAlgebra
import RepresentationMetrics

/// `bwanalyze occdrop`: the paper's OccDrop = (acc_all − acc_one) / acc_all (`OccDrop.evaluate`).
///
/// acc_all is the cross-validated probe accuracy on the full clips. acc_one uses the same folds: with
/// the `transfer` protocol (default) the probe trained on the full clips of each training fold is
/// scored on the one-patch versions of the test fold's clips; with `retrain` the probe is trained and
/// scored on the one-patch clips.
public struct OccDropAnalysis {
    public var depthSelection: DepthSelection = .blocks
    public var targets: [String]? = nil
    public var options = ProbeOptions()
    public var protocolKind: OccDropProtocol = .transfer
    public var maxBatchBytes = 64 << 20
    /// The job this analysis is part of: clip vectors pooled by share and gathered, (depth, target)
    /// evaluations spread over the ranks.
    public var communicator: any Communicator = SingleProcess()

    public init() {}

    /// The `conventions` of a report: OccDrop's convention and the protocol used.
    public static func conventions(_ protocolKind: OccDropProtocol) -> [String: String] {
        [Metric.occDrop.name: Metric.occDrop.convention + "; protocol '\(protocolKind.rawValue)': "
            + (protocolKind == .transfer ? "probe trained on full clips, scored on the one-patch clips of the test fold" : "probe trained and scored on one-patch clips")]
    }

    public func run(full: ActivationFile, onePatch unaligned: ActivationFile, progress: ((Int, Int) -> Void)? = nil) throws -> MetricReport {
        guard full.featureCount == unaligned.featureCount, full.layerCount == unaligned.layerCount else {
            throw AnalysisError("\(full.path) and \(unaligned.path) must come from the same model (L, D: \(full.layerCount), \(full.featureCount) vs \(unaligned.layerCount), \(unaligned.featureCount))")
        }
        // The occluded set is a different probe set by name (`<set>-onepatch`) but must hold the same clips.
        let onePatch = try alignClips(full, unaligned, allowDifferentProbeSets: true)
        let depths = try depthSelection.depths(in: full)
        let chosen = targets ?? full.targets
        guard !chosen.isEmpty else { throw AnalysisError("\(full.path): the file has no labels") }
        let labels = try chosen.map { try full.labels($0) }
        let fullVectors = try collectClipVectors(full, depths: depths, maxBatchBytes: maxBatchBytes, communicator: communicator)
        let oneVectors = try collectClipVectors(onePatch, depths: depths, maxBatchBytes: maxBatchBytes, communicator: communicator)
        let jobs = depths.indices.flatMap { i in chosen.indices.map { (i, $0) } }
        let (options, protocolKind) = (self.options, self.protocolKind)
        var done = 0
        let evaluated = try communicator.distributedMap(jobs.count) { mine in
            mine.map { j in
                defer { done += 1; progress?(done, mine.count) }
                return Result {
                    try OccDrop.evaluate(full: fullVectors[jobs[j].0], onePatch: oneVectors[jobs[j].0], labels: labels[jobs[j].1],
                                         protocol: protocolKind, options: options)
                }
            }
        }
        var records: [MetricRecord] = []
        let base = MetricRecord(metric: "", run: full.metadata.run, file: full.path, probeSet: full.metadata.probeSet, step: full.metadata.step)
        for (i, depth) in depths.enumerated() {
            for (t, target) in chosen.enumerated() {
                let result = evaluated[i * chosen.count + t]
                for (metric, body) in [(Metric.occDrop, { try result.get().occDrop() }),
                                       (.probeAccuracyFull, { try result.get().accuracyFull }),
                                       (.probeAccuracyOnePatch, { try result.get().accuracyOnePatch })] {
                    var r = base
                    r.metric = metric.name
                    r.depth = depth
                    r.target = target
                    r.measure(body)
                    records.append(r)
                }
            }
        }
        return MetricReport(command: MetricFamily.occDrop.command,
                            parameters: ["protocol": protocolKind.rawValue, "folds": "\(options.folds)", "c": "\(options.c)", "seed": "\(options.seed)"]
                                .merging(options.stoppingParameters) { a, _ in a },
                            conventions: OccDropAnalysis.conventions(protocolKind),
                            inputs: [InputDescription(full), InputDescription(onePatch)], records: records)
    }

    public static func table(_ report: MetricReport) -> String {
        var t = TextTable(header: ["depth", "target", "acc (full)", "acc (one patch)", "OccDrop"])
        for r in report.records where r.metric == Metric.occDrop.name {
            let a = report.records.first { $0.metric == Metric.probeAccuracyFull.name && $0.depth == r.depth && $0.target == r.target }!
            let o = report.records.first { $0.metric == Metric.probeAccuracyOnePatch.name && $0.depth == r.depth && $0.target == r.target }!
            t.rows.append(["\(r.depth!)", r.target!, cell(a, digits: 3), cell(o, digits: 3), cell(r, digits: 3)])
        }
        var out = t.render(leftColumns: 2)
        for r in report.records where r.undefined != nil && r.metric == Metric.occDrop.name { out += "  n/a at depth \(r.depth!), \(r.target!): \(r.undefined!)\n" }
        return out
    }
}
