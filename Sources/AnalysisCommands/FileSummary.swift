import ActivationStore
import Foundation

/// What `bwanalyze inspect` reports about one activation file.
public struct FileSummary: Codable, Sendable {
    public struct Target: Codable, Sendable {
        public var name: String
        public var classes: Int
        /// Clips per distinct class id, in ascending order of id.
        public var counts: [Int]
    }

    public var file: String
    public var fileBytes: Int
    public var run: String
    public var regime: String
    public var probeSet: String
    public var step: Int
    public var seed: Int
    public var blockEnds: [Int]
    public var layers: Int
    public var clips: Int
    public var tokens: Int
    public var features: Int
    public var tokenTypes: [String]
    public var chunkClips: Int?
    public var attentionLayers: [Int]
    public var attentionClips: Int?
    public var attentionHeads: Int?
    public var hasPositions: Bool
    public var trainingSteps: Int?
    public var targets: [Target]
    public var warnings: [String]
    /// True when the file has `/clip_ids` (absent from JSON otherwise).
    public var clipIDs: Bool?
    /// The files behind the virtual datasets of a shard index (absent from JSON otherwise).
    public var shards: [String]?

    public init(_ f: ActivationFile) throws {
        file = f.path
        fileBytes = f.fileSize
        run = f.metadata.run
        regime = f.metadata.regime
        probeSet = f.metadata.probeSet
        step = f.metadata.step
        seed = f.metadata.seed
        blockEnds = f.metadata.blockEnds
        layers = f.layerCount
        clips = f.clipCount
        tokens = f.tokenCount
        features = f.featureCount
        tokenTypes = Array(Set(f.tokenTypes.map(\.rawValue))).sorted()
        chunkClips = f.chunkClips
        attentionLayers = f.attentionShapes.keys.sorted()
        attentionClips = f.attentionShapes.values.first?.clips
        attentionHeads = f.attentionShapes.values.first?.heads
        hasPositions = f.hasPositions
        trainingSteps = try f.trainingCurve()?.steps.count
        targets = try f.targets.map { name in
            // Counted per distinct class id: ids may be far above N, so nothing is sized by an id.
            var byClass: [Int: Int] = [:]
            for l in try f.labels(name) { byClass[l, default: 0] += 1 }
            let ids = byClass.keys.sorted()
            return Target(name: name, classes: ids.count, counts: ids.map { byClass[$0]! })
        }
        warnings = f.warnings.map(\.description)
        if f.hasClipIDs { clipIDs = try f.clipIDs() != nil }
        let behind = VirtualSources.files(behind: f.path)
        if !behind.isEmpty { shards = behind }
    }

    /// Human-readable size, e.g. `1.2 MiB`.
    public static func formatBytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n), u = 0
        while v >= 1024, u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
    }

    /// A compact description of a list of integers: `1-3, 5`.
    static func ranges(_ xs: [Int]) -> String {
        var parts: [String] = []
        var i = 0
        while i < xs.count {
            var j = i
            while j + 1 < xs.count, xs[j + 1] == xs[j] + 1 { j += 1 }
            parts.append(j > i ? "\(xs[i])-\(xs[j])" : "\(xs[i])")
            i = j + 1
        }
        return parts.joined(separator: ", ")
    }

    /// The multi-line text block printed by `bwanalyze inspect`.
    public var text: String {
        var lines: [String] = []
        lines.append("\(file)  (\(FileSummary.formatBytes(fileBytes)))")
        func row(_ key: String, _ value: String) { lines.append("  " + key.padding(toLength: 11, withPad: " ", startingAt: 0) + value) }
        row("run", "\(run)   regime \(regime)   probe set \(probeSet)   step \(step)   seed \(seed)")
        row("blocks", "K = \(blockEnds.count), ending at layer\(blockEnds.count == 1 ? "" : "s") \(blockEnds.map(String.init).joined(separator: ", "))")
        var layerLine = "L = \(layers) (depths 0-\(layers), 0 = embedding)   N = \(clips) clips   T = \(tokens) tokens   D = \(features)   \(tokenTypes.joined(separator: "/"))"
        if let c = chunkClips { layerLine += " (chunks of \(c) clip\(c == 1 ? "" : "s"))" }
        row("layers", layerLine)
        if attentionLayers.isEmpty {
            row("attention", "none")
        } else {
            row("attention", "layers \(FileSummary.ranges(attentionLayers))   M = \(attentionClips ?? 0) clips   H = \(attentionHeads ?? 0) heads")
        }
        row("positions", hasPositions ? "yes" : "no")
        if targets.isEmpty {
            row("targets", "none")
        } else {
            for (i, t) in targets.enumerated() {
                let counts = t.counts.count <= 12 ? t.counts.map(String.init).joined(separator: "/")
                    : "min \(t.counts.min() ?? 0), max \(t.counts.max() ?? 0) per class"
                row(i == 0 ? "targets" : "", "\(t.name): \(t.classes) classes (\(counts))")
            }
        }
        if clipIDs == true { row("clip ids", "yes (unique; cross-file analyses match clips by id)") }
        if let shards {
            row("shards", "\(shards.count) file\(shards.count == 1 ? "" : "s") behind virtual datasets: \(shards.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", "))")
        }
        row("training", trainingSteps.map { "\($0) logged steps x \(blockEnds.count) block loss\(blockEnds.count == 1 ? "" : "es")" } ?? "no loss curve")
        for (i, w) in warnings.enumerated() { row(i == 0 ? "warnings" : "", w) }
        return lines.joined(separator: "\n")
    }
}
