import ActivationStore
import Foundation
import LinearAlgebra
import RepresentationMetrics

/// `bwanalyze bench`: times the analyses on one file and sets achieved GFLOP/s beside the machine's
/// measured dgemm rate. Figures only; nothing here is asserted by tests.
public struct Benchmark {
    public struct Row: Sendable {
        public var name: String
        public var seconds: Double
        public var bytesRead: Int
        /// Modelled floating-point operations (nil when the work is not dominated by products).
        public var flops: Double?
    }

    public init() {}

    /// Wall-clock seconds of `body`.
    public static func time(_ body: () throws -> Void) rethrows -> Double {
        try ContinuousClock().measure(body).seconds
    }

    /// Runs every analysis on `f` and returns the timings.
    public func run(_ f: ActivationFile, log: (String) -> Void) throws -> [Row] {
        let n = Double(f.clipCount), t = Double(f.tokenCount), d = Double(f.featureCount)
        let blocks = [0] + f.metadata.blockEnds
        let layerBytes = f.clipCount * f.tokenCount * f.featureCount * f.tokenTypes[0].byteCount
        var rows: [Row] = []
        func measure(_ name: String, depths: Int, flops: Double?, _ body: () throws -> Void) rethrows {
            log("  \(name) ...")
            let s = try Benchmark.time(body)
            rows.append(Row(name: name, seconds: s, bytesRead: depths * layerBytes, flops: flops))
        }
        // Token-level linear CKA over consecutive blocks: one syrk (n·D² flops) per depth and one gemm (2n·D²) per pair.
        let tokenRows = n * t
        try measure("cka --pool tokens (blocks, consecutive)", depths: blocks.count,
                    flops: Double(blocks.count) * tokenRows * d * d + Double(blocks.count - 1) * 2 * tokenRows * d * d) {
            var a = CKAAnalysis()
            a.pooling = .tokens
            _ = try a.run(f)
        }
        let layers = f.layerCount + 1
        try measure("cka --pool mean --depth layers --pairs all", depths: layers,
                    flops: Double(layers) * n * d * d + Double(layers * (layers - 1) / 2) * 2 * n * d * d) {
            var a = CKAAnalysis()
            a.depthSelection = .layers
            a.pairs = .all
            _ = try a.run(f)
        }
        try measure("cka --pool mean --estimator debiased", depths: blocks.count, flops: nil) {
            var a = CKAAnalysis()
            a.estimator = .debiased
            _ = try a.run(f)
        }
        try measure("spectrum --pool tokens (blocks)", depths: blocks.count, flops: Double(blocks.count) * tokenRows * d * d) {
            var a = SpectrumAnalysis()
            a.pooling = .tokens
            _ = try a.run(f)
        }
        try measure("tokens (blocks)", depths: blocks.count, flops: nil) { _ = try TokenAnalysis().run(f) }
        try measure("retrieval (blocks, every target)", depths: blocks.count,
                    flops: Double(blocks.count * max(1, f.targets.count)) * n * n * d) { _ = try RetrievalAnalysis().run(f) }
        try measure("probe (blocks, every target, 3-fold CV)", depths: blocks.count, flops: nil) { _ = try ProbeAnalysis().run(f) }
        if !f.attentionShapes.isEmpty {
            try measure("attention", depths: 0, flops: nil) { _ = try AttentionAnalysis().run(f) }
        }
        return rows
    }

    public static func table(_ rows: [Row], dgemm: Double) -> String {
        var t = TextTable(header: ["analysis", "seconds", "read GB/s", "GFLOP/s", "% of dgemm"])
        for r in rows {
            let gf = r.flops.map { $0 / r.seconds / 1e9 }
            t.rows.append([r.name, String(format: "%.2f", r.seconds),
                           r.bytesRead > 0 ? String(format: "%.2f", Double(r.bytesRead) / r.seconds / 1e9) : "",
                           gf.map { String(format: "%.1f", $0) } ?? "", gf.map { String(format: "%.0f%%", 100 * $0 / dgemm) } ?? ""])
        }
        return t.render()
    }
}
