import AnalysisCommands
import Foundation
import RepresentationMetrics

/// `summary.json`: provenance, conventions, runs, findings and notes of a report.
public struct ReportSummary: Codable, Sendable {
    /// One input file with its checksum.
    public struct Input: Codable, Sendable, Equatable {
        public var path: String
        public var bytes: Int
        public var sha256: String
        public var run: String
        public var regime: String
        public var probeSet: String
        public var step: Int
    }

    public var title: String
    public var tool: String
    public var version: String
    public var commandLine: [String]
    public var quick: Bool

    /// Probe accuracy with the target's labels shuffled, at one depth of one run's latest step.
    public struct ChanceLevel: Codable, Sendable, Equatable {
        public var run: String
        public var probeSet: String
        public var step: Int
        public var depth: Int
        /// The target, or nil for the mean over targets.
        public var target: String?
        public var value: Double?
        public var ciLow: Double?
        public var ciHigh: Double?
        public var undefined: String?

        /// The metrics of measured chance.
        static let metrics: Set<String> = [Metric.probeAccuracyShuffled.name, Metric.probeAccuracyShuffledMeanOverTargets.name]

        /// The chance records (`metrics`) among `records`.
        public static func from(_ records: [MetricRecord]) -> [ChanceLevel] {
            records.filter { metrics.contains($0.metric) && $0.depth != nil }.map {
                ChanceLevel(run: $0.run, probeSet: $0.probeSet, step: $0.step, depth: $0.depth!, target: $0.target,
                            value: $0.value, ciLow: $0.ciLow, ciHigh: $0.ciHigh, undefined: $0.undefined)
            }
        }
    }
    public var inputs: [Input]
    public var runs: [RunInfo]
    /// Metric name → exact convention (merged over the analyses).
    public var conventions: [String: String]
    /// One set of parameters an analysis ran with, and what it produced: the metrics and the inputs
    /// (`run [probe set, step]`, or two of them joined by ` x ` for cross-run CKA) of the records
    /// those parameters made. Distinct parameter sets of one analysis are separate variants, never merged.
    public struct ParameterVariant: Codable, Sendable, Equatable {
        public var parameters: [String: String]
        public var metrics: [String]
        public var inputs: [String]

        /// Groups reports of one command into variants: reports with equal parameters share one.
        public static func group(_ reports: [(parameters: [String: String], metrics: [String], input: String)]) -> [ParameterVariant] {
            var variants: [ParameterVariant] = []
            for r in reports {
                if let i = variants.firstIndex(where: { $0.parameters == r.parameters }) {
                    variants[i].metrics = Array(Set(variants[i].metrics + r.metrics)).sorted()
                    if !variants[i].inputs.contains(r.input) { variants[i].inputs.append(r.input) }
                } else {
                    variants.append(ParameterVariant(parameters: r.parameters, metrics: Array(Set(r.metrics)).sorted(), inputs: [r.input]))
                }
            }
            return variants
        }
    }
    /// Analysis parameters by analysis (command) name: one entry per distinct parameter set.
    public var parameters: [String: [ParameterVariant]]
    public var findings: [Finding]
    /// How the confidence intervals were computed (nil when none were).
    public var bootstrap: String?
    /// The measured chance level of every probe target: probe accuracy with shuffled labels.
    public var chance: [ChanceLevel]
    public var figures: [String]
    public var records: Int
    public var undefinedRecords: Int
    /// Skipped files, analyses that could not run, warnings of the analyses.
    public var notes: [String]
    /// Whether the findings' CKA checks hold under other similarity measures (nil in quick mode).
    public var measureRobustness: MeasureRobustness? = nil
}
