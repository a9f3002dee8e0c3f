import ActivationStore
import LinearAlgebra
import RepresentationMetrics

extension Bootstrap {
    /// The N×B resample multiplicities for the clips of `f`, in `f`'s clip order, and the key of the clip
    /// set they resample.
    ///
    /// Resamples are drawn over a canonical order so that files holding the same clips share them, which
    /// pairs comparisons across runs: the clips sorted by `/clip_ids` when the file has ids (key: a hash of
    /// the sorted ids), otherwise the file's own order (key: `order:N`; files without ids must hold the
    /// same clips in the same order, as every cross-file analysis assumes).
    public func weights(for f: ActivationFile) throws -> (weights: Matrix<Double>, clipSet: String) {
        let n = f.clipCount
        let canonical = weights(clips: n)
        guard let ids = try f.clipIDs(), ids.count == n else { return (canonical, "order:\(n)") }
        let sorted = ids.indices.sorted { ids[$0] < ids[$1] }
        var rank = [Int](repeating: 0, count: n)
        for (r, i) in sorted.enumerated() { rank[i] = r }
        var w = Matrix<Double>(rows: n, cols: resamples)
        for i in 0..<n {
            for b in 0..<resamples { w[i, b] = canonical[rank[i], b] }
        }
        // FNV-1a over the sorted ids, each followed by a 0 byte.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in sorted {
            for byte in ids[i].utf8 + [0] { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        return (w, "ids:\(n):" + String(hash, radix: 16))
    }
}
