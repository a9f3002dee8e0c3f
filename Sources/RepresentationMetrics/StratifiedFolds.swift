import LinearAlgebra

extension LinearProbe {
    /// Splits clip indices into `folds` stratified, shuffled folds and returns each fold's test indices, sorted.
    ///
    /// Scheme: classes are visited in ascending label order; one `SeededGenerator(seed:)` shuffles each
    /// class's indices in turn (Fisher–Yates, unbiased bounded integers by rejection), and the shuffled
    /// indices are dealt round-robin into the folds, the dealing position carrying over from one class to the
    /// next. So every class's count per fold differs by at most 1 between folds, and so do the fold sizes.
    /// This follows scikit-learn's `StratifiedKFold(shuffle=True)` in spirit (per-class balance, shuffled)
    /// but not its random permutation: the folds are not the ones scikit-learn would draw.
    ///
    /// Throws `MetricUndefined` when folds < 2, a label is negative, or a class that occurs has fewer
    /// clips than folds (some fold would miss it).
    ///
    /// - Parameters:
    ///   - labels: class index per clip (non-negative; absent class indices are allowed).
    ///   - folds: number of folds (≥ 2).
    ///   - seed: seed of the shuffle.
    /// - Complexity: O(N log N).
    public static func stratifiedFolds(labels: [Int], folds: Int, seed: UInt64) throws -> [[Int]] {
        guard folds >= 2 else { throw MetricUndefined("cross-validation needs at least 2 folds, got \(folds)") }
        if let bad = labels.firstIndex(where: { $0 < 0 }) {
            throw MetricUndefined("label of clip \(bad) is negative (\(labels[bad])); labels must be class indices ≥ 0")
        }
        // Grouped by distinct label (never an array sized by a label value: ids may be far above N).
        var byLabel: [Int: [Int]] = [:]
        for (i, label) in labels.enumerated() { byLabel[label, default: []].append(i) }
        let members = byLabel.keys.sorted().map { byLabel[$0]! }
        for (label, clips) in zip(byLabel.keys.sorted(), members) where clips.count < folds {
            throw MetricUndefined("class \(label) has \(clips.count) clip\(clips.count == 1 ? "" : "s"), "
                                  + "fewer than the \(folds) folds of stratified cross-validation")
        }
        var generator = SeededGenerator(seed: seed)
        var result = [[Int]](repeating: [], count: folds)
        var position = 0
        for var clips in members where !clips.isEmpty {
            shuffle(&clips, using: &generator)
            for index in clips {
                result[position].append(index)
                position = (position + 1) % folds
            }
        }
        return result.map { $0.sorted() }
    }

    /// Fisher–Yates shuffle with our own bounded draws, so the permutation for a seed never depends on the
    /// standard library's `shuffle(using:)` implementation.
    private static func shuffle(_ a: inout [Int], using generator: inout SeededGenerator) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            let j = Int(generator.next(below: UInt64(i + 1)))
            a.swapAt(i, j)
        }
    }
}
