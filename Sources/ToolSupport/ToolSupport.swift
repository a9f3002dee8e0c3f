import ArgumentParser
import LinearAlgebra

// What both executables share of their command lines. Kept out of the libraries, which do not
// depend on swift-argument-parser.

/// A typed option value (`Checked` over an `ArgumentSyntax` type) as an ArgumentParser argument: it
/// always parses; the command's `validate()` calls `check()` to report a malformed value.
extension Checked: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
    public var defaultValueDescription: String { text }
}

extension ParsableCommand {
    /// The message of an error that a command's `validate()` threw from the library (a typed option's
    /// parse error, not an ArgumentParser usage error), or nil. The tools print it as their other
    /// errors: one `<tool>: error:` line, status 1.
    public static func libraryMessage(for error: any Error) -> String? {
        let message = message(for: error)
        return exitCode(for: error) == .failure && !message.isEmpty ? message : nil
    }
}
