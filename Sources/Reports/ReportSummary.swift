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
    /// Analysis parameters by analysis (command) name, merged.
    public var parameters: [String: [String: String]]
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
}
