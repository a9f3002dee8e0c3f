import LinearAlgebra
import Numerics

/// How RSA turns clip vectors into a representational dissimilarity matrix (RDM).
public enum RDMDistance: String, Sendable, Codable, CaseIterable {
    /// 1 − Pearson correlation between two clip vectors (each centred over its features).
    case correlation
    /// 1 − cosine similarity.
    case cosine
    /// Euclidean distance. rsatoolbox's `euclidean` is the squared distance over D, a monotone function
    /// of this one, so rank comparisons of the two agree.
    case euclidean
}

/// How RSA compares two RDMs over their upper triangles.
public enum RDMComparison: String, Sendable, Codable, CaseIterable {
    /// Spearman's ρ: Pearson correlation of the average ranks.
    case spearman
    /// Kendall's τ_a: (concordant − discordant) / (M(M − 1)/2), ties counting as neither.
    case kendall
}

/// Options of the similarity measures beyond CKA (`bwanalyze similarity`).
public struct SimilarityOptions: Sendable, Equatable, Codable {
    /// Partial whitening of Procrustes (Williams et al. 2021), α ∈ [0, 1]: 1 is plain Procrustes,
    /// 0 whitens fully (the CCA-like end).
    public var alpha: Double = 1
    /// SVCCA keeps the fewest leading singular directions that explain this fraction of the variance.
    public var svccaVariance: Double = 0.99
    public var rdm: RDMDistance = .correlation
    public var rdmComparison: RDMComparison = .spearman
    /// Neighbours per clip of mutual k-NN alignment.
    public var neighbours: Int = 10

    public init() {}

    /// Throws when an option is out of range.
    public func validate() throws {
        guard alpha >= 0, alpha <= 1 else { throw MetricUndefined("--alpha must lie in [0, 1], got \(alpha)") }
        guard svccaVariance > 0, svccaVariance <= 1 else { throw MetricUndefined("--svcca-variance must lie in (0, 1], got \(svccaVariance)") }
        guard neighbours >= 1 else { throw MetricUndefined("--neighbours must be at least 1, got \(neighbours)") }
    }
}

/// Representational similarity measures besides CKA, on two representations of the same N rows
/// (clip vectors): Procrustes shape distance with partial whitening, SVCCA, PWCCA, RSA and mutual
/// k-nearest-neighbour alignment.
///
/// Each measure is computed in two steps, so that a depth is prepared once however many pairs it is
/// in: a per-representation fit (`Subspace`, `RDM`, `Neighbours`) and a cheap pairwise step. The
/// pairwise steps also take a row permutation of the second representation, which the permutation
/// test (`SimilarityPermutationTest`) uses instead of refitting.
///
/// Rank: directions whose squared singular value is at or below max(N, D) · ε · s₁² (the resolution
/// of the Gram eigendecomposition `subspace` uses) count as zero and are dropped.
public enum Similarity {
    // MARK: checks shared by every measure

    /// Throws `MetricUndefined` for fewer than 2 rows, NaN/Inf, or rows constant up to float32 rounding.
    static func checkRows(_ x: Matrix<Double>, _ name: String) throws {
        guard x.rows >= 2 else { throw MetricUndefined("\(name) needs at least 2 rows, got \(x.rows)") }
        guard x.nonFiniteCount == 0 else { throw MetricUndefined("NaN or Inf in the data") }
        let means = x.columnMeans()
        var centred = 0.0, squares = 0.0
        for i in 0..<x.rows {
            for j in 0..<x.cols {
                let v = x[i, j]
                squares += v * v
                centred += (v - means[j]) * (v - means[j])
            }
        }
        if ConstantRows.areConstant(centredTrace: centred, squaredNormSum: squares, count: x.rows) {
            throw MetricUndefined("zero variance (all rows equal up to float32 rounding)")
        }
    }

    /// `values` rounded to a grid of `scale` · 2⁻⁴⁰ (ties to even, as numpy's `round`), so that values
    /// equal up to rounding (duplicate rows computed in different places of a BLAS product) are equal
    /// before they are ranked or compared; distinct values closer than about 1e-12 · `scale` become
    /// ties too.
    public static func quantized(_ v: Double, scale: Double) -> Double {
        guard scale > 0 else { return v }
        let q = scale * 0x1p-40
        return (v / q).rounded(.toNearestOrEven) * q
    }

    // MARK: subspace fits (Procrustes, SVCCA, PWCCA)

    /// The thin SVD of a representation's centred rows, Xc = U · diag(s) · Vᵀ, cut at the numerical rank.
    public struct Subspace: Sendable {
        /// N × r, orthonormal columns.
        public var u: Matrix<Double>
        /// r singular values, descending, all above the rank tolerance.
        public var s: [Double]
        /// r × D.
        public var vt: Matrix<Double>
        public var rank: Int { s.count }
    }

    /// Centres the columns and takes the thin SVD through the eigendecomposition of the smaller Gram
    /// matrix (LAPACK `dsyevd` of XcᵀXc, D × D, or of XcXcᵀ, N × N, when N < D; a fifth of the cost of
    /// `dgesdd` on 1100 × 384), dropping directions whose squared singular value is at or below
    /// max(N, D) · ε · s₁² (what the eigendecomposition resolves).
    /// - Throws: `MetricUndefined` for fewer than 2 rows, NaN/Inf or constant rows.
    public static func subspace(_ x: Matrix<Double>) throws -> Subspace {
        try checkRows(x, "a subspace fit")
        var xc = x
        xc.subtractFromColumns(x.columnMeans())
        let n = x.rows, d = x.cols
        let wide = n < d
        let eig = try (wide ? Matrix.gramOfRows(xc) : Matrix.gramOfColumns(xc)).symmetricEigen(vectors: true)
        let m = eig.values.count
        let largest = max(0, eig.values.last ?? 0)
        let tol = Double(max(n, d)) * Double.ulpOfOne * largest
        // Descending eigenvalues above the tolerance.
        let kept = (0..<m).reversed().filter { eig.values[$0] > tol }
        guard !kept.isEmpty else { throw MetricUndefined("zero variance (all rows equal up to float32 rounding)") }
        let r = kept.count
        let sv = kept.map { eig.values[$0].squareRoot() }
        var basis = Matrix<Double>(rows: m, cols: r)
        for i in 0..<m { for (t, j) in kept.enumerated() { basis[i, t] = eig.vectors[i, j] } }
        if wide {
            // Eigenvectors of XcXcᵀ are U; V = XcᵀU / s.
            var v = Matrix.product(xc, basis, transposeA: true)
            for i in 0..<d { for t in 0..<r { v[i, t] /= sv[t] } }
            return Subspace(u: basis, s: sv, vt: v.transposed)
        }
        // Eigenvectors of XcᵀXc are V; U = XcV / s.
        var u = Matrix.product(xc, basis)
        for i in 0..<n { for t in 0..<r { u[i, t] /= sv[t] } }
        return Subspace(u: u, s: sv, vt: basis.transposed)
    }

    /// Uᵀ_a · U_b[perm] (r_a × r_b): the rows of b's basis taken in the order `perm` (nil: as they are).
    static func crossProduct(_ a: Matrix<Double>, _ b: Matrix<Double>, permutation perm: [Int]?) -> Matrix<Double> {
        let ub = perm.map { b.rows(at: $0) } ?? b
        return Matrix.product(a, ub, transposeA: true)
    }

    /// Procrustes similarity ‖X̂ᵀŶ‖_* ∈ [0, 1] of the partially whitened, centred, unit-Frobenius-norm
    /// representations (Williams et al. 2021): whitening with α scales each singular value s to
    /// α·s + (1 − α) (netrep's transform (αI + (1 − α)(XcᵀXc)^{-1/2}) in the SVD basis; its overall
    /// rescaling does not matter after the norm is set to 1).
    public static func procrustesSimilarity(_ a: Subspace, _ b: Subspace, alpha: Double, permutation: [Int]? = nil) throws -> Double {
        let sa = a.s.map { alpha * $0 + (1 - alpha) }, sb = b.s.map { alpha * $0 + (1 - alpha) }
        let na = sa.reduce(0) { $0 + $1 * $1 }.squareRoot(), nb = sb.reduce(0) { $0 + $1 * $1 }.squareRoot()
        var m = crossProduct(a.u, b.u, permutation: permutation)
        for i in 0..<m.rows {
            for j in 0..<m.cols { m[i, j] *= sa[i] * sb[j] / (na * nb) }
        }
        let nuclear = try m.singularValues().reduce(0, +)
        return min(1, max(0, nuclear))
    }

    /// Procrustes shape distance and angle between two representations of the same rows:
    /// d = √(2 − 2‖X̂ᵀŶ‖_*) and θ = arccos ‖X̂ᵀŶ‖_* (radians), X̂ centred, partially whitened with
    /// α and scaled to unit Frobenius norm.
    /// - Throws: `MetricUndefined` for different row counts, fewer than 2 rows, NaN/Inf or constant rows.
    public static func procrustes(_ x: Matrix<Double>, _ y: Matrix<Double>, alpha: Double = 1) throws -> (distance: Double, angle: Double) {
        try sameRows(x, y)
        let s = try procrustesSimilarity(subspace(x), subspace(y), alpha: alpha)
        return (procrustesDistance(similarity: s), procrustesAngle(similarity: s))
    }

    public static func procrustesDistance(similarity s: Double) -> Double { (2 - 2 * min(1, max(0, s))).squareRoot() }
    public static func procrustesAngle(similarity s: Double) -> Double { Double.acos(min(1, max(0, s))) }

    /// Canonical correlations of two column spaces: the singular values of U_aᵀU_b, clamped to [0, 1].
    static func canonicalCorrelations(_ a: Matrix<Double>, _ b: Matrix<Double>, permutation: [Int]?) throws -> [Double] {
        try crossProduct(a, b, permutation: permutation).singularValues().map { min(1, max(0, $0)) }
    }

    /// The number of leading directions SVCCA keeps: the fewest whose squared singular values reach
    /// `variance` of their sum.
    public static func svccaKeep(_ s: [Double], variance: Double) -> Int {
        let total = s.reduce(0) { $0 + $1 * $1 }
        var sum = 0.0
        for (i, v) in s.enumerated() {
            sum += v * v
            if sum >= variance * total * (1 - 1e-12) { return i + 1 }
        }
        return s.count
    }

    /// SVCCA similarity of two subspace fits: the mean canonical correlation between the leading
    /// singular directions that explain `variance` of each representation's variance.
    public static func svccaSimilarity(_ a: Subspace, _ b: Subspace, variance: Double, permutation: [Int]? = nil) throws -> Double {
        let ka = svccaKeep(a.s, variance: variance), kb = svccaKeep(b.s, variance: variance)
        let rho = try canonicalCorrelations(a.u.columns(0..<ka), b.u.columns(0..<kb), permutation: permutation)
        return rho.reduce(0, +) / Double(rho.count)
    }

    /// SVCCA (Raghu et al. 2017): centre, keep the leading singular directions explaining `variance`
    /// (default 99%) of each representation's variance, then CCA between them; the mean of the
    /// min(k_x, k_y) canonical correlations.
    public static func svcca(_ x: Matrix<Double>, _ y: Matrix<Double>, variance: Double = 0.99) throws -> Double {
        try sameRows(x, y)
        return try svccaSimilarity(subspace(x), subspace(y), variance: variance)
    }

    /// PWCCA similarity of two subspace fits, weights from the first (`a`).
    public static func pwccaSimilarity(_ a: Subspace, _ b: Subspace, permutation: [Int]? = nil) throws -> Double {
        let m = crossProduct(a.u, b.u, permutation: permutation)
        let svd = try m.singularValueDecomposition()
        let count = min(a.rank, b.rank)
        // Canonical variates of X: H = U_a · W (W the left singular vectors of U_aᵀU_b), unit norm.
        // Their projections on X's centred neurons: HᵀXc = Wᵀ · diag(s_a) · V_aᵀ (count × D).
        var ws = Matrix<Double>(rows: count, cols: a.rank)
        for i in 0..<count { for l in 0..<a.rank { ws[i, l] = svd.u[l, i] * a.s[l] } }
        let projections = Matrix.product(ws, a.vt)
        var weights = [Double](repeating: 0, count: count)
        for i in 0..<count {
            var sum = 0.0
            for j in 0..<projections.cols { sum += abs(projections[i, j]) }
            weights[i] = sum
        }
        let total = weights.reduce(0, +)
        guard total > 0 else { throw MetricUndefined("PWCCA weights sum to 0") }
        var value = 0.0
        for i in 0..<count { value += weights[i] * min(1, max(0, svd.singularValues[i])) }
        return value / total
    }

    /// PWCCA (Morcos et al. 2018): the canonical correlations ρᵢ of the centred representations, weighted
    /// by how much of X each canonical variate hᵢ accounts for, αᵢ = Σⱼ |⟨hᵢ, xⱼ⟩| over X's centred
    /// columns (neurons) xⱼ: Σ αᵢρᵢ / Σ αᵢ. The weights come from the first argument, so
    /// pwcca(X, Y) ≠ pwcca(Y, X) in general.
    public static func pwcca(_ x: Matrix<Double>, _ y: Matrix<Double>) throws -> Double {
        try sameRows(x, y)
        return try pwccaSimilarity(subspace(x), subspace(y))
    }

    // MARK: RSA

    /// A representation's RDM: the upper triangle (i < j, row-major) and, for Spearman, its average
    /// ranks centred and scaled to unit norm.
    public struct RDM: Sendable {
        public var rows: Int
        public var values: [Double]
        /// Centred, unit-norm average ranks of `values` (Spearman only).
        public var ranks: [Double]?
    }

    /// Index of the pair (i, j), i ≠ j, in the row-major upper triangle of an n × n matrix.
    @inline(__always)
    static func pairIndex(_ i: Int, _ j: Int, _ n: Int) -> Int {
        let a = min(i, j), b = max(i, j)
        return a * (2 * n - a - 1) / 2 + (b - a - 1)
    }

    /// The RDM of clip vectors under `distance` (one Gram matrix through BLAS), its entries rounded to a
    /// grid of 2⁻⁴⁰ of the largest (`quantized`, so entries equal up to rounding tie), prepared for
    /// `comparison`.
    /// - Throws: `MetricUndefined` for fewer than 3 rows, NaN/Inf, a clip vector with no spread (correlation)
    ///   or zero norm (cosine), or an RDM with every entry equal.
    public static func rdm(_ x: Matrix<Double>, distance: RDMDistance, comparison: RDMComparison) throws -> RDM {
        let n = x.rows
        guard n >= 3 else { throw MetricUndefined("RSA needs at least 3 rows (2 RDM entries), got \(n)") }
        guard x.nonFiniteCount == 0 else { throw MetricUndefined("NaN or Inf in the data") }
        var z = x
        if distance != .euclidean {
            for i in 0..<n {
                var mean = 0.0
                if distance == .correlation {
                    for j in 0..<x.cols { mean += x[i, j] }
                    mean /= Double(x.cols)
                }
                var norm = 0.0
                for j in 0..<x.cols {
                    z[i, j] = x[i, j] - mean
                    norm += z[i, j] * z[i, j]
                }
                guard norm > 0 else {
                    throw MetricUndefined(distance == .correlation ? "clip vector \(i) has the same value in every feature: its correlation distance is undefined"
                                                                  : "clip vector \(i) is zero: its cosine distance is undefined")
                }
                let scale = 1 / norm.squareRoot()
                for j in 0..<x.cols { z[i, j] *= scale }
            }
        }
        let g = Matrix.gramOfRows(z)
        var values = [Double](repeating: 0, count: n * (n - 1) / 2)
        var k = 0
        for i in 0..<n {
            for j in (i + 1)..<n {
                values[k] = distance == .euclidean ? max(0, g[i, i] + g[j, j] - 2 * g[i, j]).squareRoot() : 1 - g[i, j]
                k += 1
            }
        }
        // Entries equal up to rounding are made equal (ties), on a grid relative to the largest entry.
        let scale = values.reduce(0) { max($0, abs($1)) }
        for i in values.indices { values[i] = quantized(values[i], scale: scale) }
        var result = RDM(rows: n, values: values, ranks: nil)
        if comparison == .spearman {
            var r = averageRanks(values)
            let mean = r.reduce(0, +) / Double(r.count)
            var norm = 0.0
            for i in r.indices { r[i] -= mean; norm += r[i] * r[i] }
            guard norm > 0 else { throw MetricUndefined("every RDM entry is equal: rank correlation is undefined") }
            let scale = 1 / norm.squareRoot()
            for i in r.indices { r[i] *= scale }
            result.ranks = r
        } else if values.allSatisfy({ $0 == values[0] }) {
            throw MetricUndefined("every RDM entry is equal: rank correlation is undefined")
        }
        return result
    }

    /// Average ranks (1-based; tied values share the mean of their ranks), as scipy's `rankdata`.
    public static func averageRanks(_ v: [Double]) -> [Double] {
        let order = v.indices.sorted { v[$0] < v[$1] || (v[$0] == v[$1] && $0 < $1) }
        var ranks = [Double](repeating: 0, count: v.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && v[order[j + 1]] == v[order[i]] { j += 1 }
            let r = Double(i + j) / 2 + 1
            for t in i...j { ranks[order[t]] = r }
            i = j + 1
        }
        return ranks
    }

    /// Kendall's τ_a of two equally long vectors in O(M log M) (Knight 1966): (n_c − n_d) / (M(M−1)/2).
    public static func kendallTauA(_ x: [Double], _ y: [Double]) -> Double {
        let m = x.count
        precondition(y.count == m, "Kendall's tau needs vectors of equal length")
        guard m >= 2 else { return .nan }
        var order = Array(0..<m)
        order.sort { x[$0] < x[$1] || (x[$0] == x[$1] && y[$0] < y[$1]) }
        func tiedPairs(_ equal: (Int, Int) -> Bool, _ seq: [Int]) -> Int {
            var total = 0, run = 1
            for k in 1..<seq.count {
                if equal(seq[k - 1], seq[k]) { run += 1 } else { total += run * (run - 1) / 2; run = 1 }
            }
            return total + run * (run - 1) / 2
        }
        let n1 = tiedPairs({ x[$0] == x[$1] }, order)
        let n3 = tiedPairs({ x[$0] == x[$1] && y[$0] == y[$1] }, order)
        // Merge sort of y in x order, counting strict inversions (pairs later in x order with smaller y).
        var ys = order.map { y[$0] }
        var buffer = ys
        var swaps = 0
        var width = 1
        while width < m {
            var lo = 0
            while lo < m {
                let mid = min(lo + width, m), hi = min(lo + 2 * width, m)
                var i = lo, j = mid, k = lo
                while i < mid && j < hi {
                    if ys[j] < ys[i] { buffer[k] = ys[j]; j += 1; swaps += mid - i } else { buffer[k] = ys[i]; i += 1 }
                    k += 1
                }
                while i < mid { buffer[k] = ys[i]; i += 1; k += 1 }
                while j < hi { buffer[k] = ys[j]; j += 1; k += 1 }
                lo = hi
            }
            swap(&ys, &buffer)
            width *= 2
        }
        let n2 = tiedPairs({ ys[$0] == ys[$1] }, Array(0..<m))
        let n0 = m * (m - 1) / 2
        return Double(n0 - n1 - n2 + n3 - 2 * swaps) / Double(n0)
    }

    /// RSA similarity of two prepared RDMs (the second's rows permuted by `permutation`, when given).
    public static func rsaSimilarity(_ a: RDM, _ b: RDM, comparison: RDMComparison, permutation perm: [Int]? = nil) throws -> Double {
        guard a.rows == b.rows else { throw MetricUndefined("different numbers of rows (\(a.rows) vs \(b.rows))") }
        let n = a.rows
        switch comparison {
        case .spearman:
            guard let ra = a.ranks, let rb = b.ranks else { throw MetricUndefined("the RDMs were prepared for Kendall's tau") }
            guard let perm else { return zip(ra, rb).reduce(0) { $0 + $1.0 * $1.1 } }
            // Permuting rows permutes the entries: the ranks move with them and need no recomputing.
            var sum = 0.0, k = 0
            for i in 0..<n {
                let pi = perm[i]
                for j in (i + 1)..<n {
                    sum += ra[k] * rb[pairIndex(pi, perm[j], n)]
                    k += 1
                }
            }
            return sum
        case .kendall:
            guard let perm else { return kendallTauA(a.values, b.values) }
            var permuted = [Double](repeating: 0, count: b.values.count)
            var k = 0
            for i in 0..<n { for j in (i + 1)..<n { permuted[k] = b.values[pairIndex(perm[i], perm[j], n)]; k += 1 } }
            return kendallTauA(a.values, permuted)
        }
    }

    /// RSA: RDMs of 1 − Pearson correlation (or cosine, Euclidean) between clip vectors, compared by
    /// Spearman's ρ (or Kendall's τ_a) over the upper triangles.
    public static func rsa(_ x: Matrix<Double>, _ y: Matrix<Double>, distance: RDMDistance = .correlation,
                           comparison: RDMComparison = .spearman) throws -> Double {
        try sameRows(x, y)
        return try rsaSimilarity(rdm(x, distance: distance, comparison: comparison), rdm(y, distance: distance, comparison: comparison),
                                 comparison: comparison)
    }

    // MARK: mutual k-NN

    /// Each row's k cosine nearest neighbours (self excluded), sorted by index: n × k indices.
    public struct Neighbours: Sendable {
        public var rows: Int
        public var k: Int
        public var indices: [Int32]
    }

    /// The k nearest neighbours of every row by cosine similarity, self excluded; similarities are
    /// first rounded to a grid of 2⁻⁴⁰ (`quantized`), and of equal ones the lower index wins. Similarities come from Gram blocks (BLAS), 512 rows at a time.
    /// - Throws: `MetricUndefined` when N ≤ k, for NaN/Inf, or a zero clip vector.
    public static func neighbours(_ x: Matrix<Double>, k: Int) throws -> Neighbours {
        let n = x.rows
        guard k >= 1 else { throw MetricUndefined("k must be at least 1") }
        guard n > k else { throw MetricUndefined("mutual k-NN needs more than k = \(k) rows, got \(n)") }
        guard x.nonFiniteCount == 0 else { throw MetricUndefined("NaN or Inf in the data") }
        var norms = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var s = 0.0
            for j in 0..<x.cols { s += x[i, j] * x[i, j] }
            guard s > 0 else { throw MetricUndefined("clip vector \(i) is zero: its cosine neighbours are undefined") }
            norms[i] = s.squareRoot()
        }
        var out = [Int32](repeating: 0, count: n * k)
        let block = 512
        for start in stride(from: 0, to: n, by: block) {
            let rows = x.rows(start..<min(start + block, n))
            let g = Matrix.product(rows, x, transposeB: true)
            for r in 0..<rows.rows {
                let i = start + r
                // The k best so far, best first: (similarity, index).
                var best: [(Double, Int)] = []
                best.reserveCapacity(k + 1)
                for j in 0..<n where j != i {
                    let s = quantized(g[r, j] / (norms[i] * norms[j]), scale: 1)
                    if best.count == k, let last = best.last, !(s > last.0) { continue }
                    var pos = best.count
                    while pos > 0 && s > best[pos - 1].0 { pos -= 1 }
                    best.insert((s, j), at: pos)
                    if best.count > k { best.removeLast() }
                }
                let sorted = best.map(\.1).sorted()
                for t in 0..<k { out[i * k + t] = Int32(sorted[t]) }
            }
        }
        return Neighbours(rows: n, k: k, indices: out)
    }

    /// Mutual k-NN alignment of two neighbour sets: the mean over rows of |kNN_X(i) ∩ kNN_Y(i)| / k;
    /// with `permutation`, Y's rows taken in that order (row i of Y′ is row perm[i] of Y).
    public static func mutualKNNSimilarity(_ a: Neighbours, _ b: Neighbours, permutation perm: [Int]? = nil) throws -> Double {
        guard a.rows == b.rows else { throw MetricUndefined("different numbers of rows (\(a.rows) vs \(b.rows))") }
        guard a.k == b.k else { throw MetricUndefined("different k (\(a.k) vs \(b.k))") }
        let n = a.rows, k = a.k
        var total = 0
        if let perm {
            var inverse = [Int](repeating: 0, count: n)
            for (i, p) in perm.enumerated() { inverse[p] = i }
            var mark = [Bool](repeating: false, count: n)
            for i in 0..<n {
                for t in 0..<k { mark[Int(a.indices[i * k + t])] = true }
                let src = perm[i]
                for t in 0..<k where mark[inverse[Int(b.indices[src * k + t])]] { total += 1 }
                for t in 0..<k { mark[Int(a.indices[i * k + t])] = false }
            }
        } else {
            for i in 0..<n {
                var p = i * k, q = i * k
                let pe = p + k, qe = q + k
                while p < pe && q < qe {
                    if a.indices[p] == b.indices[q] { total += 1; p += 1; q += 1 } else if a.indices[p] < b.indices[q] { p += 1 } else { q += 1 }
                }
            }
        }
        return Double(total) / Double(n * k)
    }

    /// Mutual k-NN alignment (Huh et al. 2024): the mean over clips of |kNN_X(i) ∩ kNN_Y(i)| / k, cosine
    /// neighbours, self excluded, ties to the lower index.
    public static func mutualKNN(_ x: Matrix<Double>, _ y: Matrix<Double>, k: Int = 10) throws -> Double {
        try sameRows(x, y)
        return try mutualKNNSimilarity(neighbours(x, k: k), neighbours(y, k: k))
    }

    static func sameRows(_ x: Matrix<Double>, _ y: Matrix<Double>) throws {
        guard x.rows == y.rows else { throw MetricUndefined("different numbers of samples (\(x.rows) vs \(y.rows))") }
    }
}

extension Matrix where Scalar == Double {
    /// The columns `range` as a new matrix.
    func columns(_ range: Range<Int>) -> Matrix<Double> {
        var m = Matrix<Double>(rows: rows, cols: range.count)
        for i in 0..<rows { for (t, j) in range.enumerated() { m[i, t] = self[i, j] } }
        return m
    }
}

extension Metric {
    /// The similarity measures beyond CKA (`Similarity`).
    static let similarityDefinitions: [Metric: MetricDefinition] = {
        let common = ["fewer than 2 rows", "NaN or Inf in the data", "zero variance (all rows equal up to float32 rounding)"]
        return [
            .procrustesDistance: MetricDefinition(
                unit: "distance (0 to sqrt 2; 0 = same shape up to rotation)",
                convention: "sqrt(2 - 2 ||Xh^T Yh||_*), Xh column-centred, partially whitened with alpha (Williams et al. 2021; alpha = 1 plain Procrustes) and scaled to unit Frobenius norm; nuclear norm from LAPACK singular values; directions with squared singular value <= max(N, D) eps s_1^2 dropped",
                undefinedWhen: common),
            .procrustesAngle: MetricDefinition(
                unit: "radians (0 to pi/2)",
                convention: "arccos ||Xh^T Yh||_*, the angular Procrustes shape distance (Williams et al. 2021), same Xh as procrustes_distance",
                undefinedWhen: common),
            .svcca: MetricDefinition(
                unit: "unitless (0 to 1)",
                convention: "mean canonical correlation between the leading singular directions explaining --svcca-variance (default 0.99) of each centred representation's variance (Raghu et al. 2017); min(k_x, k_y) correlations",
                undefinedWhen: common),
            .pwcca: MetricDefinition(
                unit: "unitless (0 to 1)",
                convention: "canonical correlations of the centred representations weighted by a_i = sum_j |<h_i, x_j>| (h_i unit canonical variates of X, x_j X's centred neurons) (Morcos et al. 2018); weights from the first representation (A, or the lower depth)",
                undefinedWhen: common + ["the weights sum to 0"]),
            .rsa: MetricDefinition(
                unit: "rank correlation (-1 to 1)",
                convention: "RDMs of 1 - Pearson correlation between clip vectors (--rdm cosine or euclidean), compared by Spearman's rho over the upper triangles, average ranks for ties (--rdm-comparison kendall: Kendall's tau_a)",
                undefinedWhen: ["fewer than 3 rows", "NaN or Inf in the data", "a clip vector with no spread (correlation) or zero (cosine)", "every RDM entry equal"]),
            .mutualKNN: MetricDefinition(
                unit: "fraction (0 to 1)",
                convention: "mean over clips of |kNN_X(i) and kNN_Y(i)| / k, cosine neighbours, self excluded, k = --neighbours (default 10), equal similarities to the lower clip index (Huh et al. 2024)",
                undefinedWhen: ["N <= k", "NaN or Inf in the data", "a zero clip vector"]),
        ]
    }()
}
