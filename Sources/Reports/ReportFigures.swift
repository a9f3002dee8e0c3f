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
    public static func make(table: ReportTable, runs: [RunInfo], conditions: ReportConditions? = nil) -> [ReportFigure] {
        let conditions = conditions ?? ReportConditions(table: table, runs: runs)
        let conditionOrder = RecordIndex.conditions(of: runs)
        let conditionNames = RecordIndex.conditionNames(of: runs)
        let runMap = Dictionary(runs.map { ($0.run, $0) }, uniquingKeysWith: { a, _ in a })
        let latest = table.records.filter { runMap[$0.run]?.latestStep == $0.step }
        let probeSets = Array(Set(latest.map(\.probeSet))).filter { !$0.hasSuffix(ReportInputs.onePatchSuffix) }.sorted()
        var figures: [ReportFigure] = []
        // Per similarity measure, one chart per probe set (shown side by side after the loop).
        var similarityPanels: [Metric: [LineChart]] = [:]
        // Depth pairs that are consecutive block boundaries (from the embedding) of some run.
        let blockSteps = Set(runs.flatMap { r -> [String] in
            let ends = [0] + r.blockEnds
            return zip(ends, ends.dropFirst()).map { "\($0) \($1)" }
        })
        func name(_ r: RunInfo) -> String { "\(r.run) (\(r.regime))" }
        func blockMarkers(_ rs: [RunInfo]) -> [Double] { Array(Set(rs.flatMap(\.blockEnds))).sorted().map(Double.init) }

        for p in probeSets {
            let inSet = latest.filter { $0.probeSet == p }
            let setRuns = runs.filter { r in inSet.contains { $0.run == r.run } }
            /// Per condition: its seed mean with the interval over seeds and clips as a band, and each run
            /// (seed) as a thin line of the same colour. `x` maps a record or row to its x (nil to leave it out).
            func conditionSeries(_ metric: Metric, x: (Int?, Int?) -> Int? = { d, db in db == nil ? d : nil }) -> [LineChart.Series] {
                var out: [LineChart.Series] = []
                for (ci, c) in conditionOrder.enumerated() {
                    let rows = conditions.rows.filter { $0.metric == metric.name && $0.condition == c.condition && $0.probeSet == p && $0.target == nil }
                        .compactMap { r in x(r.depth, r.depthB).map { (x: Double($0), row: r) } }.sorted { $0.x < $1.x }
                    guard !rows.isEmpty else { continue }
                    let seeds = rows.map(\.row.perSeed.count).max() ?? 0
                    if seeds >= 2 {
                        for run in c.runs {
                            let pts = inSet.filter { $0.run == run.run && $0.metric == metric.name && $0.target == nil && $0.head == nil && ($0.runB == nil || $0.runB == $0.run) }
                                .compactMap { rec in x(rec.depth, rec.depthB).map { (x: Double($0), y: rec.value) } }
                            if !pts.isEmpty { out.append(LineChart.Series(name: run.run, points: pts, colour: ci, thin: true)) }
                        }
                    }
                    let band = rows.compactMap { r -> (x: Double, low: Double, high: Double)? in
                        guard let lo = r.row.ciLow, let hi = r.row.ciHigh else { return nil }
                        return (r.x, lo, hi)
                    }
                    let label = seeds == 1 ? "\(c.condition): \(rows[0].row.perSeed[0].run)" : "\(c.condition), mean of \(seeds) seeds"
                    out.append(LineChart.Series(name: label, points: rows.map { (x: $0.x, y: Optional($0.row.mean)) },
                                                band: band.count == rows.count && band.count >= 2 ? band : nil, colour: ci))
                }
                return out
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
            let perCondition = "one line per condition (regime and K): the mean over its runs (seeds) at their latest step, shaded: its 95% interval over seeds and clips (docs/report.md; with one seed, the clip bootstrap's); thin lines: each seed"
            lineFigure(probeAccuracyName(p), "Linear-probe accuracy vs depth: \(p)", "accuracy (fraction, mean over targets)",
                       conditionSeries(.probeAccuracyMeanOverTargets),
                       caption: "Linear-probe accuracy (3-fold stratified CV, mean over the probe set's targets) of clip vectors at every depth, \(perCondition); dashed lines mark block boundaries; the y axis spans the data. Measured chance (shuffled labels) is in metrics.csv as \(Metric.probeAccuracyShuffled.name).")
            lineFigure("cka_consecutive_\(slug)", "Consecutive linear CKA: \(p)", "linear CKA (biased, unitless)",
                       conditionSeries(.ckaLinearBiased) { d, db in d != nil && db == d! + 1 ? db : nil },
                       caption: "Linear CKA between the clip vectors of consecutive depths l-1 and l (plotted at l), \(perCondition).",
                       xLabel: "depth l (CKA between l-1 and l)", yRange: 0...1)
            lineFigure("\(Metric.effectiveRank.name)_\(slug)", "Effective rank vs depth: \(p)", "effective rank (dimensions)",
                       conditionSeries(.effectiveRank),
                       caption: "Effective rank exp(-sum p log p) of the clip-vector covariance spectrum at every depth, \(perCondition) (over seeds only: the spectrum has no clip bootstrap).")
            lineFigure("\(Metric.patchSimilarity.name)_\(slug)", "Within-clip patch similarity vs depth: \(p)", "mean cosine (unitless)",
                       conditionSeries(.patchSimilarity),
                       caption: "Within-clip patch similarity (tokens layer-normalised and L2-normalised; mean cosine over token pairs of a clip) at every depth, \(perCondition).")
            for m in MetricFamily.similarity.metrics {
                let series = conditionSeries(m) { d, db in
                    guard let d, let db, blockSteps.contains("\(d) \(db)") else { return nil }
                    return db
                }
                guard !series.isEmpty else { continue }
                var chart = LineChart(title: p, xLabel: "block boundary d (measure between the previous one and d)", yLabel: "\(m.name) (\(m.unit))", series: series)
                chart.markers = blockMarkers(setRuns)
                chart.markerLabel = "block boundary"
                similarityPanels[m, default: []].append(chart)
            }
            // Cross-run CKA at matching depths, per pair of conditions: the mean over the pairs of runs (one
            // per seed when runs are paired by seed), each pair a thin line.
            var cross: [LineChart.Series] = []
            let crossRecords = inSet.filter { $0.metric == Metric.ckaLinearBiased.name && $0.runB != nil && $0.runB != $0.run && $0.depth != nil }
            let conditionPairs = Dictionary(grouping: crossRecords) { r in "\(conditionNames[r.run] ?? r.run) x \(conditionNames[r.runB!] ?? r.runB!)" }
            for (ci, key) in conditionPairs.keys.sorted().enumerated() {
                let recs = conditionPairs[key]!
                let pairs = Dictionary(grouping: recs) { "\($0.run) x \($0.runB!)" }
                for (name, prs) in pairs.sorted(by: { $0.key < $1.key }) where pairs.count >= 2 {
                    cross.append(LineChart.Series(name: name, points: prs.map { (x: Double($0.depth!), y: $0.value) }, colour: ci, thin: true))
                }
                let byDepth = Dictionary(grouping: recs.filter { $0.value != nil }, by: { $0.depth! })
                let pts = byDepth.keys.sorted().map { d in (x: Double(d), y: Optional(Findings.mean(byDepth[d]!.map { $0.value! }))) }
                cross.append(LineChart.Series(name: pairs.count >= 2 ? "\(key), mean of \(pairs.count) pairs" : pairs.keys.first!, points: pts, colour: ci))
            }
            lineFigure("cka_cross_run_\(slug)", "Cross-run linear CKA at matching depths: \(p)", "linear CKA (biased, unitless)", cross,
                       caption: "Linear CKA between two runs' clip vectors at the same depth (same clips), per pair of conditions: the mean over its pairs of runs (one per seed), each pair a thin line.", yRange: 0...1)

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
        for m in MetricFamily.similarity.metrics {
            guard var panels = similarityPanels[m] else { continue }
            let title = "\(m.name) between consecutive block boundaries" + (panels.count == 1 ? ": \(panels[0].title)" : ", every probe set")
            if panels.count == 1 { panels[0].title = title }
            figures.append(ReportFigure(file: "figures/similarity_\(m.name).svg", title: title,
                                        caption: "\(m.name) (\(m.convention)) between the clip vectors of consecutive block boundaries (the first from the embedding, depth 0), plotted at the deeper one; one panel per probe set (\(probeSets.joined(separator: ", "))), one line per condition: the mean over its seeds, shaded where it has an interval; thin lines: each seed. Descriptive: the measure-robustness section on the page reads its checks from these records.",
                                        svg: panels.count == 1 ? panels[0].render() : LineChart.sideBySide(panels.map { $0.render() }, title: title)))
        }
        // The headline: the probe-accuracy figures of every probe set side by side.
        let probeFigures = probeSets.compactMap { p in figures.first { $0.file == probeAccuracyFile(p) } }
        if probeFigures.count >= 2 {
            figures.insert(ReportFigure(file: headlineFile, title: "Linear-probe accuracy vs depth, every probe set",
                                        caption: "The probe-accuracy figures of the probe sets (\(probeSets.joined(separator: ", "))) side by side: \(probeFigures[0].caption)",
                                        svg: LineChart.sideBySide(probeFigures.map(\.svg), title: "Linear-probe accuracy vs depth, every probe set")), at: 0)
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

    /// The headline figure: every probe set's probe accuracy vs depth, side by side.
    public static let headlineFile = "figures/probe_accuracy_all_probe_sets.svg"

    /// The probe-accuracy-vs-depth figure of a probe set, e.g. `figures/probe_accuracy_actions.svg` (the page leads with it).
    public static func probeAccuracyFile(_ probeSet: String) -> String { "figures/\(probeAccuracyName(probeSet)).svg" }

    static func probeAccuracyName(_ probeSet: String) -> String { "\(Metric.probeAccuracy.name)_\(sanitize(probeSet))" }

    /// A file-name-safe version of a name.
    static func sanitize(_ s: String) -> String {
        String(s.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
    }
}
