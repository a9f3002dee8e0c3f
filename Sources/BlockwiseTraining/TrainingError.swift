/// A configuration or data problem found before or during training, as one line.
public struct TrainingError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ message: String) { description = message }
}
