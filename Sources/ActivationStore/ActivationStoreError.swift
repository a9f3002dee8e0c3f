/// A failure reading or writing an activation file, with the file and the object it concerns.
///
/// `description` is one line: `FILE: OBJECT: what is wrong`.
public struct ActivationStoreError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case notFound, isDirectory, notHDF5, cannotOpen, notBwact, schema, io, invalidArgument
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
