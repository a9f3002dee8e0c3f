/// A failure reading or writing an activation file, with the file and the object it concerns.
///
/// `description` is one line: `FILE: OBJECT: what is wrong`.
public struct ActivationStoreError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case notFound, isDirectory, notHDF5, cannotOpen, notBwact, schema, io, invalidArgument, damaged
    }

    public var kind: Kind
    public var file: String
    /// The HDF5 path concerned (`/layers/03/tokens`, `/ attr run`), when there is one.
    public var object: String?
    public var message: String

    public init(_ kind: Kind, file: String, object: String? = nil, _ message: String) {
        self.kind = kind
        self.file = file
        self.object = object
        self.message = message
    }

    public var description: String {
        if let object { return "\(file): \(object): \(message)" }
        return "\(file): \(message)"
    }
}

/// One way in which a file departs from the bwact/1 schema.
public struct SchemaViolation: Sendable, Equatable, CustomStringConvertible, Codable {
    /// The HDF5 object concerned, e.g. `/layers/02/tokens` or `/ attr block_ends`.
    public var object: String
    public var message: String
    /// False for findings that do not stop the file being read (e.g. NaN counts).
    public var blocksReading: Bool

    public init(_ object: String, _ message: String, blocksReading: Bool = true) {
        self.object = object
        self.message = message
        self.blocksReading = blocksReading
    }

    public var description: String { "\(object): \(message)" }
}

/// Text from files or command lines made safe to print on a terminal.
public enum TerminalText {
    /// `text` on one line with control characters escaped (`\u{1B}`): C0 and C1 controls (newlines
    /// included), DEL, and the bidirectional overrides that reorder a terminal line.
    public static func escaped(_ text: String) -> String {
        var out = ""
        for u in text.unicodeScalars {
            if u.value < 0x20 || (0x7F...0x9F).contains(u.value) || (0x202A...0x202E).contains(u.value)
                || (0x2066...0x2069).contains(u.value) {
                out += "\\u{\(String(u.value, radix: 16, uppercase: true))}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }
}
