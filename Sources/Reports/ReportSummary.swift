import AnalysisCommands
import Foundation

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
    public var inputs: [Input]
    public var runs: [RunInfo]
    /// Metric name → exact convention (merged over the analyses).
    public var conventions: [String: String]
    /// Analysis parameters by analysis (command) name, merged.
    public var parameters: [String: [String: String]]
    public var findings: [Finding]
    public var figures: [String]
    public var records: Int
    public var undefinedRecords: Int
    /// Skipped files, analyses that could not run, warnings of the analyses.
    public var notes: [String]
}
