/// A metric that has no value on the given data, with the reason.
///
/// Metrics throw this instead of returning NaN (zero variance, too few clips for an estimator,
/// a class with fewer clips than folds, non-finite input, ...). Callers record the reason in every
/// output format.
public struct MetricUndefined: Error, CustomStringConvertible, Sendable, Equatable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
