import ActivationStore

/// Makes `b` hold the same clips as `a`, in `a`'s order, for a cross-file analysis.
///
/// When both files have `/clip_ids`, `b` is reordered by id; the id sets must be equal, and the
/// error names the first id (in `a`'s order, then `b`'s) that the other file lacks. When either
/// file lacks ids, the clips must already correspond: `checkSameClips` (same N, probe set and labels).
/// After aligning by id the probe-set and label checks still apply, on the aligned order.
///
/// - Returns: `b` itself, or `b` seen in `a`'s clip order.
public func alignClips(_ a: ActivationFile, _ b: ActivationFile, allowDifferentProbeSets: Bool = false) throws -> ActivationFile {
    guard let idsA = try a.clipIDs(), let idsB = try b.clipIDs() else {
        try checkSameClips(a, b, allowDifferentProbeSets: allowDifferentProbeSets)
        return b
    }
    var indexB: [String: Int] = [:]
    for (i, id) in idsB.enumerated() { indexB[id] = i }
    if let missing = idsA.first(where: { indexB[$0] == nil }) {
        throw AnalysisError("\(a.path) and \(b.path) do not hold the same clips: clip id '\(missing)' of \(a.path) is not in \(b.path)")
    }
    let setA = Set(idsA)
    if let missing = idsB.first(where: { !setA.contains($0) }) {
        throw AnalysisError("\(a.path) and \(b.path) do not hold the same clips: clip id '\(missing)' of \(b.path) is not in \(a.path)")
    }
    let order = idsA.map { indexB[$0]! }
    let aligned = order.elementsEqual(0..<order.count) ? b : try b.reordered(order)
    try checkSameClips(a, aligned, allowDifferentProbeSets: allowDifferentProbeSets)
    return aligned
}

/// Checks that two files hold the same clips in the same order (same N; same labels where both have a target).
public func checkSameClips(_ a: ActivationFile, _ b: ActivationFile, allowDifferentProbeSets: Bool = false) throws {
    guard a.clipCount == b.clipCount else {
        throw AnalysisError("\(a.path) and \(b.path) do not hold the same clips: N = \(a.clipCount) vs \(b.clipCount)")
    }
    if !allowDifferentProbeSets, a.metadata.probeSet != b.metadata.probeSet {
        throw AnalysisError("\(a.path) and \(b.path) come from different probe sets ('\(a.metadata.probeSet)' vs '\(b.metadata.probeSet)'); pass --allow-different-probe-sets if the clips really correspond")
    }
    for t in Set(a.targets).intersection(b.targets).sorted() {
        let la = try a.labels(t), lb = try b.labels(t)
        if let i = la.indices.first(where: { la[$0] != lb[$0] }) {
            throw AnalysisError("\(a.path) and \(b.path) do not hold the same clips: labels '\(t)' differ at clip \(i) (\(la[i]) vs \(lb[i]))")
        }
    }
}
