import ActivationStore
import Foundation
import LinearAlgebra
import RepresentationMetrics

/// One measured number (or an undefined one, with its reason): a row of the tidy output.
public struct MetricRecord: Codable, Sendable, Equatable {
    public var metric: String
    public var run: String
    public var file: String
    public var probeSet: String
    public var step: Int
    public var depth: Int?
    /// Second file's run and depth for pairwise metrics (CKA).
    public var runB: String?
    public var depthB: Int?
    public var target: String?
    public var head: Int?
    public var value: Double?
    /// Spread where the metric has one (std over folds).
    public var std: Double?
    /// Why `value` is missing.
    public var undefined: String?
    /// Bootstrap confidence interval of `value` over clips (see `Bootstrap`); nil when not computed.
    public var ciLow: Double?
    public var ciHigh: Double?
    /// Permutation-test p-value of a similarity (`SimilarityPermutationTest`) and the permutations
    /// behind it; nil when not tested (JSON only).
    public var pValue: Double?
    public var permutations: Int?
    /// The bootstrap replicates behind the interval, kept in memory for paired comparisons (not written
    /// to CSV or JSON).
    public var replicates: Replicates?

    /// Bootstrap replicate values of one record, with the number of clips they resampled.
    public struct Replicates: Sendable, Equatable {
        /// N, the clips resampled.
        public var clips: Int
        /// Which clips (`Bootstrap.weights(for:)`): records with the same key were resampled with the
        /// same clips, so their replicates pair up.
        public var clipSet: String
        /// One value per resample; nil where the statistic is undefined in that resample.
        public var values: [Double?]
        public init(clips: Int, clipSet: String? = nil, values: [Double?]) {
            self.clips = clips
            self.clipSet = clipSet ?? "order:\(clips)"
            self.values = values
        }
    }

    enum CodingKeys: String, CodingKey {
        case metric, run, file, probeSet, step, depth, runB, depthB, target, head, value, std, undefined, ciLow, ciHigh, pValue, permutations
    }

    /// Sets the replicates and, from them, the interval (nil when any replicate is undefined).
    public mutating func setBootstrap(_ values: [Double?], clips: Int, clipSet: String, bootstrap: Bootstrap) {
        guard self.value != nil else { return }
        replicates = Replicates(clips: clips, clipSet: clipSet, values: values)
        if let ci = bootstrap.interval(values) {
            ciLow = ci.low
            ciHigh = ci.high
        }
    }

    public init(metric: String, run: String, file: String, probeSet: String, step: Int, depth: Int? = nil,
                runB: String? = nil, depthB: Int? = nil, target: String? = nil, head: Int? = nil,
                value: Double? = nil, std: Double? = nil, undefined: String? = nil) {
        self.metric = metric
        self.run = run
        self.file = file
        self.probeSet = probeSet
        self.step = step
        self.depth = depth
        self.runB = runB
        self.depthB = depthB
        self.target = target
        self.head = head
        self.value = value
        self.std = std
        self.undefined = undefined
    }

    /// The columns that say what a record measured (its identity); two records with equal identities
    /// are the same measurement.
    public static let identityColumns = ["metric", "run", "file", "probe_set", "step", "depth", "run_b", "depth_b", "target", "head"]
    /// The columns of the measured value.
    public static let valueColumns = ["value", "std", "undefined"]

    /// The identity fields, as written to CSV (`identityColumns`).
    public var identity: [String] {
        [metric, run, file, probeSet, "\(step)", depth.map(String.init) ?? "", runB ?? "", depthB.map(String.init) ?? "",
         target ?? "", head.map(String.init) ?? ""]
    }

    /// One string per identity: records with equal keys are duplicates.
    public var key: String { identity.joined(separator: "\u{0}") }

    /// The value fields, as written to CSV (`valueColumns`): full precision, empty when absent.
    public var valueFields: [String] { [value.map(CSV.number) ?? "", std.map(CSV.number) ?? "", undefined ?? ""] }

    /// Sets `value`, or `undefined` when the computation throws.
    public mutating func measure(_ body: () throws -> Double) {
        do {
            let v = try body()
            if v.isFinite { value = v } else { undefined = "non-finite result" }
        } catch {
            undefined = "\(error)"
        }
    }
}

/// The outcome of one analysis command: parameters, conventions and records.
public struct MetricReport: Codable, Sendable {
    public var command: String
    public var tool: String = "bwanalyze \(bwsslVersion)"
    /// Parameters that produced the numbers (estimator, kernel, pooling, …).
    public var parameters: [String: String]
    /// The exact convention behind each metric name.
    public var conventions: [String: String]
    /// Input files with N, T, D and stored dtype.
    public var inputs: [InputDescription]
    public var records: [MetricRecord]
    public var warnings: [String] = []

    public init(command: String, parameters: [String: String], conventions: [String: String],
                inputs: [InputDescription], records: [MetricRecord], warnings: [String] = []) {
        self.command = command
        self.parameters = parameters
        self.conventions = conventions
        self.inputs = inputs
        self.records = records
        self.warnings = warnings
    }

    /// The columns of `csv`: the record's identity, then value, std and undefined.
    public static let csvColumns = MetricRecord.identityColumns + MetricRecord.valueColumns

    /// Tidy CSV, one row per record, with a header (columns: `csvColumns`).
    public var csv: String { CSV.document(header: MetricReport.csvColumns, rows: records.map { $0.identity + $0.valueFields }) }


    public func json() throws -> String { try encodeJSON(self) + "\n" }

    /// The `conventions` entries of `metrics`: each metric's name and convention text.
    public static func conventions(_ metrics: [Metric]) -> [String: String] {
        Dictionary(uniqueKeysWithValues: metrics.map { ($0.name, $0.convention) })
    }
}

/// What an analysis read.
public struct InputDescription: Codable, Sendable, Equatable {
    public var file: String
    public var run: String
    public var regime: String
    public var probeSet: String
    public var step: Int
    public var clips: Int
    public var tokens: Int
    public var features: Int
    public var dtype: String
    public var bytes: Int
}

extension InputDescription {
    public init(_ f: ActivationFile) {
        self.init(file: f.path, run: f.metadata.run, regime: f.metadata.regime, probeSet: f.metadata.probeSet,
                  step: f.metadata.step, clips: f.clipCount, tokens: f.tokenCount, features: f.featureCount,
                  dtype: Array(Set(f.tokenTypes.map(\.rawValue))).sorted().joined(separator: "/"), bytes: f.fileSize)
    }
}


