import ActivationStore
import Foundation
import LinearAlgebra
import RepresentationMetrics
#if canImport(Glibc)
import Glibc
#endif

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
        case metric, run, file, probeSet, step, depth, runB, depthB, target, head, value, std, undefined, ciLow, ciHigh
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

    public static let csvColumns = ["metric", "run", "file", "probe_set", "step", "depth", "run_b", "depth_b",
                                    "target", "head", "value", "std", "undefined"]

    /// Tidy CSV, one row per record, with a header (columns: `csvColumns`).
    public var csv: String {
        var lines = [MetricReport.csvColumns.joined(separator: ",")]
        for r in records {
            let fields: [String] = [r.metric, r.run, r.file, r.probeSet, "\(r.step)", r.depth.map(String.init) ?? "",
                                    r.runB ?? "", r.depthB.map(String.init) ?? "", r.target ?? "", r.head.map(String.init) ?? "",
                                    r.value.map(formatFull) ?? "", r.std.map(formatFull) ?? "", r.undefined ?? ""]
            lines.append(fields.map(csvEscape).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public func json() throws -> String { try encodeJSON(self) + "\n" }
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

/// Full precision, shortest round-trip representation.
func formatFull(_ v: Double) -> String { "\(v)" }

func csvEscape(_ s: String) -> String {
    if s.contains(",") || s.contains("\"") || s.contains("\n") {
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
    return s
}

/// Output formats of the analysis subcommands.
public enum OutputFormat: String, Sendable, CaseIterable {
    case table, csv, json
}

/// Writes text to `path` atomically (temporary file beside it, then rename), or to stdout when nil.
public func emit(_ text: String, to path: String?) throws {
    guard let path else {
        StandardOutput.write(text)
        return
    }
    try AtomicFile.write(Data(text.utf8), to: path)
}

/// A plain text table with aligned columns.
public struct TextTable {
    public var header: [String]
    public var rows: [[String]]
    public init(header: [String], rows: [[String]] = []) {
        self.header = header
        self.rows = rows
    }

    /// Columns right-aligned except the first `leftColumns`.
    public func render(leftColumns: Int = 1) -> String {
        let all = [header] + rows
        let widths = header.indices.map { c in all.map { $0.indices.contains(c) ? $0[c].count : 0 }.max() ?? 0 }
        func line(_ r: [String]) -> String {
            r.enumerated().map { c, s in
                let pad = String(repeating: " ", count: max(0, widths[c] - s.count))
                return c < leftColumns ? s + pad : pad + s
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        return ([line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")] + rows.map(line))
            .joined(separator: "\n") + "\n"
    }
}

/// A value for a text table: 4 decimals, or `n/a` for undefined records.
public func cell(_ r: MetricRecord, digits: Int = 4) -> String {
    guard let v = r.value else { return "n/a" }
    var s = String(format: "%.\(digits)f", v)
    if let sd = r.std { s += String(format: " ± %.\(digits)f", sd) }
    return s
}

/// Standard output written with write(2), remembering the first failure (FileHandle traps on one, and
/// print loses it). The executables check `failure` once at exit; a closed pipe raises SIGPIPE.
public enum StandardOutput {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var error: Int32 = 0

    /// The errno of the first failed write, if any.
    public static var failure: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return error == 0 ? nil : error
    }

    /// Writes `text` in full, or records why it could not (later writes are skipped).
    public static func write(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        guard error == 0 else { return }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                error = errno
                return
            }
            bytes = bytes.dropFirst(n)
        }
    }

    /// `print` through `write(_:)`.
    public static func print(_ text: String, terminator: String = "\n") { write(text + terminator) }
}
