// The shape check shared by the token-level metrics (PatchSimilarity.swift, TokenShift.swift).

/// Throws unless `count` is clips · tokens · features with clips ≥ 0 and tokens, features ≥ 1.
func checkTokenShape(metric: String, count: Int, clips: Int, tokens: Int, features: Int) throws {
    guard clips >= 0, tokens >= 1, features >= 1 else {
        throw MetricUndefined("\(metric): invalid shape clips \(clips), tokens \(tokens), features \(features)")
    }
    let (p1, o1) = clips.multipliedReportingOverflow(by: tokens)
    let (p2, o2) = p1.multipliedReportingOverflow(by: features)
    guard !o1, !o2, p2 == count else {
        throw MetricUndefined("\(metric): \(count) values do not match [clips \(clips), tokens \(tokens), features \(features)]")
    }
}
