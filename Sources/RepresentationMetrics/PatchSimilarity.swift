import LinearAlgebra

// Within-clip patch similarity (a token-level metric).
//
// Streaming: callers feed clip chunks (row-major [clips, T, D]) to the accumulator, accumulators merge
// by adding their float64 sums and integer counts, and the result is read at the end.

/// Within-clip patch similarity and the counts it was computed from.
public struct PatchSimilarity: Sendable, Codable, Equatable {
    /// Mean over clips of the mean cosine over ordered token pairs i ≠ j.
    public var value: Double
    /// Clips averaged.
    public var clips: Int
    /// Tokens whose features were all equal (zero variance); their normalised vector is taken as zero.
    public var degenerateTokens: Int

    public init(value: Double, clips: Int, degenerateTokens: Int) {
        self.value = value
        self.clips = clips
        self.degenerateTokens = degenerateTokens
    }
}

/// Streams the within-clip patch similarity over clip chunks (the paper's token-level diagnostic).
///
/// Convention (the paper's evaluation code): per clip, every token vector x ∈ ℝᴰ is layer-normalised
/// without affine parameters, y = (x − mean(x)) / sqrt(var(x) + 1e-12) with the population variance, and
/// then L2-normalised, z = y / ‖y‖. The clip's value is the mean cosine over the T(T−1) ordered pairs
/// i ≠ j, computed through the identity
///
///     Σ_{i≠j} zᵢ·zⱼ = ‖Σᵢ zᵢ‖² − Σᵢ ‖zᵢ‖²,   clip value = (‖Σᵢ zᵢ‖² − T) / (T(T−1)) for unit zᵢ,
///
/// and the metric is the mean of the clip values over clips. Because the L2 step follows the layer norm,
/// eps cancels and z = (x − mean(x)) / ‖x − mean(x)‖; it is computed that way in float64.
///
/// Degenerate tokens: a token whose D features are all exactly equal has zero variance; its layer norm is
/// the zero vector, so z is taken as the zero vector. It stays in the clip's T (its pairs count as cosine
/// 0 in the denominator T(T−1)) and is counted in `degenerateTokens`. The test is exact equality of the
/// features, not a computed variance, so rounding in the mean of a constant vector cannot turn it into
/// a spurious unit vector.
public struct PatchSimilarityAccumulator: Sendable {
    /// Clips accumulated so far.
    public private(set) var clips = 0
    /// Zero-variance tokens seen so far (see the type's documentation).
    public private(set) var degenerateTokens = 0
    /// Σ over clips of the clip value.
    private var sum = 0.0
    /// When true, every clip's value is kept in `clipValues` (for bootstrap intervals).
    public var keepsClipValues = false
    /// The value of every clip added, in order, when `keepsClipValues` is set; empty otherwise.
    public private(set) var clipValues: [Double] = []

    public init(keepsClipValues: Bool = false) { self.keepsClipValues = keepsClipValues }

    /// Adds a chunk of clips, row-major [clips, tokens, features].
    ///
    /// On error the accumulator is unchanged.
    /// - Parameters:
    ///   - activations: `clips · tokens · features` values.
    ///   - clips: clips in the chunk (0 is allowed and adds nothing).
    ///   - tokens: tokens per clip T, at least 2.
    ///   - features: features per token D, at least 1.
    /// - Throws: `MetricUndefined` for a shape mismatch, T < 2, or a non-finite value (naming clip and token,
    ///   counted within this chunk).
    /// - Complexity: O(clips · T · D).
    public mutating func add(_ activations: [Float], clips: Int, tokens: Int, features: Int) throws {
        try activations.withUnsafeBufferPointer { try addChunk($0, clips: clips, tokens: tokens, features: features) }
    }

    /// Adds a chunk of clips given in float64; see `add(_:clips:tokens:features:)` for `[Float]`.
    public mutating func add(_ activations: [Double], clips: Int, tokens: Int, features: Int) throws {
        try activations.withUnsafeBufferPointer { try addChunk($0, clips: clips, tokens: tokens, features: features) }
    }

    /// Adds another accumulator's clips (sums and counts add; the result equals one accumulator fed all
    /// chunks up to float64 rounding of the sum).
    public mutating func merge(_ other: PatchSimilarityAccumulator) {
        clips += other.clips
        degenerateTokens += other.degenerateTokens
        sum += other.sum
        if keepsClipValues { clipValues += other.clipValues }
    }

    /// Replaces every sum by its total over the parts of a computation split by rows (for example the
    /// ranks of an MPI job, each on its own clips): `reduce` is called on each array of sums in a fixed
    /// order, the same on every part, and must leave in it the elementwise sum of that array over the
    /// parts (an allreduce). Counts travel as float64, exact below 2⁵³. A part that saw no rows
    /// contributes zeros.
    /// `clipValues` are not combined (gather them in clip order).
    public mutating func combineSums(_ reduce: (UnsafeMutableBufferPointer<Double>) -> Void) {
        var scalars = [Double(clips), Double(degenerateTokens), sum]
        scalars.withUnsafeMutableBufferPointer { reduce($0) }
        clips = Int(scalars[0])
        degenerateTokens = Int(scalars[1])
        sum = scalars[2]
    }

    /// The mean over clips of the clip values.
    ///
    /// - Throws: `MetricUndefined` when no clips were added.
    public func value() throws -> Double { try result().value }

    /// The metric with its counts.
    ///
    /// - Throws: `MetricUndefined` when no clips were added.
    public func result() throws -> PatchSimilarity {
        guard clips > 0 else { throw MetricUndefined("patch similarity: no clips were added") }
        return PatchSimilarity(value: sum / Double(clips), clips: clips, degenerateTokens: degenerateTokens)
    }

    /// The clip values of a chunk, in clip order, and the chunk's zero-variance tokens, without adding
    /// them (`add(clipValues:degenerateTokens:)` adds them as `add` would): a chunk's values can be
    /// computed on any thread and added in clip order, giving the sum one accumulator fed every chunk in
    /// order gives, to the bit.
    ///
    /// - Throws: as `add(_:clips:tokens:features:)`.
    public static func clipValues(_ activations: UnsafeBufferPointer<Float>, clips: Int, tokens: Int,
                                  features: Int) throws -> (values: [Double], degenerateTokens: Int) {
        try terms(activations, clips: clips, tokens: tokens, features: features)
    }

    /// `clipValues` of a chunk given in float64.
    public static func clipValues(_ activations: UnsafeBufferPointer<Double>, clips: Int, tokens: Int,
                                  features: Int) throws -> (values: [Double], degenerateTokens: Int) {
        try terms(activations, clips: clips, tokens: tokens, features: features)
    }

    /// Adds clip values computed by `clipValues`, in order.
    public mutating func add(clipValues values: [Double], degenerateTokens: Int) {
        for v in values { sum += v }
        if keepsClipValues { clipValues += values }
        clips += values.count
        self.degenerateTokens += degenerateTokens
    }

    private mutating func addChunk<S: BLASScalar>(_ x: UnsafeBufferPointer<S>, clips n: Int, tokens t: Int,
                                                  features d: Int) throws {
        let (values, degenerate) = try PatchSimilarityAccumulator.terms(x, clips: n, tokens: t, features: d)
        add(clipValues: values, degenerateTokens: degenerate)
    }

    private static func terms<S: BLASScalar>(_ x: UnsafeBufferPointer<S>, clips n: Int, tokens t: Int,
                                             features d: Int) throws -> (values: [Double], degenerateTokens: Int) {
        try checkTokenShape(metric: "patch similarity", count: x.count, clips: n, tokens: t, features: d)
        guard t >= 2 else {
            throw MetricUndefined("patch similarity needs at least 2 tokens per clip, got \(t)")
        }
        var values: [Double] = []
        values.reserveCapacity(n)
        var degenerate = 0
        var centred = [Double](repeating: 0, count: d)
        var centred4 = [SIMD4<Double>](repeating: .zero, count: d)
        var total = [Double](repeating: 0, count: d)   // Σᵢ zᵢ of the current clip
        try centred.withUnsafeMutableBufferPointer { centred in
            try centred4.withUnsafeMutableBufferPointer { centred4 in
                try total.withUnsafeMutableBufferPointer { total in
                    for c in 0..<n {
                        for k in 0..<d { total[k] = 0 }
                        var unitTokens = 0
                        var i = 0
                        // Four tokens at a time, one per SIMD lane: each lane does the one-token arithmetic
                        // below in the same order, so the same bits, with four independent sums in flight.
                        while i + 4 <= t {
                            if addFourTokens(x, at: (c * t + i) * d, features: d, centred: centred4, into: total) {
                                unitTokens += 4
                            } else {
                                // A constant or non-finite token among the four: one token at a time.
                                for j in i..<(i + 4) {
                                    if try addToken(x, clip: c, token: j, at: (c * t + j) * d, features: d, centred: centred, into: total) {
                                        unitTokens += 1
                                    } else { degenerate += 1 }
                                }
                            }
                            i += 4
                        }
                        while i < t {
                            if try addToken(x, clip: c, token: i, at: (c * t + i) * d, features: d, centred: centred, into: total) {
                                unitTokens += 1
                            } else { degenerate += 1 }
                            i += 1
                        }
                        var norm2 = 0.0
                        for k in 0..<d { norm2 += total[k] * total[k] }
                        values.append((norm2 - Double(unitTokens)) / Double(t * (t - 1)))
                    }
                }
            }
        }
        return (values, degenerate)
    }

    /// Adds the unit vector z of the token at `base` to `total`; false (adding nothing) for a constant
    /// token. Throws for a non-finite value, naming the first in feature order.
    @inline(__always)
    private static func addToken<S: BLASScalar>(_ x: UnsafeBufferPointer<S>, clip c: Int, token i: Int, at base: Int, features d: Int,
                                                centred: UnsafeMutableBufferPointer<Double>,
                                                into total: UnsafeMutableBufferPointer<Double>) throws -> Bool {
        var s = 0.0
        var constant = true
        let first = x[base]
        for k in 0..<d {
            let v = x[base + k]
            guard v.isFinite else {
                throw MetricUndefined("patch similarity: non-finite value at clip \(c) of the chunk, token \(i), feature \(k)")
            }
            if v != first { constant = false }
            s += Double(v)
        }
        if constant { return false }
        let mean = s / Double(d)
        var ss = 0.0
        for k in 0..<d {
            let v = Double(x[base + k]) - mean
            centred[k] = v
            ss += v * v
        }
        let inv = 1 / ss.squareRoot()
        for k in 0..<d { total[k] += centred[k] * inv }
        return true
    }

    /// `addToken` for the four consecutive tokens at `base`, one per lane, adding to `total` in token
    /// order; false, having added nothing, when one of them is constant or a sum is not finite (a
    /// non-finite value, or an overflow of float64 values), which `addToken` then handles token by token.
    @inline(__always)
    private static func addFourTokens<S: BLASScalar>(_ x: UnsafeBufferPointer<S>, at base: Int, features d: Int,
                                                     centred: UnsafeMutableBufferPointer<SIMD4<Double>>,
                                                     into total: UnsafeMutableBufferPointer<Double>) -> Bool {
        let p = x.baseAddress! + base
        @inline(__always) func lanes(_ k: Int) -> SIMD4<Double> {
            SIMD4(Double(p[k]), Double(p[d + k]), Double(p[2 * d + k]), Double(p[3 * d + k]))
        }
        let first = lanes(0)
        var s = SIMD4<Double>.zero
        var varies = SIMDMask<SIMD4<Int64>>(repeating: false)
        for k in 0..<d {
            let v = lanes(k)
            centred[k] = v   // gathered once; centred in the next pass
            varies .|= v .!= first
            s += v
        }
        guard all(varies), s[0].isFinite, s[1].isFinite, s[2].isFinite, s[3].isFinite else { return false }
        let mean = s / Double(d)
        var ss = SIMD4<Double>.zero
        for k in 0..<d {
            let v = centred[k] - mean
            centred[k] = v
            ss += v * v
        }
        let inv = 1 / ss.squareRoot()
        for k in 0..<d {
            let z = centred[k] * inv
            var a = total[k]
            a += z[0]
            a += z[1]
            a += z[2]
            a += z[3]
            total[k] = a
        }
        return true
    }
}

/// Within-clip patch similarity of one array of clips; see `PatchSimilarityAccumulator` for the convention.
///
/// - Parameters:
///   - activations: row-major [clips, tokens, features].
/// - Throws: `MetricUndefined` for no clips, T < 2, a shape mismatch or non-finite input.
/// - Complexity: O(clips · T · D).
public func patchSimilarity(_ activations: [Float], clips: Int, tokens: Int, features: Int) throws -> PatchSimilarity {
    var acc = PatchSimilarityAccumulator()
    try acc.add(activations, clips: clips, tokens: tokens, features: features)
    return try acc.result()
}

extension Metric {
    /// Within-clip patch similarity (`PatchSimilarityAccumulator`).
    static let patchSimilarityDefinitions: [Metric: MetricDefinition] = [
        .patchSimilarity: MetricDefinition(unit: "cosine (-1 to 1)", convention: "per clip: tokens layer-normalised over features (no affine, eps 1e-12) then L2-normalised; mean cosine over ordered token pairs i != j; mean over clips (paper's eval code)", undefinedWhen: ["no clips", "fewer than 2 tokens", "NaN or Inf in the data"]),
    ]
}
