import ActivationStore
import Foundation
import LinearAlgebra
import RepresentationMetrics

/// `bwanalyze tokens`: within-clip patch similarity per depth and token shift between consecutive depths.
public struct TokenAnalysis {
    public var depthSelection: DepthSelection = .blocks
    public var maxBatchBytes = 64 << 20
    /// When set, patch similarity gets a bootstrap interval over clips (resampling the per-clip values).
    public var bootstrap: Bootstrap? = nil

    public init() {}

    public static let conventions: [String: String] = [
        "patch_similarity": "per clip: tokens layer-normalised over features (no affine, eps 1e-12) then L2-normalised; mean cosine over ordered token pairs i != j; mean over clips (paper's eval code)",
        "token_shift_cosine": "mean over tokens and clips of 1 - cos(h_l, h_next) between consecutive selected depths (block influence, ShortGPT)",
        "token_shift_relative": "mean over tokens and clips of ||h_next - h_l|| / ||h_l||; tokens with zero norm at either depth are excluded and counted",
    ]

    public func run(_ f: ActivationFile, progress: ((Int, Int) -> Void)? = nil) throws -> MetricReport {
        let depths = try depthSelection.depths(in: f)
        let stream = DepthStream(sources: [.init(file: f, depths: depths)], pooling: .tokens, maxBatchBytes: maxBatchBytes)
        let t = f.tokenCount, d = f.featureCount
        var patch = depths.map { _ in PatchSimilarityAccumulator(keepsClipValues: bootstrap != nil) }
        var shifts = depths.dropLast().map { _ in TokenShiftAccumulator() }
        var patchErrors = [String?](repeating: nil, count: depths.count)
        var shiftErrors = [String?](repeating: nil, count: max(0, depths.count - 1))
        try stream.forEach(progress: progress) { r, batch in
            for i in depths.indices where patchErrors[i] == nil {
                do { try patch[i].add(batch[i].storage, clips: r.count, tokens: t, features: d) } catch {
                    patchErrors[i] = "in clips \(r.lowerBound)..<\(r.upperBound): \(error)"
                }
            }
            for i in shifts.indices where shiftErrors[i] == nil {
                do { try shifts[i].add(from: batch[i].storage, to: batch[i + 1].storage, clips: r.count, tokens: t, features: d) } catch {
                    shiftErrors[i] = "in clips \(r.lowerBound)..<\(r.upperBound): \(error)"
                }
            }
        }
        var records: [MetricRecord] = []
        var warnings: [String] = []
        let base = MetricRecord(metric: "", run: f.metadata.run, file: f.path, probeSet: f.metadata.probeSet, step: f.metadata.step)
        let weights = try bootstrap.map { try $0.weights(for: f) }
        for (i, depth) in depths.enumerated() {
            var r = base
            r.metric = "patch_similarity"
            r.depth = depth
            if let e = patchErrors[i] { r.undefined = e } else {
                r.measure { try patch[i].value() }
                if let bootstrap, let weights, patch[i].clipValues.count == f.clipCount {
                    let v = Matrix(rows: 1, cols: f.clipCount, storage: patch[i].clipValues)
                    let reps = Bootstrap.replicateMeans(v, weights: weights.weights)
                    r.setBootstrap(reps.storage.map { Optional($0) }, clips: f.clipCount, clipSet: weights.clipSet, bootstrap: bootstrap)
                }
                if patch[i].degenerateTokens > 0 {
                    warnings.append("depth \(depth): \(patch[i].degenerateTokens) constant tokens count as zero vectors in patch similarity")
                }
            }
            records.append(r)
        }
        for i in shifts.indices {
            let result = Result { () throws -> TokenShift in
                if let e = shiftErrors[i] { throw MetricUndefined(e) }
                return try shifts[i].result()
            }
            for (metric, pick) in [("token_shift_cosine", \TokenShift.cosineDistance), ("token_shift_relative", \TokenShift.relativeChange)] {
                var r = base
                r.metric = metric
                r.depth = depths[i]
                r.runB = f.metadata.run
                r.depthB = depths[i + 1]
                r.measure { try result.get()[keyPath: pick] }
                records.append(r)
            }
            if let s = try? result.get(), s.zeroNormTokens > 0 {
                warnings.append("depths \(depths[i])->\(depths[i + 1]): \(s.zeroNormTokens) zero-norm tokens excluded from token shift")
            }
        }
        return MetricReport(command: "tokens", parameters: ["depths": depths.map(String.init).joined(separator: ","),
                                                             "tokens_per_clip": "\(t)", "clips": "\(f.clipCount)",
                                                             "precision": "float64 accumulation"].merging(bootstrap.map { ["bootstrap": $0.description] } ?? [:]) { a, _ in a },
                            conventions: TokenAnalysis.conventions, inputs: [InputDescription(f)], records: records, warnings: warnings)
    }

    public static func table(_ report: MetricReport) -> String {
        var t = TextTable(header: ["depth", "patch similarity", "-> depth", "1 - cos", "rel. change"])
        let patch = report.records.filter { $0.metric == "patch_similarity" }
        for p in patch {
            let cos = report.records.first { $0.metric == "token_shift_cosine" && $0.depth == p.depth }
            let rel = report.records.first { $0.metric == "token_shift_relative" && $0.depth == p.depth }
            t.rows.append(["\(p.depth!)", cell(p), cos.map { "\($0.depthB!)" } ?? "", cos.map { cell($0) } ?? "", rel.map { cell($0) } ?? ""])
        }
        var out = t.render(leftColumns: 0)
        for r in report.records where r.undefined != nil { out += "  n/a \(r.metric) at depth \(r.depth!): \(r.undefined!)\n" }
        for w in report.warnings { out += "warning: \(w)\n" }
        return out
    }
}

/// `bwanalyze attention`: mean attention distance (spatial, temporal) and entropy per layer and head.
public struct AttentionAnalysis {
    /// Layers to analyse; nil means every layer that stores attention.
    public var layers: [Int]? = nil
    public var clipsPerBatch = 64

    public init() {}

    public static let conventions: [String: String] = [
        "attention_distance_spatial": "per layer and head: sum_k A[q,k] * d(q,k) averaged over queries and clips; d = Euclidean distance of token centres (row, col) in pixels (Dosovitskiy et al. 2021; Raghu et al. 2021)",
        "attention_distance_temporal": "as spatial, with d = |frame difference| of token centres in frames",
        "attention_entropy": "-sum_k A[q,k] log A[q,k] (natural log), averaged over queries and clips; uniform attention gives log T",
    ]

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
            for start in stride(from: 0, to: shape.clips, by: clipsPerBatch) {
                let r = start..<min(start + clipsPerBatch, shape.clips)
                do {
                    try acc.add(attention: try f.attention(depth: layer, clips: r), clips: r.count, heads: shape.heads)
                } catch let e as MetricUndefined {
                    failure = "clips \(r.lowerBound)..<\(r.upperBound): \(e.reason)"
                    break
                }
            }
            progress?(li + 1, chosen.count)
            let result = Result { () throws -> [AttentionDistance] in
                if let failure { throw MetricUndefined(failure) }
                return try acc.result()
            }
            for h in 0..<shape.heads {
                for (metric, pick) in [("attention_distance_spatial", \AttentionDistance.spatialPixels),
                                       ("attention_distance_temporal", \AttentionDistance.temporalFrames),
                                       ("attention_entropy", \AttentionDistance.entropy)] {
                    var r = base
                    r.metric = metric
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
        return MetricReport(command: "attention", parameters: parameters, conventions: AttentionAnalysis.conventions,
                            inputs: [InputDescription(f)], records: records)
    }

    public static func table(_ report: MetricReport) -> String {
        var t = TextTable(header: ["layer", "head", "spatial (px)", "temporal (frames)", "entropy (nats)"])
        for r in report.records where r.metric == "attention_distance_spatial" {
            let tmp = report.records.first { $0.metric == "attention_distance_temporal" && $0.depth == r.depth && $0.head == r.head }!
            let ent = report.records.first { $0.metric == "attention_entropy" && $0.depth == r.depth && $0.head == r.head }!
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
