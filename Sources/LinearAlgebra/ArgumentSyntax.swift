import Foundation

/// Parses a comma-separated list such as `1,5,10` (spaces around elements allowed); nil when an element
/// does not parse, or when the list is empty unless `allowingEmpty`. The one list parser of both tools.
public func parseList<T: LosslessStringConvertible>(_ text: String, as: T.Type = T.self, allowingEmpty: Bool = false) -> [T]? {
    let parts = text.split(separator: ",").map { T($0.trimmingCharacters(in: .whitespaces)) }
    guard allowingEmpty || !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
    return parts.map { $0! }
}

/// A value with a command-line syntax of its own, whose parse error explains the syntax in the tool's
/// words (ArgumentParser could only say that the value is invalid).
public protocol ArgumentSyntax: Sendable {
    init(parsing text: String) throws
}

/// A typed command-line value: parsed as the arguments are read, a malformed one kept with its error
/// for the command's `validate()` to report (`try option.check()`). Each executable makes it
/// `ExpressibleByArgument`.
public struct Checked<Value: ArgumentSyntax>: Sendable {
    /// The text as given.
    public let text: String
    private let parsed: Result<Value, any Error>

    public init(_ text: String) {
        self.text = text
        parsed = Result { try Value(parsing: text) }
    }

    /// Throws the parse error of a malformed value.
    public func check() throws { _ = try parsed.get() }

    /// The parsed value; only after `check()` passed (`validate()` runs before `run()`).
    public var value: Value {
        guard case .success(let v) = parsed else { preconditionFailure("\(text): used before validate() checked it") }
        return v
    }
}
