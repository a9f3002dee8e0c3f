import LinearAlgebra

extension CKA {
    /// Bootstrap replicates of biased linear CKA between pairs of representations, resampling rows.
    ///
    /// For a resample with multiplicities w (a column of `weights`, Σw = N) the resampled rows X' hold
    /// row i of X wᵢ times, and with K = XXᵀ (K' = X'X'ᵀ, H the centring matrix)
    ///
    ///     tr(K'HL'H) = wᵀ(K∘L)w − (2/N) Σᵢ wᵢ (Kw)ᵢ (Lw)ᵢ + (wᵀKw)(wᵀLw)/N²,
    ///
    /// so CKA(X', Y') = tr(K'HL'H) / sqrt(tr(K'HK'H) · tr(L'HL'H)) — exactly the biased linear CKA of
    /// the resampled rows — comes from the products KW, LW, (K∘K)W, (L∘L)W and (K∘L)W (one gemm each,
    /// over all B resamples at once). Each X is first centred by its column means over all N rows (CKA
    /// is unchanged by translating every row by one vector; this only avoids cancellation).
    ///
    /// - Parameters:
    ///   - representations: N×Dₘ matrices on the same N rows (clip vectors).
    ///   - pairs: which representations to compare.
    ///   - weights: N×B multiplicities (`Bootstrap.weights(clips:)`).
    /// - Returns: per pair, B replicate values; nil where a resampled representation has no variance.
    /// - Complexity: O(N²·D) per representation for its Gram matrix and O(N²·B) per representation and
    ///   per pair; memory O(N²) per representation held (formed at its first pair, released after its last).
    public static func linearBootstrap(_ representations: [Matrix<Double>], pairs: [CKAPair],
                                       weights: Matrix<Double>) -> [[Double?]] {
        let n = weights.rows, b = weights.cols
        // Each representation's Gram matrix K and KW are formed when a pair first needs them and released
        // after the last pair using them (pairs in the order given): for consecutive pairs a few N×N
        // matrices are held at a time, not every representation's.
        var remaining: [Int: Int] = [:]
        for p in pairs { remaining[p.a, default: 0] += 1; remaining[p.b, default: 0] += 1 }
        var grams: [Int: Matrix<Double>] = [:]
        var kw: [Int: Matrix<Double>] = [:]        // K W, N×B
        var selfHSIC: [Int: [Double]] = [:]       // tr(K'HK'H) per resample
        var sums: [Int: [Double]] = [:]           // wᵀKw per resample
        func form(_ m: Int) {
            guard grams[m] == nil else { return }
            var x = representations[m]
            precondition(x.rows == n, "representation \(m) has \(x.rows) rows, weights have \(n)")
            let mean = x.columnMeans()
            for i in 0..<x.rows { for j in 0..<x.cols { x.storage[i * x.cols + j] -= mean[j] } }
            let k = Matrix.gramOfRows(x)
            let kwm = Matrix.product(k, weights)
            grams[m] = k
            kw[m] = kwm
            sums[m] = columnDots(weights, kwm)
            selfHSIC[m] = hsicReplicates(k, k, kwm, kwm, sums[m]!, sums[m]!, weights)
        }
        func release(_ m: Int) {
            remaining[m]! -= 1
            if remaining[m] == 0 {
                grams[m] = nil
                kw[m] = nil
            }
        }
        return pairs.map { p in
            form(p.a)
            form(p.b)
            let h = hsicReplicates(grams[p.a]!, grams[p.b]!, kw[p.a]!, kw[p.b]!, sums[p.a]!, sums[p.b]!, weights)
            let (sa, sb) = (selfHSIC[p.a]!, selfHSIC[p.b]!)
            release(p.a)
            release(p.b)
            return (0..<b).map { r -> Double? in
                let d = sa[r] * sb[r]
                // A resampled representation without variance (e.g. all draws of one clip): undefined.
                guard sa[r] > 0, sb[r] > 0, d > 0 else { return nil }
                return h[r] / d.squareRoot()
            }
        }
    }

    /// Per resample: tr(K'HL'H) by the identity in `linearBootstrap`.
    private static func hsicReplicates(_ k: Matrix<Double>, _ l: Matrix<Double>, _ kw: Matrix<Double>, _ lw: Matrix<Double>,
                                       _ kSum: [Double], _ lSum: [Double], _ w: Matrix<Double>) -> [Double] {
        let n = w.rows, b = w.cols
        var hadamard = k
        for i in hadamard.storage.indices { hadamard.storage[i] *= l.storage[i] }
        let hw = Matrix.product(hadamard, w)
        let quadratic = columnDots(w, hw)
        var cross = [Double](repeating: 0, count: b)  // Σᵢ wᵢ (Kw)ᵢ (Lw)ᵢ
        for i in 0..<n {
            for r in 0..<b { cross[r] += w.storage[i * b + r] * kw.storage[i * b + r] * lw.storage[i * b + r] }
        }
        let nn = Double(n)
        return (0..<b).map { r in quadratic[r] - 2 / nn * cross[r] + kSum[r] * lSum[r] / (nn * nn) }
    }

    /// Σᵢ a[i, r]·c[i, r] for every column r.
    private static func columnDots(_ a: Matrix<Double>, _ c: Matrix<Double>) -> [Double] {
        let b = a.cols
        var out = [Double](repeating: 0, count: b)
        for i in 0..<a.rows {
            for r in 0..<b { out[r] += a.storage[i * b + r] * c.storage[i * b + r] }
        }
        return out
    }
}
