import AnalysisCommands
import Foundation
import RepresentationMetrics

/// One figure of a report: an SVG file under `figures/`, with a title and a caption.
public struct ReportFigure: Codable, Sendable, Equatable {
    /// Path relative to the output directory, e.g. `figures/probe_accuracy_actions.svg`.
    public var file: String
    public var title: String
    public var caption: String
    /// The SVG document.
    public var svg: String
}

/// Builds the report's figures from its records.
public enum ReportFigures {
    /// Every figure the records support, in a fixed order.
    public static func make(table: ReportTable, runs: [RunInfo]) -> [ReportFigure] {
        let runMap = Dictionary(runs.map { ($0.run, $0) }, uniquingKeysWith: { a, _ in a })
        let latest = table.records.filter { runMap[$0.run]?.latestStep == $0.step }
        let probeSets = Array(Set(latest.map(\.probeSet))).filter { !$0.hasSuffix(ReportInputs.onePatchSuffix) }.sorted()
        var figures: [ReportFigure] = []
        func name(_ r: RunInfo) -> String { "\(r.run) (\(r.regime))" }
        func blockMarkers(_ rs: [RunInfo]) -> [Double] { Array(Set(rs.flatMap(\.blockEnds))).sorted().map(Double.init) }

        for p in probeSets {
            let inSet = latest.filter { $0.probeSet == p }
            let setRuns = runs.filter { r in inSet.contains { $0.run == r.run } }
            func depthSeries(_ metric: Metric, _ pick: (MetricRecord) -> Bool = { _ in true }) -> [LineChart.Series] {
                setRuns.compactMap { r in
                    let recs = inSet.filter { $0.run == r.run && $0.metric == metric.name && pick($0) }
                    let pts = recs.compactMap { rec in rec.depth.map { (x: Double($0), y: rec.value) } }
                    // The 95% bootstrap interval as a shaded band where every point has one.
                    let band = recs.compactMap { rec -> (x: Double, low: Double, high: Double)? in
                        guard let d = rec.depth, let lo = rec.ciLow, let hi = rec.ciHigh else { return nil }
                        return (Double(d), lo, hi)
                    }.sorted { $0.x < $1.x }
                    return pts.isEmpty ? nil : LineChart.Series(name: name(r), points: pts, band: band.count == recs.count && band.count >= 2 ? band : nil)
                }
            }
            func lineFigure(_ file: String, _ title: String, _ yLabel: String, _ series: [LineChart.Series], caption: String,
                            xLabel: String = "depth (0 = embedding, l = output of layer l)", yRange: ClosedRange<Double>? = nil) {
                guard !series.isEmpty else { return }
                var chart = LineChart(title: title, xLabel: xLabel, yLabel: yLabel, series: series)
                chart.markers = blockMarkers(setRuns)
                chart.markerLabel = "block boundary"
                chart.yRange = yRange
                figures.append(ReportFigure(file: "figures/\(file).svg", title: title, caption: caption, svg: chart.render()))
            }
            let slug = sanitize(p)
            lineFigure(probeAccuracyName(p), "Linear-probe accuracy vs depth: \(p)", "accuracy (fraction, mean over targets)",
                       depthSeries(.probeAccuracyMeanOverTargets),
                       caption: "Linear-probe accuracy (3-fold stratified CV, mean over the probe set's targets) of clip vectors at every depth, one line per run at its latest step, shaded: 95% bootstrap interval over clips (out-of-fold predictions resampled); dashed lines mark block boundaries. Measured chance (shuffled labels) is in metrics.csv as \(Metric.probeAccuracyShuffled.name).",
                       yRange: 0...1)
            lineFigure("cka_consecutive_\(slug)", "Consecutive linear CKA: \(p)", "linear CKA (biased, unitless)",
                       depthSeries(.ckaLinearBiased) { $0.runB == $0.run && $0.depthB == ($0.depth ?? -2) + 1 }.map { s in
                           var s = s
                           s.points = s.points.map { (x: $0.x + 1, y: $0.y) }
                           s.band = s.band?.map { (x: $0.x + 1, low: $0.low, high: $0.high) }
                           return s
                       },
                       caption: "Linear CKA between the clip vectors of consecutive depths l-1 and l (plotted at l), one line per run and regime.",
                       xLabel: "depth l (CKA between l-1 and l)", yRange: 0...1)
            lineFigure("\(Metric.effectiveRank.name)_\(slug)", "Effective rank vs depth: \(p)", "effective rank (dimensions)",
                       depthSeries(.effectiveRank),
                       caption: "Effective rank exp(-sum p log p) of the clip-vector covariance spectrum at every depth.")
            lineFigure("\(Metric.patchSimilarity.name)_\(slug)", "Within-clip patch similarity vs depth: \(p)", "mean cosine (unitless)",
                       depthSeries(.patchSimilarity),
                       caption: "Within-clip patch similarity (tokens layer-normalised and L2-normalised; mean cosine over token pairs of a clip) at every depth; shaded: 95% bootstrap interval over clips.")
            // Cross-run CKA at matching depths.
            var cross: [LineChart.Series] = []
            let pairs = Set(inSet.filter { $0.metric == Metric.ckaLinearBiased.name && $0.runB != nil && $0.runB != $0.run }.map { "\($0.run) x \($0.runB!)" }).sorted()
            for pair in pairs {
                let pts = inSet.filter { $0.metric == Metric.ckaLinearBiased.name && "\($0.run) x \($0.runB ?? "")" == pair }
                    .compactMap { rec in rec.depth.map { (x: Double($0), y: rec.value) } }
                cross.append(LineChart.Series(name: pair, points: pts))
            }
            lineFigure("cka_cross_run_\(slug)", "Cross-run linear CKA at matching depths: \(p)", "linear CKA (biased, unitless)", cross,
                       caption: "Linear CKA between two runs' clip vectors at the same depth (same clips), one line per pair of runs.", yRange: 0...1)

            for r in setRuns {
                let mine = inSet.filter { $0.run == r.run }
                // Attention distance per head.
                let att = mine.filter { $0.metric == Metric.attentionDistanceSpatial.name }
                let heads = Array(Set(att.compactMap(\.head))).sorted()
                if !heads.isEmpty {
                    let series = heads.map { h in
                        LineChart.Series(name: "head \(h)", points: att.filter { $0.head == h }.compactMap { rec in rec.depth.map { (x: Double($0), y: rec.value) } })
                    }
                    var chart = LineChart(title: "Mean attention distance per head: \(r.run) [\(p)]", xLabel: "layer",
                                          yLabel: "spatial attention distance (px)", series: series)
                    chart.markers = r.blockEnds.map(Double.init)
                    chart.markerLabel = "block boundary"
                    figures.append(ReportFigure(file: "figures/attention_distance_\(sanitize(r.run))_\(slug).svg", title: chart.title,
                                                caption: "Mean spatial attention distance (attention-weighted Euclidean distance between token centres, in pixels) per layer, one line per head.",
                                                svg: chart.render()))
                }
                // All-pairs CKA heatmap.
                let within = mine.filter { $0.metric == Metric.ckaLinearBiased.name && $0.runB == r.run && $0.depthB != nil }
                let depths = Array(Set(within.compactMap(\.depth) + within.compactMap(\.depthB))).sorted()
                let pairCount = within.count
                if depths.count >= 3 && pairCount >= depths.count * (depths.count - 1) / 2 {
                    var lookup: [Int: [Int: Double]] = [:]
                    for rec in within { if let v = rec.value { lookup[rec.depth!, default: [:]][rec.depthB!] = v; lookup[rec.depthB!, default: [:]][rec.depth!] = v } }
                    let values: [[Double?]] = depths.map { a in depths.map { b in a == b ? 1 : lookup[a]?[b] } }
                    var h = Heatmap(title: "Linear CKA between all depths: \(r.run) [\(p)]", xLabel: "depth", yLabel: "depth",
                                    rowLabels: depths.map(String.init), columnLabels: depths.map(String.init), values: values)
                    h.legendLabel = "linear CKA"
                    figures.append(ReportFigure(file: "figures/cka_heatmap_\(sanitize(r.run))_\(slug).svg", title: h.title,
                                                caption: "Linear CKA (biased, clip vectors) between every pair of depths of one run at its latest step; grey cells are undefined.",
                                                svg: h.render()))
                }
            }
        }
        // Learning dynamics: over steps, at each run's last block.
        let dynSets = Array(Set(table.records.map(\.probeSet))).filter { !$0.hasSuffix(ReportInputs.onePatchSuffix) }.sorted()
        for p in dynSets {
            let setRuns = runs.filter { r in table.records.contains { $0.run == r.run && $0.probeSet == p } }
            guard setRuns.contains(where: { $0.steps.count > 1 }) else { continue }
            func stepSeries(_ metric: Metric) -> [LineChart.Series] {
                setRuns.compactMap { r in
                    guard let last = r.blockEnds.last else { return nil }
                    let pts = table.records.filter { $0.run == r.run && $0.probeSet == p && $0.metric == metric.name && $0.depth == last && $0.depthB == nil }
                        .map { (x: Double($0.step), y: $0.value) }
                    return pts.isEmpty ? nil : LineChart.Series(name: name(r), points: pts)
                }
            }
            for (metric, label, file, range) in [(Metric.probeAccuracyMeanOverTargets, "probe accuracy (fraction)", "dynamics_probe_accuracy", Optional(0.0...1.0)),
                                                 (.effectiveRank, "effective rank (dimensions)", "dynamics_effective_rank", nil)] {
                let series = stepSeries(metric)
                guard !series.isEmpty else { continue }
                var chart = LineChart(title: "\(metric == .effectiveRank ? "Effective rank" : "Probe accuracy") at the last block over training: \(p)",
                                      xLabel: "training step", yLabel: label, series: series)
                chart.yRange = range
                chart.integerX = false
                figures.append(ReportFigure(file: "figures/\(file)_\(sanitize(p)).svg", title: chart.title,
                                            caption: "\(metric == .effectiveRank ? "Effective rank of clip vectors" : "Linear-probe accuracy (mean over targets)") at each run's last block boundary, for every dumped training step.",
                                            svg: chart.render()))
            }
        }
        return figures
    }

    /// The probe-accuracy-vs-depth figure of a probe set, e.g. `figures/probe_accuracy_actions.svg` (the page leads with it).
    public static func probeAccuracyFile(_ probeSet: String) -> String { "figures/\(probeAccuracyName(probeSet)).svg" }

    static func probeAccuracyName(_ probeSet: String) -> String { "\(Metric.probeAccuracy.name)_\(sanitize(probeSet))" }

    /// A file-name-safe version of a name.
    static func sanitize(_ s: String) -> String {
        String(s.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
    }
}
