import ActivationStore
import Collective
import Foundation
import LinearAlgebra
import RepresentationMetrics

/// `bwanalyze tokens`: within-clip patch similarity per depth and token shift between consecutive depths.
public struct TokenAnalysis {
    public var depthSelection: DepthSelection = .blocks
    public var maxBatchBytes = 64 << 20
    /// When set, patch similarity gets a bootstrap interval over clips (resampling the per-clip values).
    public var bootstrap: Bootstrap? = nil
    /// The job this analysis is part of: each rank streams its share of the clips; the sums and counts
    /// are added over ranks, the per-clip values (for the bootstrap) gathered in clip order.
    public var communicator: any Communicator = SingleProcess()

    public init() {}

    public static let conventions = MetricReport.conventions(MetricFamily.patchSimilarity.metrics + MetricFamily.tokenShift.metrics)

    public func run(_ f: ActivationFile, progress: ((Int, Int) -> Void)? = nil) throws -> MetricReport {
        let depths = try depthSelection.depths(in: f)
        return try report(f, depths: depths, try measure(f, depths: depths, keepingClipVectors: false, progress: progress))
    }

    /// `run`, also returning the file carrying the clip vectors of the selected depths
    /// (`ActivationFile.sharingClipVectors`), pooled in the same pass over the tokens, so the analyses of
    /// clip vectors that follow need not read the tokens again. On several ranks the clip vectors are
    /// not collected and the file is returned as it is.
    public func runSharingClipVectors(_ f: ActivationFile, progress: ((Int, Int) -> Void)? = nil) throws -> (report: MetricReport, file: ActivationFile) {
        let depths = try depthSelection.depths(in: f)
        let measured = try measure(f, depths: depths, keepingClipVectors: true, progress: progress)
        let shared = measured.clipVectors.isEmpty ? f : f.sharingClipVectors(Dictionary(zip(depths, measured.clipVectors), uniquingKeysWith: { a, _ in a }))
        return (try report(f, depths: depths, measured), shared)
    }

    /// The accumulated sums of every selected depth (patch similarity) and consecutive pair (token shift),
    /// the first error of each in clip order, and, when asked for on one process, the clip vectors.
    struct Measured {
        var patch: [PatchSimilarityAccumulator]
        var shifts: [TokenShiftAccumulator]
        var patchErrors: [String?]
        var shiftErrors: [String?]
        /// Per depth, every clip's patch similarity in clip order (for the bootstrap), gathered over ranks.
        var clipValues: [[Double]]
        var clipVectors: [[Double]] = []
    }

    func measure(_ f: ActivationFile, depths: [Int], keepingClipVectors: Bool, progress: ((Int, Int) -> Void)?) throws -> Measured {
        if communicator.size == 1 {
            var pass = TokenPass(file: f, depths: depths, keepsClipValues: bootstrap != nil, keepsClipVectors: keepingClipVectors)
            pass.slabBytes = TokenPass.slabBytes(budget: maxBatchBytes)
            return try pass.run(progress: progress)
        }
        let comm = communicator
        var stream = DepthStream(sources: [.init(file: f, depths: depths)], pooling: .tokens, maxBatchBytes: maxBatchBytes)
        stream.clips = comm.share(of: f.clipCount)
        let t = f.tokenCount, d = f.featureCount
        var patch = depths.map { _ in PatchSimilarityAccumulator(keepsClipValues: bootstrap != nil) }
        var shifts = depths.dropLast().map { _ in TokenShiftAccumulator() }
        var patchErrors = [String?](repeating: nil, count: depths.count)
        var shiftErrors = [String?](repeating: nil, count: max(0, depths.count - 1))
        var clipValues: [[Double]] = depths.map { _ in [] }
        try comm.jointly { try stream.forEach(progress: progress) { r, batch in
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
        } }
        patchErrors = try comm.firstMessage(patchErrors)
        shiftErrors = try comm.firstMessage(shiftErrors)
        for i in patch.indices {
            patch[i].combineSums(comm.sumOverRanks)
            if bootstrap != nil { clipValues[i] = comm.allGather(patch[i].clipValues) }
        }
        for i in shifts.indices { shifts[i].combineSums(comm.sumOverRanks) }
        return Measured(patch: patch, shifts: shifts, patchErrors: patchErrors, shiftErrors: shiftErrors, clipValues: clipValues)
    }

    func report(_ f: ActivationFile, depths: [Int], _ m: Measured) throws -> MetricReport {
        let (patch, shifts, patchErrors, shiftErrors) = (m.patch, m.shifts, m.patchErrors, m.shiftErrors)
        let t = f.tokenCount
        var records: [MetricRecord] = []
        var warnings: [String] = []
        let base = MetricRecord(metric: "", run: f.metadata.run, file: f.path, probeSet: f.metadata.probeSet, step: f.metadata.step)
        let weights = try bootstrap.map { try $0.weights(for: f) }
        for (i, depth) in depths.enumerated() {
            var r = base
            r.metric = Metric.patchSimilarity.name
            r.depth = depth
            if let e = patchErrors[i] { r.undefined = e } else {
                r.measure { try patch[i].value() }
                let values = communicator.size > 1 ? m.clipValues[i] : patch[i].clipValues
                if let bootstrap, let weights, values.count == f.clipCount {
                    let v = Matrix(rows: 1, cols: f.clipCount, storage: values)
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
            for (metric, pick) in [(Metric.tokenShiftCosine, \TokenShift.cosineDistance), (.tokenShiftRelative, \TokenShift.relativeChange)] {
                var r = base
                r.metric = metric.name
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
        return MetricReport(command: MetricFamily.patchSimilarity.command, parameters: ["depths": depths.map(String.init).joined(separator: ","),
                                                             "tokens_per_clip": "\(t)", "clips": "\(f.clipCount)",
                                                             "precision": "float64 accumulation"].merging(bootstrap.map { ["bootstrap": $0.description] } ?? [:]) { a, _ in a },
                            conventions: TokenAnalysis.conventions, inputs: [InputDescription(f)], records: records, warnings: warnings)
    }

    public static func table(_ report: MetricReport) -> String {
        var t = TextTable(header: ["depth", "patch similarity", "-> depth", "1 - cos", "rel. change"])
        let patch = report.records.filter { $0.metric == Metric.patchSimilarity.name }
        for p in patch {
            let cos = report.records.first { $0.metric == Metric.tokenShiftCosine.name && $0.depth == p.depth }
            let rel = report.records.first { $0.metric == Metric.tokenShiftRelative.name && $0.depth == p.depth }
            t.rows.append(["\(p.depth!)", cell(p), cos.map { "\($0.depthB!)" } ?? "", cos.map { cell($0) } ?? "", rel.map { cell($0) } ?? ""])
        }
        var out = t.render(leftColumns: 0)
        for r in report.records where r.undefined != nil { out += "  n/a \(r.metric) at depth \(r.depth!): \(r.undefined!)\n" }
        for w in report.warnings { out += "warning: \(w)\n" }
        return out
    }
}
