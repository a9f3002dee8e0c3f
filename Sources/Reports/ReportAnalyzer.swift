import ActivationStore
import AnalysisCommands
import Collective
import Foundation
import LinearAlgebra
import RepresentationMetrics

/// Runs the analyses of a report over grouped activation files, spreading independent jobs over the cores.
///
/// Per (run, probe set) at the run's latest step, over every depth 0…L: probes (3-fold CV) and
/// retrieval for every target; consecutive linear CKA over layers and over block boundaries;
/// all-pairs linear CKA, consecutive RBF CKA (paper bandwidth, N ≤ `maxRBFClips`) and the similarity
/// measures beyond CKA at consecutive block boundaries and between depth 0 and L, unless quick;
/// spectrum; patch similarity and token shift; attention per head when stored; OccDrop when the
/// `<set>-onepatch` file of the same run and step exists. Cross-run CKA (matching depths) between
/// every pair of runs sharing a probe set and step (within one seed when the runs are seed replicates),
/// and the similarity measures at the final block between each blockwise run and its seed's e2e run
/// (unless quick). At every earlier step: probes, consecutive CKA,
/// spectrum and token metrics at block depths (learning dynamics).
public struct ReportAnalyzer: Sendable {
    public var quick = false
    public var maxRBFClips = 2048
    /// Bootstrap over clips for the intervals of probes, retrieval mAP, linear CKA and patch similarity
    /// at each run's latest step; nil = no intervals.
    public var bootstrap: Bootstrap? = Bootstrap(resamples: 1000, seed: 0, level: 0.95)
    /// The job the analyses are part of. Under MPI the jobs run one after another on the calling
    /// thread, every rank taking part in each analysis (its share of the clips, docs/mpi.md); in one
    /// process they run concurrently.
    public var communicator: any Communicator = SingleProcess()

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
        var work: () -> JobResult
    }

    /// What one job produced: its reports, its notes, and the seconds of each analysis it ran (for the log).
    struct JobResult: @unchecked Sendable {
        var reports: [MetricReport] = []
        var notes: [String] = []
        var timings: [(name: String, seconds: Double)] = []

        init(_ reports: [MetricReport], _ notes: [String]) {
            self.reports = reports
            self.notes = notes
        }

        init(timing name: String, _ body: () -> ([MetricReport], [String])) {
            var r: ([MetricReport], [String]) = ([], [])
            let took = ContinuousClock().measure { r = body() }
            self.init(r.0, r.1)
            timings = [(name, took.seconds)]
        }
    }

    /// Runs every job; `log` receives one line per finished job.
    public func run(_ inputs: ReportInputs, log: (@Sendable (String) -> Void)? = nil) -> Outcome {
        let jobs = makeJobs(inputs)
        let timed = { @Sendable (j: Int) -> (JobResult, Duration) in
            var result = JobResult([], [])
            let took = ContinuousClock().measure { result = jobs[j].work() }
            return (result, took)
        }
        let finished = { (j: Int, timed: (JobResult, Duration), done: Int) in
            let (result, took) = timed
            let failed = result.notes.isEmpty ? "" : " (\(result.notes.count) note\(result.notes.count == 1 ? "" : "s"))"
            let parts = result.timings.count > 1
                ? " (" + result.timings.map { "\($0.name) \(String(format: "%.1f", $0.seconds))" }.joined(separator: ", ") + ")" : ""
            log?("[\(done)/\(jobs.count)] \(jobs[j].label): done in \(String(format: "%.1f", took.seconds)) s\(parts)\(failed)")
        }
        let results: [(JobResult, Duration)]
        if communicator.size > 1 {
            // MPI is called from this thread only, and every rank must enter the analyses in the same order.
            results = jobs.indices.map { j in
                let r = timed(j)
                finished(j, r, j + 1)
                return r
            }
        } else {
            results = Parallel.map(jobs.count, { j in timed(j) }, finished: finished)
        }
        var reports: [MetricReport] = []
        var notes: [String] = []
        for (r, _) in results {
            reports += r.reports
            notes += r.notes
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
        // Cross-run CKA between runs sharing a probe set and step (the latest step of both); when the runs
        // are replicates over several seeds, each with two or more runs, only between runs of one seed.
        let latestGroups = analysed.filter { runs[$0.run]!.latestStep == $0.step }
        let seeds = Dictionary(grouping: inputs.runs, by: { $0.seed ?? -1 })
        let withinSeed = seeds.count > 1 && seeds.values.allSatisfy { $0.count >= 2 } && seeds[-1] == nil
        let me = self
        for (i, a) in latestGroups.enumerated() {
            for b in latestGroups[(i + 1)...] where a.probeSet == b.probeSet && a.step == b.step && a.run != b.run
                && (!withinSeed || runs[a.run]!.seed == runs[b.run]!.seed) {
                jobs.append(Job(label: "cross-run CKA \(a.run) x \(b.run) / \(a.probeSet) / step \(a.step)") { JobResult(timing: "CKA") {
                    var ab = CKAAnalysis()
                    ab.communicator = me.communicator
                    ab.depthSelection = .layers
                    ab.pairs = .matching
                    ab.bootstrap = me.bootstrap
                    return ReportAnalyzer.attempt("cross-run CKA \(a.run) x \(b.run) [\(a.probeSet)]") { try ab.run(a.file, b.file) }
                } })
            }
        }
        // Similarity beyond CKA at the final block between each blockwise run and the e2e runs (of its
        // seed when the runs are seed replicates, as for cross-run CKA; A blockwise, B e2e: PWCCA's
        // weights come from the blockwise run), unless quick.
        if !quick {
            for a in latestGroups where runs[a.run]!.isBlockwise {
                for b in latestGroups where runs[b.run]!.isEndToEnd && a.probeSet == b.probeSet && a.step == b.step
                    && (!withinSeed || runs[a.run]!.seed == runs[b.run]!.seed) && runs[a.run]!.blockEnds.last == runs[b.run]!.blockEnds.last {
                    guard let last = runs[a.run]!.blockEnds.last else { continue }
                    jobs.append(Job(label: "final-block similarity \(a.run) x \(b.run) / \(a.probeSet) / step \(a.step)") { JobResult(timing: "similarity") {
                        var ab = SimilarityAnalysis()
                        ab.communicator = me.communicator
                        ab.depthSelection = .list([last])
                        ab.pairs = .matching
                        return ReportAnalyzer.attempt("final-block similarity \(a.run) x \(b.run) [\(a.probeSet)]") { try ab.run(a.file, b.file) }
                    } })
                }
            }
        }
        return jobs
    }

    /// Runs one analysis, turning a failure into a note.
    static func attempt(_ label: String, _ body: () throws -> MetricReport) -> ([MetricReport], [String]) {
        do { return ([try body()], []) } catch let e as ActivationStoreError where [.io, .damaged, .cannotOpen].contains(e.kind) {
            return ([], ["\(readFailurePrefix)\(e) (\(label))"])
        } catch let e as RankFailure where e.kind == "read" {
            return ([], ["\(readFailurePrefix)rank \(e.rank) of \(e.size): \(e) (\(label))"])
        } catch { return ([], ["\(label): \(error)"]) }
    }

    /// The reports and notes of one job's analyses at one place (run, probe set, step).
    struct Collected {
        let place: String
        var reports: [MetricReport] = []
        var notes: [String] = []
        var timings: [(name: String, seconds: Double)] = []

        /// Runs one analysis, timing it; a failure becomes a note naming it and the place.
        mutating func add(_ name: String, _ body: () throws -> MetricReport) {
            var outcome: ([MetricReport], [String]) = ([], [])
            let took = ContinuousClock().measure { outcome = ReportAnalyzer.attempt("\(name) of \(place)", body) }
            reports += outcome.0
            notes += outcome.1
            timings.append((name, took.seconds))
        }

        /// Appends another collection's reports, notes and timings (analyses run earlier, reported here).
        mutating func append(_ other: Collected) {
            reports += other.reports
            notes += other.notes
            timings += other.timings
        }

        /// Runs the token metrics first, in one pass over the tokens that also pools every selected depth
        /// (`TokenAnalysis.runSharingClipVectors`): returns them, still to be appended, and the file carrying
        /// the clip vectors, from which the analyses of clip vectors that follow take them instead of reading
        /// the tokens again (the same vectors, so the same numbers).
        func tokenMetricsFirst(_ f: ActivationFile, _ analysis: TokenAnalysis) -> (Collected, ActivationFile) {
            var first = Collected(place: place)
            var shared = f
            first.add("token metrics") {
                let (report, file) = try analysis.runSharingClipVectors(f)
                shared = file
                return report
            }
            return (first, shared)
        }

        var result: JobResult {
            var r = JobResult(reports, notes)
            r.timings = timings
            return r
        }
    }

    func fullAnalyses(_ g: ReportInputs.Group, onePatch: ActivationFile?) -> JobResult {
        var out = Collected(place: "\(g.run) [\(g.probeSet), step \(g.step)]")
        var tokens = TokenAnalysis()
        tokens.communicator = communicator
        tokens.depthSelection = .layers
        tokens.bootstrap = bootstrap
        let (tokenMetrics, f) = out.tokenMetricsFirst(g.file, tokens)
        if f.targets.isEmpty {
            out.notes.append("\(out.place): no labels; probes and retrieval skipped")
        } else {
            out.add("probe") {
                var a = ProbeAnalysis()
                a.communicator = communicator
                a.depthSelection = .layers
                a.bootstrap = bootstrap
                a.shuffledChance = true
                return try a.run(f)
            }
            out.add("retrieval") { var a = RetrievalAnalysis(); a.communicator = communicator; a.depthSelection = .layers; a.bootstrap = bootstrap; return try a.run(f) }
        }
        if quick {
            out.add("consecutive CKA over layers") {
                var a = CKAAnalysis(); a.communicator = communicator; a.depthSelection = .layers; a.pairs = .consecutive; a.bootstrap = bootstrap; return try a.run(f)
            }
            out.add("consecutive CKA over blocks") {
                var a = CKAAnalysis(); a.communicator = communicator; a.depthSelection = .blocks; a.pairs = .consecutive; a.bootstrap = bootstrap; return try a.run(f)
            }
            out.add("CKA embedding vs last layer") {
                var a = CKAAnalysis(); a.communicator = communicator; a.depthSelection = .list([0, f.layerCount]); a.pairs = .consecutive; a.bootstrap = bootstrap
                return try a.run(f)
            }
        } else {
            // The all-pairs matrix over every layer holds every consecutive pair of layers and of block
            // boundaries, so one pass over the file gives them all.
            out.add("all-pairs CKA") {
                var a = CKAAnalysis(); a.communicator = communicator; a.depthSelection = .layers; a.pairs = .all; a.bootstrap = bootstrap; return try a.run(f)
            }
            // Similarity beyond CKA at the pairs the measure-robustness section reads: consecutive block
            // boundaries (from the embedding) and the embedding against the last depth.
            let ends = [0] + f.metadata.blockEnds.filter { $0 > 0 && $0 <= f.layerCount }
            var depthPairs = zip(ends, ends.dropFirst()).map { ($0, $1) }
            if ends.count > 2 { depthPairs.append((0, ends.last!)) }
            if !depthPairs.isEmpty {
                out.add("similarity") {
                    var a = SimilarityAnalysis(); a.communicator = communicator; a.depthPairs = depthPairs; return try a.run(f)
                }
            }
            if f.clipCount <= maxRBFClips {
                out.add("RBF CKA") {
                    var a = CKAAnalysis()
                    a.communicator = communicator
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
        out.add("spectrum") { var a = SpectrumAnalysis(); a.communicator = communicator; a.depthSelection = .layers; return try a.run(f) }
        out.append(tokenMetrics)
        if !f.attentionShapes.isEmpty {
            out.add("attention") { var a = AttentionAnalysis(); a.communicator = communicator; return try a.run(f) }
        }
        if let onePatch, !f.targets.isEmpty {
            out.add("OccDrop") { var a = OccDropAnalysis(); a.communicator = communicator; a.depthSelection = .layers; return try a.run(full: f, onePatch: onePatch) }
        }
        return out.result
    }

    func dynamicsAnalyses(_ g: ReportInputs.Group) -> JobResult {
        var out = Collected(place: "\(g.run) [\(g.probeSet), step \(g.step)]")
        var tokens = TokenAnalysis()
        tokens.communicator = communicator
        let (tokenMetrics, f) = out.tokenMetricsFirst(g.file, tokens)
        if !f.targets.isEmpty { out.add("probe") { var a = ProbeAnalysis(); a.communicator = communicator; return try a.run(f) } }
        out.add("consecutive CKA over blocks") { var a = CKAAnalysis(); a.communicator = communicator; a.pairs = .consecutive; return try a.run(f) }
        out.add("spectrum") { var a = SpectrumAnalysis(); a.communicator = communicator; return try a.run(f) }
        out.append(tokenMetrics)
        return out.result
    }
}
