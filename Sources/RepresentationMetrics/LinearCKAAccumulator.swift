import LinearAlgebra

/// A pair of representations (indices into an accumulator's list).
public struct CKAPair: Hashable, Sendable, Codable, CustomStringConvertible {
    public var a: Int
    public var b: Int
    public init(_ a: Int, _ b: Int) {
        self.a = a
        self.b = b
    }
    public var description: String { "(\(a), \(b))" }
}

/// Exact linear CKA between many representations of the same rows, streamed over row chunks.
///
/// Every representation m holds an n×D_m matrix Xₘ whose rows arrive in chunks (the same rows for
/// every representation). All statistics are sums over rows, accumulated in float64 on shifted rows
/// x' = x − r (r: a reference row, by default the first row seen) to limit cancellation:
///
///     s = Σ x'ᵢ,  S_ab = X'_aᵀ X'_b,  pᵢ = ‖x'ᵢ‖²,  Σp,  Σ pᵢqᵢ,  u_ab = Σ pᵢ y'ᵢ,  v_ab = Σ qᵢ x'ᵢ
///
/// From them, for a pair (X, Y):
/// - biased HSIC₀ ∝ ‖XcᵀYc‖²_F with XcᵀYc = S_xy − s_x s_yᵀ/n (Kornblith et al. 2019);
/// - debiased HSIC₁ (Song et al. 2012) with K = X'X'ᵀ, L = Y'Y'ᵀ (HSIC₁ is invariant to the shift):
///   tr(K̃L̃) = ‖S_xy‖²_F − Σpq,  1ᵀK̃1 = ‖s_x‖² − Σp,  1ᵀK̃L̃1 = s_xᵀS_xy s_y − s_x·v − s_y·u + Σpq.
///
/// Memory is O(Σ D_m² + Σ_pairs D_a·D_b), independent of n: token-level CKA (n = N·T rows) streams
/// through files larger than memory. Accumulators with the same reference rows merge exactly, so the
/// sums can be split across processes.
public struct LinearCKAAccumulator: Sendable {
    public let dimensions: [Int]
    public let pairs: [CKAPair]
    public private(set) var count = 0
    private var references: [[Double]?]
    private var sums: [[Double]]
    private var grams: [Matrix<Double>]
    private var normSums: [Double]
    private var normSquareSums: [Double]
    private var normWeighted: [[Double]]
    private var cross: [CKAPair: Cross] = [:]

    private struct Cross: Sendable {
        var s: Matrix<Double>
        var pq: Double
        var u: [Double]  // Σ pᵢ y'ᵢ  (length D_b)
        var v: [Double]  // Σ qᵢ x'ᵢ  (length D_a)
    }

    /// - Parameters:
    ///   - dimensions: D of each representation.
    ///   - pairs: the pairs whose CKA will be asked for (self pairs (m, m) need nothing extra).
    ///   - references: optional reference rows, one per representation (give every process the same
    ///     ones to make their accumulators mergeable); by default each representation's first row.
    public init(dimensions: [Int], pairs: [CKAPair], references: [[Double]]? = nil) {
        self.dimensions = dimensions
        self.pairs = pairs
        self.references = references?.map { Optional($0) } ?? Array(repeating: nil, count: dimensions.count)
        sums = dimensions.map { [Double](repeating: 0, count: $0) }
        grams = dimensions.map { Matrix(rows: $0, cols: $0) }
        normSums = Array(repeating: 0, count: dimensions.count)
        normSquareSums = Array(repeating: 0, count: dimensions.count)
        normWeighted = dimensions.map { [Double](repeating: 0, count: $0) }
        for p in pairs where p.a != p.b && cross[p] == nil {
            cross[p] = Cross(s: Matrix(rows: dimensions[p.a], cols: dimensions[p.b]), pq: 0,
                             u: [Double](repeating: 0, count: dimensions[p.b]),
                             v: [Double](repeating: 0, count: dimensions[p.a]))
        }
    }

    /// Adds one chunk: the same rows of every representation, in order.
    ///
    /// - Complexity: one syrk per representation and one gemm per pair, O(rows · (Σ D² + Σ D_a D_b)).
    public mutating func add(_ chunk: [Matrix<Double>]) throws {
        guard chunk.count == dimensions.count else {
            throw MetricUndefined("expected \(dimensions.count) representations in a chunk, got \(chunk.count)")
        }
        let rows = chunk.first?.rows ?? 0
        for (m, x) in chunk.enumerated() {
            guard x.rows == rows, x.cols == dimensions[m] else {
                throw MetricUndefined("representation \(m): chunk is \(x.rows)x\(x.cols), expected \(rows)x\(dimensions[m])")
            }
            guard x.nonFiniteCount == 0 else { throw MetricUndefined("NaN or Inf in representation \(m)") }
        }
        guard rows > 0 else { return }
        var shifted: [Matrix<Double>] = []
        var norms: [Matrix<Double>] = []  // pᵢ as an n×1 matrix
        for (m, x) in chunk.enumerated() {
            if references[m] == nil { references[m] = Array(x.row(0)) }
            var xs = x
            xs.subtractFromColumns(references[m]!)
            var p = Matrix<Double>(rows: rows, cols: 1)
            xs.storage.withUnsafeBufferPointer { buf in
                let d = xs.cols
                for i in 0..<rows {
                    var acc = 0.0
                    for j in 0..<d { acc += buf[i * d + j] * buf[i * d + j] }
                    p.storage[i] = acc
                }
            }
            grams[m].addGramOfColumns(xs)
            let colSums = xs.columnSums()
            for j in 0..<dimensions[m] { sums[m][j] += colSums[j] }
            normSums[m] += p.storage.reduce(0, +)
            normSquareSums[m] += p.storage.reduce(0) { $0 + $1 * $1 }
            let w = Matrix.product(xs, p, transposeA: true)
            for j in 0..<dimensions[m] { normWeighted[m][j] += w.storage[j] }
            shifted.append(xs)
            norms.append(p)
        }
        for pair in Array(cross.keys) {
            let xa = shifted[pair.a], xb = shifted[pair.b], pa = norms[pair.a], pb = norms[pair.b]
            // Mutate the dictionary's value in place: a copy would cost D_a·D_b per pair and chunk.
            cross[pair]!.s.addProduct(xa, xb, transposeA: true)
            cross[pair]!.pq += Matrix.frobeniusInner(pa, pb)
            let u = Matrix.product(xb, pa, transposeA: true)
            let v = Matrix.product(xa, pb, transposeA: true)
            for j in 0..<u.rows { cross[pair]!.u[j] += u.storage[j] }
            for j in 0..<v.rows { cross[pair]!.v[j] += v.storage[j] }
        }
        count += rows
    }

    /// Adds another accumulator's sums (same dimensions, pairs and reference rows).
    public mutating func merge(_ other: LinearCKAAccumulator) throws {
        guard other.dimensions == dimensions, Set(other.pairs) == Set(pairs) else {
            throw MetricUndefined("cannot merge CKA accumulators over different representations or pairs")
        }
        if other.count == 0 { return }
        if count == 0 { self = other; return }
        guard other.references == references else {
            throw MetricUndefined("cannot merge CKA accumulators with different reference rows; give every part the same references")
        }
        count += other.count
        for m in dimensions.indices {
            for j in 0..<dimensions[m] { sums[m][j] += other.sums[m][j]; normWeighted[m][j] += other.normWeighted[m][j] }
            for i in grams[m].storage.indices { grams[m].storage[i] += other.grams[m].storage[i] }
            normSums[m] += other.normSums[m]
            normSquareSums[m] += other.normSquareSums[m]
        }
        for (pair, var c) in cross {
            let o = other.cross[pair]!
            for i in c.s.storage.indices { c.s.storage[i] += o.s.storage[i] }
            c.pq += o.pq
            for j in c.u.indices { c.u[j] += o.u[j] }
            for j in c.v.indices { c.v[j] += o.v[j] }
            cross[pair] = c
        }
    }

    /// Replaces every sum by its total over the parts of a computation split by rows (for example the
    /// ranks of an MPI job, each on its own clips): `reduce` is called on each array of sums in a fixed
    /// order, the same on every part, and must leave in it the elementwise sum of that array over the
    /// parts (an allreduce). Counts travel as float64, exact below 2⁵³. A part that saw no rows
    /// contributes zeros.
    ///
    /// The parts must share their reference rows: give every part the same `references` in `init`.
    public mutating func combineSums(_ reduce: (UnsafeMutableBufferPointer<Double>) -> Void) {
        let keys = cross.keys.sorted { ($0.a, $0.b) < ($1.a, $1.b) }
        let m = dimensions.count
        var scalars = [Double(count)] + normSums + normSquareSums + keys.map { cross[$0]!.pq }
        scalars.withUnsafeMutableBufferPointer { reduce($0) }
        count = Int(scalars[0])
        normSums = Array(scalars[1..<(1 + m)])
        normSquareSums = Array(scalars[(1 + m)..<(1 + 2 * m)])
        for (k, pair) in keys.enumerated() { cross[pair]!.pq = scalars[1 + 2 * m + k] }
        for i in 0..<m {
            sums[i].withUnsafeMutableBufferPointer { reduce($0) }
            grams[i].storage.withUnsafeMutableBufferPointer { reduce($0) }
            normWeighted[i].withUnsafeMutableBufferPointer { reduce($0) }
        }
        for pair in keys {
            cross[pair]!.s.storage.withUnsafeMutableBufferPointer { reduce($0) }
            cross[pair]!.u.withUnsafeMutableBufferPointer { reduce($0) }
            cross[pair]!.v.withUnsafeMutableBufferPointer { reduce($0) }
        }
    }

    /// The statistics of a pair, with self pairs built from the single-representation sums.
    private func stats(_ pair: CKAPair) throws -> (s: Matrix<Double>, pq: Double, u: [Double], v: [Double]) {
        if pair.a == pair.b {
            let m = pair.a
            return (grams[m], normSquareSums[m], normWeighted[m], normWeighted[m])
        }
        if let c = cross[pair] { return (c.s, c.pq, c.u, c.v) }
        if let c = cross[CKAPair(pair.b, pair.a)] { return (c.s.transposed, c.pq, c.v, c.u) }
        throw MetricUndefined("pair \(pair) was not accumulated")
    }

    /// HSIC of a pair with the given estimator (biased: ‖XcᵀYc‖²_F/(n−1)²; debiased: HSIC₁).
    public func hsic(_ pair: CKAPair, estimator: CKAEstimator) throws -> Double {
        let (s, pq, u, v) = try stats(pair)
        let sa = sums[pair.a], sb = sums[pair.b]
        let n = Double(count)
        switch estimator {
        case .biased:
            guard count >= 2 else { throw MetricUndefined("CKA needs at least 2 samples, got \(count)") }
            var c = s
            let da = dimensions[pair.a], db = dimensions[pair.b]
            for i in 0..<da { for j in 0..<db { c.storage[i * db + j] -= sa[i] * sb[j] / n } }
            return Matrix.frobeniusInner(c, c) / ((n - 1) * (n - 1))
        case .debiased, .minibatch:
            guard count >= 4 else { throw MetricUndefined("the debiased HSIC estimator needs at least 4 samples, got \(count)") }
            let trace = Matrix.frobeniusInner(s, s) - pq
            let kSum = dot(sa, sa) - normSums[pair.a]
            let lSum = dot(sb, sb) - normSums[pair.b]
            let ssb = Matrix.product(s, Matrix(rows: sb.count, cols: 1, storage: sb))
            let crossTerm = dot(sa, ssb.storage) - dot(sa, v) - dot(sb, u) + pq
            return (trace + kSum * lSum / ((n - 1) * (n - 2)) - 2 / (n - 2) * crossTerm) / (n * (n - 3))
        }
    }

    /// True when the rows of representation m are constant up to float32 rounding (see `ConstantRows`).
    public func isEffectivelyConstant(_ m: Int) -> Bool {
        guard count > 0 else { return true }
        let n = Double(count)
        let s = sums[m], r = references[m] ?? []
        var centredTrace = 0.0
        for i in 0..<dimensions[m] { centredTrace += grams[m][i, i] - s[i] * s[i] / n }
        let squaredNormSum = normSums[m] + 2 * dot(r, s) + n * dot(r, r)
        return ConstantRows.areConstant(centredTrace: centredTrace, squaredNormSum: squaredNormSum, count: count)
    }

    /// CKA of a pair: HSIC(X, Y) / sqrt(HSIC(X, X) · HSIC(Y, Y)).
    ///
    /// - Throws: `MetricUndefined` when either representation is constant (see `isEffectivelyConstant`).
    public func cka(_ pair: CKAPair, estimator: CKAEstimator) throws -> Double {
        for (m, which) in [(pair.a, "first"), (pair.b, "second")] where isEffectivelyConstant(m) {
            throw MetricUndefined("zero variance in the \(which) representation (all rows equal up to float32 rounding)")
        }
        return try CKA.fromHSIC(xy: hsic(pair, estimator: estimator), xx: hsic(CKAPair(pair.a, pair.a), estimator: estimator),
                         yy: hsic(CKAPair(pair.b, pair.b), estimator: estimator))
    }
}


/// Minibatch CKA (Nguyen et al. 2021, eq. 3), a different estimator from full-data CKA:
///
///     CKA_mb(X, Y) = mean_b HSIC₁(X_b, Y_b) / sqrt(mean_b HSIC₁(X_b, X_b) · mean_b HSIC₁(Y_b, Y_b))
///
/// with HSIC₁ the unbiased estimator on each minibatch of `batchSize` consecutive rows. The means
/// run over batches, separately for every pair; rows left over after the last full batch are dropped
/// (`droppedRows`), so every batch weighs the same.
public struct MinibatchCKAAccumulator: Sendable {
    public let dimensions: [Int]
    public let pairs: [CKAPair]
    public let batchSize: Int
    public private(set) var batches = 0
    private var pending: [Matrix<Double>]
    private var hsicSums: [CKAPair: Double] = [:]
    /// Rows left over on all parts, once `combineSums` has run.
    private var combinedDroppedRows: Int?

    public init(dimensions: [Int], pairs: [CKAPair], batchSize: Int) throws {
        guard batchSize >= 4 else { throw MetricUndefined("minibatch CKA needs a batch size of at least 4, got \(batchSize)") }
        self.dimensions = dimensions
        self.pairs = pairs
        self.batchSize = batchSize
        pending = dimensions.map { Matrix(rows: 0, cols: $0) }
        for p in pairs {
            hsicSums[p] = 0
            hsicSums[CKAPair(p.a, p.a)] = 0
            hsicSums[CKAPair(p.b, p.b)] = 0
        }
    }

    /// Rows received but not yet part of a full batch.
    public var droppedRows: Int { combinedDroppedRows ?? pending.first?.rows ?? 0 }

    /// Replaces every sum by its total over the parts of a computation split by whole minibatches (for example the
    /// ranks of an MPI job, each on its own clips): `reduce` is called on each array of sums in a fixed
    /// order, the same on every part, and must leave in it the elementwise sum of that array over the
    /// parts (an allreduce). Counts travel as float64, exact below 2⁵³. A part that saw no rows
    /// contributes zeros.
    ///
    /// Each part must be given whole minibatches of the global row order (rows k·batchSize ..< (k+1)·batchSize),
    /// so that its batches are the batches of one process; the rows after the last full batch may be
    /// given to one part, which counts them in `droppedRows`.
    public mutating func combineSums(_ reduce: (UnsafeMutableBufferPointer<Double>) -> Void) {
        let keys = hsicSums.keys.sorted { ($0.a, $0.b) < ($1.a, $1.b) }
        var scalars = [Double(batches), Double(droppedRows)] + keys.map { hsicSums[$0]! }
        scalars.withUnsafeMutableBufferPointer { reduce($0) }
        batches = Int(scalars[0])
        combinedDroppedRows = Int(scalars[1])
        for (k, key) in keys.enumerated() { hsicSums[key] = scalars[2 + k] }
    }

    /// Adds rows (the same rows of every representation); full batches are evaluated at once.
    public mutating func add(_ chunk: [Matrix<Double>]) throws {
        guard chunk.count == dimensions.count else {
            throw MetricUndefined("expected \(dimensions.count) representations in a chunk, got \(chunk.count)")
        }
        for m in chunk.indices {
            pending[m] = Matrix(rows: pending[m].rows + chunk[m].rows, cols: dimensions[m],
                                storage: pending[m].storage + chunk[m].storage)
        }
        while pending[0].rows >= batchSize {
            let batch = pending.map { $0.rows(0..<batchSize) }
            pending = pending.map { $0.rows(batchSize..<$0.rows) }
            var one = LinearCKAAccumulator(dimensions: dimensions, pairs: pairs.filter { $0.a != $0.b })
            try one.add(batch)
            for key in hsicSums.keys { hsicSums[key]! += try one.hsic(key, estimator: .debiased) }
            batches += 1
        }
    }

    /// Minibatch CKA of one pair.
    public func cka(_ pair: CKAPair) throws -> Double {
        guard batches > 0 else {
            throw MetricUndefined("no complete minibatch of \(batchSize) rows (\(droppedRows) rows seen)")
        }
        guard let xy = hsicSums[pair], let xx = hsicSums[CKAPair(pair.a, pair.a)], let yy = hsicSums[CKAPair(pair.b, pair.b)] else {
            throw MetricUndefined("pair \(pair) was not accumulated")
        }
        let b = Double(batches)
        return try CKA.fromHSIC(xy: xy / b, xx: xx / b, yy: yy / b)
    }
}
