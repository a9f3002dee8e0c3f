import LinearAlgebra

/// A permutation test of any similarity s(X, Y) of two representations of the same rows: how often a
/// random pairing of the rows, s(X, PY), is at least as similar as the real one.
///
/// p = (b + 1) / (m + 1), with b of the m permuted statistics ≥ the observed one (Phipson & Smyth
/// 2010: never 0, exact under the null). A permuted statistic within 1e-12 (relative) of the observed
/// one counts as a tie and so against the null's rejection. The statistic is the similarity form of a
/// measure (for Procrustes ‖X̂ᵀŶ‖_*, monotone in its distance and angle, so all three share one p).
/// The same m permutations (Fisher–Yates from `SeededGenerator(seed:)`) serve every pair; the
/// permuted statistics re-use each representation's fit (`Similarity.Subspace`, `.RDM`,
/// `.Neighbours`, a centred Gram matrix for CKA) and never refit.
public struct SimilarityPermutationTest: Sendable, Equatable {
    public var permutations: Int
    public var seed: UInt64

    public init(permutations: Int = 1000, seed: UInt64 = 0x5eed_9e37) {
        self.permutations = permutations
        self.seed = seed
    }

    /// The m row orders, each a uniformly random permutation of 0..<n.
    public func orders(rows n: Int) -> [[Int]] {
        var rng = SeededGenerator(seed: seed)
        return (0..<permutations).map { _ in
            var p = Array(0..<n)
            if n > 1 {
                for i in stride(from: n - 1, to: 0, by: -1) {
                    let j = Int(rng.next(below: UInt64(i + 1)))
                    p.swapAt(i, j)
                }
            }
            return p
        }
    }

    /// The observed statistic (`statistic(nil)`) and its p-value; the permutations run in parallel,
    /// one share per core.
    public func test(rows n: Int, statistic: @Sendable ([Int]?) throws -> Double) throws -> (observed: Double, p: Double) {
        let observed = try statistic(nil)
        let all = orders(rows: n)
        let shares = min(max(1, Parallel.threads), max(1, all.count))
        let counts = Parallel.map(shares) { s -> Result<Int, Error> in
            Result {
                var b = 0
                let lower = all.count * s / shares, upper = all.count * (s + 1) / shares
                let bar = observed - 1e-12 * max(1, abs(observed))
                for t in lower..<upper where try statistic(all[t]) >= bar { b += 1 }
                return b
            }
        }
        var b = 0
        for c in counts { b += try c.get() }
        return (observed, Double(b + 1) / Double(all.count + 1))
    }
}

extension Similarity {
    /// A representation's centred linear Gram matrix and its Frobenius norm, for the permutation test of
    /// linear CKA (biased): CKA(X, PY) = ⟨Kc, P Lc Pᵀ⟩ / (‖Kc‖ ‖Lc‖), since centring commutes with P.
    public struct CenteredGram: Sendable {
        public var gram: Matrix<Double>
        public var norm: Double
    }

    /// Centres the columns and forms K = XcXcᵀ (one syrk).
    public static func centeredGram(_ x: Matrix<Double>) throws -> CenteredGram {
        try checkRows(x, "CKA")
        var xc = x
        xc.subtractFromColumns(x.columnMeans())
        let k = Matrix.gramOfRows(xc)
        return CenteredGram(gram: k, norm: k.frobeniusNorm)
    }

    /// Biased linear CKA from two centred Gram matrices, the second's rows and columns permuted.
    public static func ckaSimilarity(_ a: CenteredGram, _ b: CenteredGram, permutation perm: [Int]? = nil) throws -> Double {
        let n = a.gram.rows
        guard b.gram.rows == n else { throw MetricUndefined("different numbers of rows (\(n) vs \(b.gram.rows))") }
        guard let perm else { return Matrix.frobeniusInner(a.gram, b.gram) / (a.norm * b.norm) }
        var sum = 0.0
        a.gram.storage.withUnsafeBufferPointer { ka in
            b.gram.storage.withUnsafeBufferPointer { lb in
                for i in 0..<n {
                    let row = lb.baseAddress! + perm[i] * n
                    var s = 0.0
                    for j in 0..<n { s += ka[i * n + j] * row[perm[j]] }
                    sum += s
                }
            }
        }
        return sum / (a.norm * b.norm)
    }
}
