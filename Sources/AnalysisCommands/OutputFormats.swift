import ActivationStore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

// The writers of every output format, shared by the subcommands and the report: CSV, JSON and text
// tables, and where the text goes (a file written atomically, or standard output).

/// CSV as RFC 4180 writes it: fields holding a comma, a double quote, CR or LF are quoted, with quotes
/// doubled; rows end with LF.
public enum CSV {
    /// One field, quoted when it must be.
    public static func escape(_ s: String) -> String {
        // Unicode scalars, not Characters: "\r\n" is one Character and would hide both.
        guard s.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A header line and one line per row.
    public static func document(header: [String], rows: [[String]]) -> String {
        ([header] + rows).map { $0.map(escape).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    /// A number at full precision: the shortest representation that reads back to the same Double.
    public static func number(_ v: Double) -> String { "\(v)" }
}

/// JSON encoding shared by the subcommands: sorted keys, pretty-printed, snake_case.
public func encodeJSON<T: Encodable>(_ value: T) throws -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    e.keyEncodingStrategy = .convertToSnakeCase
    return String(decoding: try e.encode(value), as: UTF8.self)
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
