import Foundation
import LinearAlgebra

/// Mean attention distance and entropy of one attention head.
public struct AttentionDistance: Sendable, Codable, Equatable {
    /// Head index (0-based).
    public var head: Int
    /// Mean over queries of Σₖ A[q,k]·‖(row, col)_q − (row, col)_k‖, in pixels.
    public var spatialPixels: Double
    /// Mean over queries of Σₖ A[q,k]·|frame_q − frame_k|, in frames.
    public var temporalFrames: Double
    /// Mean over queries of −Σₖ A[q,k] log A[q,k] (natural log, 0·log 0 = 0), in nats.
    public var entropy: Double
    /// Queries averaged: clips · T.
    public var queries: Int
    /// Entropy of uniform attention over T tokens, log T, for orientation.
    public var uniformEntropy: Double
    /// Spatial distance under uniform attention (mean over all (q, k) pairs, k = q included), for orientation.
    public var uniformSpatialPixels: Double
    /// Temporal distance under uniform attention (mean over all (q, k) pairs, k = q included), for orientation.
    public var uniformTemporalFrames: Double

    public init(head: Int, spatialPixels: Double, temporalFrames: Double, entropy: Double, queries: Int,
                uniformEntropy: Double, uniformSpatialPixels: Double, uniformTemporalFrames: Double) {
        self.head = head
        self.spatialPixels = spatialPixels
        self.temporalFrames = temporalFrames
        self.entropy = entropy
        self.queries = queries
        self.uniformEntropy = uniformEntropy
        self.uniformSpatialPixels = uniformSpatialPixels
        self.uniformTemporalFrames = uniformTemporalFrames
    }
}

/// Streams mean attention distance and attention entropy per head of one layer (Dosovitskiy et al. 2021,
/// Fig. 7; Raghu et al. 2021).
///
/// Convention: for attention A (rows are queries q, columns keys k, each row a probability distribution)
/// and token centres p = (frame, row, col):
///
///     spatial(q)  = Σₖ A[q,k] · sqrt((row_q − row_k)² + (col_q − col_k)²)     pixels
///     temporal(q) = Σₖ A[q,k] · |frame_q − frame_k|                            frames
///     entropy(q)  = −Σₖ A[q,k] · log A[q,k]      (natural log, 0·log 0 = 0)   nats
///
/// each averaged over all queries of all clips, separately per head. Rows are used as given (not
/// renormalised); a row is accepted when its entries are finite and ≥ 0 and its sum is within 1e-3 of 1.
/// Σ_q Σ_k A[q,k]·d(q,k) is the Frobenius inner product ⟨A, D⟩; a chunk's products for all clips and heads
/// are one gemm of the attention maps, as rows of length T², with the two distance matrices as columns.
/// Sums are float64 and merge by addition.
public struct AttentionDistanceAccumulator: Sendable {
    /// Tokens per clip T.
    public let tokens: Int
    /// Token centres, row-major [T, 3] as (frame, row, col).
    public let positions: [Float]
    /// Heads, fixed by the first non-empty chunk (nil before).
    public private(set) var heads: Int?
    /// Clips accumulated so far.
    public private(set) var clips = 0
    /// [T², 2]: column 0 the spatial distance of pair (q, k) at row q·T + k, column 1 the temporal one.
    private let distances: Matrix<Double>
    private var spatialSums: [Double] = []
    private var temporalSums: [Double] = []
    private var entropySums: [Double] = []

    /// Largest |Σₖ A[q,k] − 1| accepted for a row.
    public static let rowSumTolerance = 1e-3

    /// Prepares an accumulator for attention over `tokens` tokens at `positions`.
    ///
    /// - Parameters:
    ///   - positions: row-major [tokens, 3], each token's centre as (frame, row, col) in frames and pixels.
    ///   - tokens: T, at least 1.
    /// - Throws: `MetricUndefined` when `positions` is not [T, 3] or holds a non-finite value.
    /// - Complexity: O(T²).
    public init(positions: [Float], tokens: Int) throws {
        guard tokens >= 1 else { throw MetricUndefined("attention distance: needs at least 1 token, got \(tokens)") }
        guard positions.count == tokens * 3 else {
            throw MetricUndefined("attention distance: positions hold \(positions.count) values, expected [\(tokens), 3]")
        }
        if let bad = positions.firstIndex(where: { !$0.isFinite }) {
            throw MetricUndefined("attention distance: non-finite position of token \(bad / 3)")
        }
        self.tokens = tokens
        self.positions = positions
        let p = positions.map { Double($0) }
        distances = Matrix(rows: tokens * tokens, cols: 2) { r, c in
            let q = r / tokens, k = r % tokens
            if c == 1 { return abs(p[3 * q] - p[3 * k]) }
            let dr = p[3 * q + 1] - p[3 * k + 1], dc = p[3 * q + 2] - p[3 * k + 2]
            return (dr * dr + dc * dc).squareRoot()
        }
    }

    /// Adds a chunk of attention maps, row-major [clips, heads, T, T] (query rows, key columns).
    ///
    /// On error the accumulator is unchanged.
    /// - Parameters:
    ///   - attention: `clips · heads · T · T` softmax probabilities.
    ///   - clips: clips in the chunk (0 adds nothing).
    ///   - heads: heads H, at least 1 and equal in every chunk.
    /// - Throws: `MetricUndefined` for a shape mismatch, a change in H, or a row that is not a distribution
    ///   (non-finite or negative entry, sum off by more than 1e-3), naming clip (within this chunk), head
    ///   and query.
    /// - Complexity: O(clips · H · T²), the distance sums in BLAS.
    public mutating func add(attention: [Float], clips: Int, heads: Int) throws {
        try attention.withUnsafeBufferPointer { try addChunk($0, clips: clips, heads: heads) }
    }

    /// Adds a chunk given in float64; see `add(attention:clips:heads:)` for `[Float]`.
    public mutating func add(attention: [Double], clips: Int, heads: Int) throws {
        try attention.withUnsafeBufferPointer { try addChunk($0, clips: clips, heads: heads) }
    }

    /// Adds another accumulator's sums.
    ///
    /// - Throws: `MetricUndefined` when the two were built for different tokens, positions or heads.
    public mutating func merge(_ other: AttentionDistanceAccumulator) throws {
        guard other.tokens == tokens, other.positions == positions else {
            throw MetricUndefined("attention distance: cannot merge accumulators with different token positions")
        }
        guard let h = other.heads else { return }
        if let mine = heads, mine != h {
            throw MetricUndefined("attention distance: cannot merge \(h) heads into \(mine)")
        }
        if heads == nil {
            heads = h
            spatialSums = Array(repeating: 0, count: h)
            temporalSums = spatialSums
            entropySums = spatialSums
        }
        for i in 0..<h {
            spatialSums[i] += other.spatialSums[i]
            temporalSums[i] += other.temporalSums[i]
            entropySums[i] += other.entropySums[i]
        }
        clips += other.clips
    }

    /// Replaces every sum by its total over the parts of a computation split by rows (for example the
    /// ranks of an MPI job, each on its own clips): `reduce` is called on each array of sums in a fixed
    /// order, the same on every part, and must leave in it the elementwise sum of that array over the
    /// parts (an allreduce). Counts travel as float64, exact below 2⁵³. A part that saw no rows
    /// contributes zeros.
    ///
    /// - Parameter heads: H of the layer (every part must pass the same, also a part that saw no clips).
    /// - Throws: `MetricUndefined` when this part saw a different number of heads.
    public mutating func combineSums(heads h: Int, _ reduce: (UnsafeMutableBufferPointer<Double>) -> Void) throws {
        if let mine = heads, mine != h { throw MetricUndefined("attention distance: cannot combine \(h) heads with \(mine)") }
        if heads == nil {
            heads = h
            spatialSums = Array(repeating: 0, count: h)
            temporalSums = spatialSums
            entropySums = spatialSums
        }
        var scalars = [Double(clips)]
        scalars.withUnsafeMutableBufferPointer { reduce($0) }
        clips = Int(scalars[0])
        spatialSums.withUnsafeMutableBufferPointer { reduce($0) }
        temporalSums.withUnsafeMutableBufferPointer { reduce($0) }
        entropySums.withUnsafeMutableBufferPointer { reduce($0) }
    }

    /// One result per head, in head order.
    ///
    /// - Throws: `MetricUndefined` when no clips were added.
    public func result() throws -> [AttentionDistance] {
        guard let h = heads, clips > 0 else { throw MetricUndefined("attention distance: no clips were added") }
        let queries = clips * tokens
        let pairs = Double(tokens * tokens)
        let uniformSpatial = distances.columnSums()[0] / pairs
        let uniformTemporal = distances.columnSums()[1] / pairs
        return (0..<h).map { i in
            AttentionDistance(head: i,
                              spatialPixels: spatialSums[i] / Double(queries),
                              temporalFrames: temporalSums[i] / Double(queries),
                              entropy: entropySums[i] / Double(queries),
                              queries: queries,
                              uniformEntropy: log(Double(tokens)),
                              uniformSpatialPixels: uniformSpatial,
                              uniformTemporalFrames: uniformTemporal)
        }
    }

    private mutating func addChunk<S: BLASScalar>(_ a: UnsafeBufferPointer<S>, clips n: Int, heads h: Int) throws {
        let t = tokens
        guard n >= 0, h >= 1 else {
            throw MetricUndefined("attention distance: invalid shape clips \(n), heads \(h)")
        }
        let (p1, o1) = n.multipliedReportingOverflow(by: h)
        let (p2, o2) = p1.multipliedReportingOverflow(by: t * t)
        guard !o1, !o2, p2 == a.count else {
            throw MetricUndefined("attention distance: \(a.count) values do not match [clips \(n), heads \(h), \(t), \(t)]")
        }
        if let known = heads, known != h {
            throw MetricUndefined("attention distance: chunk has \(h) heads, earlier chunks had \(known)")
        }
        if n == 0 { return }
        var next = self
        if next.heads == nil {
            next.heads = h
            next.spatialSums = Array(repeating: 0, count: h)
            next.temporalSums = next.spatialSums
            next.entropySums = next.spatialSums
        }
        // Blocks of clips whose maps, converted to float64, take at most about 8 MiB.
        let blockClips = max(1, (1 << 20) / (h * t * t))
        var maps = Matrix<Double>(rows: blockClips * h, cols: t * t)
        let tol = Self.rowSumTolerance
        for start in stride(from: 0, to: n, by: blockClips) {
            let count = min(blockClips, n - start)
            if count < blockClips { maps = Matrix(rows: count * h, cols: t * t) }
            for c in start..<(start + count) {
                for head in 0..<h {
                    var entropy = 0.0
                    let mapBase = (c * h + head) * t * t
                    let outBase = ((c - start) * h + head) * t * t
                    for q in 0..<t {
                        let rowBase = mapBase + q * t
                        var sum = 0.0
                        for k in 0..<t {
                            let v = a[rowBase + k]
                            guard v.isFinite, v >= 0 else {
                                throw MetricUndefined("attention distance: clip \(c) of the chunk, head \(head), query \(q): entry \(k) is \(v), not a finite non-negative probability")
                            }
                            let x = Double(v)
                            maps.storage[outBase + q * t + k] = x
                            sum += x
                            if x > 0 { entropy -= x * log(x) }
                        }
                        guard abs(sum - 1) <= tol else {
                            throw MetricUndefined("attention distance: clip \(c) of the chunk, head \(head), query \(q): row sums to \(sum), not 1 within \(tol)")
                        }
                    }
                    next.entropySums[head] += entropy
                }
            }
            // Row (clip, head) · [spatial, temporal] distance columns = ⟨A, D_spatial⟩, ⟨A, D_temporal⟩.
            let inner = Matrix.product(maps, distances)
            for r in 0..<(count * h) {
                next.spatialSums[r % h] += inner[r, 0]
                next.temporalSums[r % h] += inner[r, 1]
            }
        }
        next.clips += n
        self = next
    }
}

/// Mean attention distance and entropy per head of one layer; see `AttentionDistanceAccumulator`.
///
/// - Parameters:
///   - attention: row-major [clips, heads, T, T].
///   - positions: row-major [T, 3] token centres (frame, row, col).
/// - Throws: `MetricUndefined` for no clips, bad shapes or rows that are not distributions.
/// - Complexity: O(clips · H · T²).
public func attentionDistance(_ attention: [Float], clips: Int, heads: Int, positions: [Float],
                              tokens: Int) throws -> [AttentionDistance] {
    var acc = try AttentionDistanceAccumulator(positions: positions, tokens: tokens)
    try acc.add(attention: attention, clips: clips, heads: heads)
    return try acc.result()
}

extension Metric {
    /// Attention distance and entropy per layer and head (`AttentionDistanceAccumulator`).
    static let attentionDefinitions: [Metric: MetricDefinition] = {
        let undefined = ["an attention row not finite, negative or not summing to 1 within 1e-3", "no clips"]
        return [
            .attentionDistanceSpatial: MetricDefinition(unit: "pixels", convention: "per layer and head: sum_k A[q,k] * d(q,k) averaged over queries and clips; d = Euclidean distance of token centres (row, col) in pixels (Dosovitskiy et al. 2021; Raghu et al. 2021)", undefinedWhen: undefined),
            .attentionDistanceTemporal: MetricDefinition(unit: "frames", convention: "as spatial, with d = |frame difference| of token centres in frames", undefinedWhen: undefined),
            .attentionEntropy: MetricDefinition(unit: "nats", convention: "-sum_k A[q,k] log A[q,k] (natural log), averaged over queries and clips; uniform attention gives log T", undefinedWhen: undefined),
        ]
    }()
}
