import ActivationStore
import Collective
import Foundation
import LinearAlgebra
import RepresentationMetrics

/// `bwanalyze attention`: mean attention distance (spatial, temporal) and entropy per layer and head.
public struct AttentionAnalysis {
    /// Layers to analyse; nil means every layer that stores attention.
    public var layers: [Int]? = nil
    public var clipsPerBatch = 64
    /// The job this analysis is part of: each rank reads its share of the clips with attention, and the
    /// per-head sums are added over ranks.
    public var communicator: any Communicator = SingleProcess()

    public init() {}

    public static let conventions = MetricReport.conventions(MetricFamily.attention.metrics)

    public func run(_ f: ActivationFile, progress: ((Int, Int) -> Void)? = nil) throws -> MetricReport {
        let stored = f.attentionShapes.keys.sorted()
        guard !stored.isEmpty else {
            throw AnalysisError("\(f.path): the file holds no attention (no /layers/LL/attention datasets); dump attention to use this command")
        }
        let chosen = layers ?? stored
        if let missing = chosen.first(where: { f.attentionShapes[$0] == nil }) {
            throw AnalysisError("\(f.path): layer \(missing) stores no attention; layers with attention: \(stored.map(String.init).joined(separator: ", "))")
        }
        guard let positions = try f.positions() else {
            let why = f.warnings.first { $0.object == ActivationPaths.positions }?.message ?? "missing"
            throw AnalysisError("\(f.path): /positions: \(why); attention distances need token centres [T, 3]")
        }
        var records: [MetricRecord] = []
        var uniform: [String: String] = [:]
        let base = MetricRecord(metric: "", run: f.metadata.run, file: f.path, probeSet: f.metadata.probeSet, step: f.metadata.step)
        for (li, layer) in chosen.enumerated() {
            let shape = f.attentionShapes[layer]!
            var acc: AttentionDistanceAccumulator
            do { acc = try AttentionDistanceAccumulator(positions: positions, tokens: f.tokenCount) } catch {
                throw AnalysisError("\(f.path): /positions: \(error)")
            }
            var failure: String? = nil
            let share = communicator.share(of: shape.clips)
            try communicator.jointly {
                for start in stride(from: share.lowerBound, to: share.upperBound, by: clipsPerBatch) {
                    let r = start..<min(start + clipsPerBatch, share.upperBound)
                    do {
                        try acc.add(attention: try f.attention(depth: layer, clips: r), clips: r.count, heads: shape.heads)
                    } catch let e as MetricUndefined {
                        failure = "clips \(r.lowerBound)..<\(r.upperBound): \(e.reason)"
                        break
                    }
                }
            }
            if communicator.size > 1 {
                failure = try communicator.firstMessage([failure])[0]
                try acc.combineSums(heads: shape.heads, communicator.sumOverRanks)
            }
            progress?(li + 1, chosen.count)
            let result = Result { () throws -> [AttentionDistance] in
                if let failure { throw MetricUndefined(failure) }
                return try acc.result()
            }
            for h in 0..<shape.heads {
                for (metric, pick) in [(Metric.attentionDistanceSpatial, \AttentionDistance.spatialPixels),
                                       (.attentionDistanceTemporal, \AttentionDistance.temporalFrames),
                                       (.attentionEntropy, \AttentionDistance.entropy)] {
                    var r = base
                    r.metric = metric.name
                    r.depth = layer
                    r.head = h
                    r.measure { try result.get()[h][keyPath: pick] }
                    records.append(r)
                }
            }
            if let first = try? result.get().first {
                uniform = ["uniform_spatial_pixels": String(format: "%.4f", first.uniformSpatialPixels),
                           "uniform_temporal_frames": String(format: "%.4f", first.uniformTemporalFrames),
                           "uniform_entropy": String(format: "%.4f", first.uniformEntropy)]
            }
        }
        var parameters = ["layers": chosen.map(String.init).joined(separator: ","),
                          "clips_with_attention": "\(f.attentionShapes[chosen[0]]!.clips)"]
        parameters.merge(uniform) { $1 }
        return MetricReport(command: MetricFamily.attention.command, parameters: parameters, conventions: AttentionAnalysis.conventions,
                            inputs: [InputDescription(f)], records: records)
    }

    public static func table(_ report: MetricReport) -> String {
        var t = TextTable(header: ["layer", "head", "spatial (px)", "temporal (frames)", "entropy (nats)"])
        for r in report.records where r.metric == Metric.attentionDistanceSpatial.name {
            let tmp = report.records.first { $0.metric == Metric.attentionDistanceTemporal.name && $0.depth == r.depth && $0.head == r.head }!
            let ent = report.records.first { $0.metric == Metric.attentionEntropy.name && $0.depth == r.depth && $0.head == r.head }!
            t.rows.append(["\(r.depth!)", "\(r.head!)", cell(r, digits: 3), cell(tmp, digits: 3), cell(ent, digits: 3)])
        }
        var out = t.render(leftColumns: 0)
        if let s = report.parameters["uniform_spatial_pixels"] {
            out += "uniform attention would give \(s) px, \(report.parameters["uniform_temporal_frames"]!) frames, entropy \(report.parameters["uniform_entropy"]!)\n"
        }
        for r in report.records where r.undefined != nil { out += "  n/a \(r.metric) layer \(r.depth!) head \(r.head!): \(r.undefined!)\n" }
        return out
    }
}
