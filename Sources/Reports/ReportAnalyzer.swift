import ActivationStore
import AnalysisCommands
import Foundation
import RepresentationMetrics

/// Runs the analyses of a report over grouped activation files, spreading independent jobs over the cores.
///
/// Per (run, probe set) at the run's latest step, over every depth 0…L: probes (3-fold CV) and
/// retrieval for every target; consecutive linear CKA over layers and over block boundaries;
/// all-pairs linear CKA and consecutive RBF CKA (paper bandwidth, N ≤ `maxRBFClips`) unless quick;
/// spectrum; patch similarity and token shift; attention per head when stored; OccDrop when the
/// `<set>-onepatch` file of the same run and step exists. Cross-run CKA (matching depths) between
/// every pair of runs sharing a probe set and step. At every earlier step: probes, consecutive CKA,
/// spectrum and token metrics at block depths (learning dynamics).
public struct ReportAnalyzer: Sendable {
    public var quick = false
    public var maxRBFClips = 2048
    /// Bootstrap over clips for the intervals of probes, retrieval mAP, linear CKA and patch similarity
    /// at each run's latest step; nil = no intervals.
    public var bootstrap: Bootstrap? = Bootstrap(resamples: 1000, seed: 0, level: 0.95)

    public init(quick: Bool = false) { self.quick = quick }

    /// The outcome: every analysis report, and notes on analyses that could not run.
    public struct Outcome: Sendable {
        public var reports: [MetricReport]
        public var notes: [String]
        /// Notes of analyses that stopped because an input could not be read (a damaged file).
        public var readFailures: [String] { notes.filter { $0.hasPrefix(ReportAnalyzer.readFailurePrefix) } }
    }

    /// Starts the note of an analysis stopped by an unreadable input.
    public static let readFailurePrefix = "cannot read an input: "


    struct Job: @unchecked Sendable {
        var label: String
        var work: () -> ([MetricReport], [String])
    }

    /// Runs every job; `log` receives one line per finished job.
    public func run(_ inputs: ReportInputs, log: (@Sendable (String) -> Void)? = nil) -> Outcome {
        let jobs = makeJobs(inputs)
        final class Box: @unchecked Sendable {
            var results: [([MetricReport], [String])?]
            var done = 0
            let lock = NSLock()
            init(_ n: Int) { results = Array(repeating: nil, count: n) }
        }
        let box = Box(jobs.count)
        DispatchQueue.concurrentPerform(iterations: jobs.count) { j in
            let start = Date()
            let result = jobs[j].work()
            box.lock.lock()
            box.results[j] = result
            box.done += 1
            let done = box.done
            box.lock.unlock()
            let failed = result.1.isEmpty ? "" : " (\(result.1.count) note\(result.1.count == 1 ? "" : "s"))"
            log?("[\(done)/\(jobs.count)] \(jobs[j].label): done in \(String(format: "%.1f", Date().timeIntervalSince(start))) s\(failed)")
        }
        var reports: [MetricReport] = []
        var notes: [String] = []
        for r in box.results {
            reports += r!.0
            notes += r!.1
        }
        return Outcome(reports: reports, notes: notes)
    }

    func makeJobs(_ inputs: ReportInputs) -> [Job] {
        let runs = Dictionary(uniqueKeysWithValues: inputs.runs.map { ($0.run, $0) })
        let onePatch = Dictionary(inputs.groups.filter { $0.probeSet.hasSuffix(ReportInputs.onePatchSuffix) }
                                    .map { ("\($0.run)\u{0}\($0.probeSet)\u{0}\($0.step)", $0.file) }, uniquingKeysWith: { a, _ in a })
        var jobs: [Job] = []
        let analysed = inputs.groups.filter { !$0.probeSet.hasSuffix(ReportInputs.onePatchSuffix) }
        for g in analysed {
            let latest = runs[g.run]!.latestStep == g.step
            let label = "\(g.run) / \(g.probeSet) / step \(g.step)\(latest ? "" : " (dynamics)")"
            let occluded = onePatch["\(g.run)\u{0}\(g.probeSet)\(ReportInputs.onePatchSuffix)\u{0}\(g.step)"]
            let me = self
            jobs.append(Job(label: label) { latest ? me.fullAnalyses(g, onePatch: occluded) : me.dynamicsAnalyses(g) })
        }
        // Cross-run CKA between runs sharing a probe set and step (the latest step of both).
        let latestGroups = analysed.filter { runs[$0.run]!.latestStep == $0.step }
        let me = self
        for (i, a) in latestGroups.enumerated() {
            for b in latestGroups[(i + 1)...] where a.probeSet == b.probeSet && a.step == b.step && a.run != b.run {
                jobs.append(Job(label: "cross-run CKA \(a.run) x \(b.run) / \(a.probeSet) / step \(a.step)") {
                    var ab = CKAAnalysis()
                    ab.depthSelection = .layers
                    ab.pairs = .matching
                    ab.bootstrap = me.bootstrap
                    return ReportAnalyzer.attempt("cross-run CKA \(a.run) x \(b.run) [\(a.probeSet)]") { try ab.run(a.file, b.file) }
                })
            }
        }
        return jobs
    }

    /// The reports and notes of the analyses of one file.
    struct Collected {
        /// Names the file in notes: run, probe set and step.
        let place: String
        var reports: [MetricReport] = []
        var notes: [String] = []

        /// Runs one analysis (`attempt`), keeping its report or the note of its failure.
        mutating func add(_ name: String, _ body: () throws -> MetricReport) {
            let (r, n) = ReportAnalyzer.attempt("\(name) of \(place)", body)
            reports += r
            notes += n
        }
    }

    /// Runs one analysis, turning a failure into a note.
    static func attempt(_ label: String, _ body: () throws -> MetricReport) -> ([MetricReport], [String]) {
        do { return ([try body()], []) } catch let e as ActivationStoreError where [.io, .damaged, .cannotOpen].contains(e.kind) {
            return ([], ["\(readFailurePrefix)\(e) (\(label))"])
        } catch { return ([], ["\(label): \(error)"]) }
    }

    func fullAnalyses(_ g: ReportInputs.Group, onePatch: ActivationFile?) -> ([MetricReport], [String]) {
        let f = g.file
        var out = Collected(place: "\(g.run) [\(g.probeSet), step \(g.step)]")
        func add(_ name: String, _ body: () throws -> MetricReport) { out.add(name, body) }
        if f.targets.isEmpty {
            out.notes.append("\(out.place): no labels; probes and retrieval skipped")
        } else {
            add("probe") {
                var a = ProbeAnalysis()
                a.depthSelection = .layers
                a.bootstrap = bootstrap
                a.shuffledChance = true
                return try a.run(f)
            }
            add("retrieval") { var a = RetrievalAnalysis(); a.depthSelection = .layers; a.bootstrap = bootstrap; return try a.run(f) }
        }
        if quick {
            add("consecutive CKA over layers") {
                var a = CKAAnalysis(); a.depthSelection = .layers; a.pairs = .consecutive; a.bootstrap = bootstrap; return try a.run(f)
            }
            add("consecutive CKA over blocks") {
                var a = CKAAnalysis(); a.depthSelection = .blocks; a.pairs = .consecutive; a.bootstrap = bootstrap; return try a.run(f)
            }
            add("CKA embedding vs last layer") {
                var a = CKAAnalysis(); a.depthSelection = .list([0, f.layerCount]); a.pairs = .consecutive; a.bootstrap = bootstrap
                return try a.run(f)
            }
        } else {
            // The all-pairs matrix over every layer holds every consecutive pair of layers and of block
            // boundaries, so one pass over the file gives them all.
            add("all-pairs CKA") {
                var a = CKAAnalysis(); a.depthSelection = .layers; a.pairs = .all; a.bootstrap = bootstrap; return try a.run(f)
            }
            if f.clipCount <= maxRBFClips {
                add("RBF CKA") {
                    var a = CKAAnalysis()
                    a.depthSelection = .layers
                    a.pairs = .consecutive
                    a.kernel = .rbf
                    a.bandwidth = .paperMedian
                    return try a.run(f)
                }
            } else {
                out.notes.append("\(out.place): RBF CKA skipped (N = \(f.clipCount) > \(maxRBFClips))")
            }
        }
        add("spectrum") { var a = SpectrumAnalysis(); a.depthSelection = .layers; return try a.run(f) }
        add("token metrics") { var a = TokenAnalysis(); a.depthSelection = .layers; a.bootstrap = bootstrap; return try a.run(f) }
        if !f.attentionShapes.isEmpty {
            add("attention") { try AttentionAnalysis().run(f) }
        }
        if let onePatch, !f.targets.isEmpty {
            add("OccDrop") { var a = OccDropAnalysis(); a.depthSelection = .layers; return try a.run(full: f, onePatch: onePatch) }
        }
        return (out.reports, out.notes)
    }

    func dynamicsAnalyses(_ g: ReportInputs.Group) -> ([MetricReport], [String]) {
        let f = g.file
        var out = Collected(place: "\(g.run) [\(g.probeSet), step \(g.step)]")
        func add(_ name: String, _ body: () throws -> MetricReport) { out.add(name, body) }
        if !f.targets.isEmpty { add("probe") { try ProbeAnalysis().run(f) } }
        add("consecutive CKA over blocks") { var a = CKAAnalysis(); a.pairs = .consecutive; return try a.run(f) }
        add("spectrum") { try SpectrumAnalysis().run(f) }
        add("token metrics") { try TokenAnalysis().run(f) }
        return (out.reports, out.notes)
    }
}
