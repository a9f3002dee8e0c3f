import Foundation

/// A failure of report generation, as one line.
public struct ReportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ message: String) { description = message }
}
