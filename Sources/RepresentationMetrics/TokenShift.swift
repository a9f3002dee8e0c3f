import LinearAlgebra

// Token shift between two depths (a token-level metric, "block influence").
//
// Streaming: callers feed clip chunks (row-major [clips, T, D]) to the accumulator, accumulators merge
// by adding their float64 sums and integer counts, and the result is read at the end.

/// How much tokens change between two depths ("block influence").
public struct TokenShift: Sendable, Codable, Equatable {
    /// Mean over compared tokens of 1 − cos(a, b).
    public var cosineDistance: Double
    /// Mean over compared tokens of ‖b − a‖ / ‖a‖.
    public var relativeChange: Double
    /// Token pairs seen (clips · T summed over chunks), including the excluded zero-norm ones.
    public var tokens: Int
    /// Token pairs excluded from both means because ‖a‖ = 0 or ‖b‖ = 0.
    public var zeroNormTokens: Int

    public init(cosineDistance: Double, relativeChange: Double, tokens: Int, zeroNormTokens: Int) {
        self.cosineDistance = cosineDistance
        self.relativeChange = relativeChange
        self.tokens = tokens
        self.zeroNormTokens = zeroNormTokens
    }
}

/// Streams the token shift between two depths of the same clips ("block influence", Men et al. 2024,
/// ShortGPT).
///
/// Convention: for each token, a = h_l (earlier depth) and b = h_{l'} (later depth), both in ℝᴰ:
///
///     cosine distance  = 1 − cos(a, b) = ‖a/‖a‖ − b/‖b‖‖² / 2
///     relative change  = ‖b − a‖ / ‖a‖
///
/// each averaged over all tokens of all clips (every clip has T tokens, so this is also the mean over
/// clips of the per-clip means). The cosine distance is evaluated in the half-squared-chord form above,
/// which is the same number but keeps full relative precision for small angles (each coordinate is
/// scaled by the reciprocal of its vector's norm, within two roundings of the quotient). A token with ‖a‖ = 0 or
/// ‖b‖ = 0 has no cosine; it is excluded from both means (so both share one denominator) and counted in
/// `zeroNormTokens`. All arithmetic is float64.
public struct TokenShiftAccumulator: Sendable {
    private var cosineSum = 0.0
    private var relativeSum = 0.0
    /// Token pairs seen so far.
    public private(set) var tokens = 0
    /// Token pairs excluded so far because one side has zero norm.
    public private(set) var zeroNormTokens = 0

    public init() {}

    /// Adds a chunk: the same clips at two depths, each row-major [clips, tokens, features].
    ///
    /// On error the accumulator is unchanged.
    /// - Parameters:
    ///   - a: tokens at the earlier depth.
    ///   - b: the same tokens at the later depth.
    /// - Throws: `MetricUndefined` for a shape mismatch or a non-finite value (naming clip and token,
    ///   counted within this chunk).
    /// - Complexity: O(clips · T · D).
    public mutating func add(from a: [Float], to b: [Float], clips: Int, tokens: Int, features: Int) throws {
        try a.withUnsafeBufferPointer { pa in
            try b.withUnsafeBufferPointer { pb in try addChunk(pa, pb, clips: clips, tokens: tokens, features: features) }
        }
    }

    /// Adds a chunk given in float64; see `add(from:to:clips:tokens:features:)` for `[Float]`.
    public mutating func add(from a: [Double], to b: [Double], clips: Int, tokens: Int, features: Int) throws {
        try a.withUnsafeBufferPointer { pa in
            try b.withUnsafeBufferPointer { pb in try addChunk(pa, pb, clips: clips, tokens: tokens, features: features) }
        }
    }

    /// Adds another accumulator's sums and counts.
    public mutating func merge(_ other: TokenShiftAccumulator) {
        cosineSum += other.cosineSum
        relativeSum += other.relativeSum
        tokens += other.tokens
        zeroNormTokens += other.zeroNormTokens
    }

    /// Replaces every sum by its total over the parts of a computation split by rows (for example the
    /// ranks of an MPI job, each on its own clips): `reduce` is called on each array of sums in a fixed
    /// order, the same on every part, and must leave in it the elementwise sum of that array over the
    /// parts (an allreduce). Counts travel as float64, exact below 2⁵³. A part that saw no rows
    /// contributes zeros.
    public mutating func combineSums(_ reduce: (UnsafeMutableBufferPointer<Double>) -> Void) {
        var scalars = [cosineSum, relativeSum, Double(tokens), Double(zeroNormTokens)]
        scalars.withUnsafeMutableBufferPointer { reduce($0) }
        cosineSum = scalars[0]
        relativeSum = scalars[1]
        tokens = Int(scalars[2])
        zeroNormTokens = Int(scalars[3])
    }

    /// The means over the compared tokens.
    ///
    /// - Throws: `MetricUndefined` when no tokens were added or every token had zero norm.
    public func result() throws -> TokenShift {
        guard tokens > 0 else { throw MetricUndefined("token shift: no tokens were added") }
        let used = tokens - zeroNormTokens
        guard used > 0 else {
            throw MetricUndefined("token shift: all \(tokens) tokens have zero norm at one of the two depths")
        }
        return TokenShift(cosineDistance: cosineSum / Double(used), relativeChange: relativeSum / Double(used),
                          tokens: tokens, zeroNormTokens: zeroNormTokens)
    }

    /// The per-token terms of a chunk, in token order, without adding them
    /// (`add(terms:)` adds them as `add` would): a chunk's terms can be computed on any thread and added
    /// in clip order, giving the sums one accumulator fed every chunk in order gives, to the bit.
    ///
    /// - Throws: as `add(from:to:clips:tokens:features:)`.
    public static func terms(from a: UnsafeBufferPointer<Float>, to b: UnsafeBufferPointer<Float>, clips: Int, tokens: Int,
                             features: Int) throws -> Terms {
        try chunkTerms(a, b, clips: clips, tokens: tokens, features: features)
    }

    /// `terms` of a chunk given in float64.
    public static func terms(from a: UnsafeBufferPointer<Double>, to b: UnsafeBufferPointer<Double>, clips: Int, tokens: Int,
                             features: Int) throws -> Terms {
        try chunkTerms(a, b, clips: clips, tokens: tokens, features: features)
    }

    /// A chunk's contributions: 1 − cos and the relative change of every compared token, in token order,
    /// and the counts.
    public struct Terms: Sendable {
        public var cosine: [Double] = []
        public var relative: [Double] = []
        public var tokens = 0
        public var zeroNormTokens = 0
    }

    /// Adds the terms of a chunk computed by `terms`.
    public mutating func add(terms: Terms) {
        for v in terms.cosine { cosineSum += v }
        for v in terms.relative { relativeSum += v }
        tokens += terms.tokens
        zeroNormTokens += terms.zeroNormTokens
    }

    private mutating func addChunk<S: BLASScalar>(_ a: UnsafeBufferPointer<S>, _ b: UnsafeBufferPointer<S>,
                                                  clips n: Int, tokens t: Int, features d: Int) throws {
        add(terms: try TokenShiftAccumulator.chunkTerms(a, b, clips: n, tokens: t, features: d))
    }

    private static func chunkTerms<S: BLASScalar>(_ a: UnsafeBufferPointer<S>, _ b: UnsafeBufferPointer<S>,
                                                  clips n: Int, tokens t: Int, features d: Int) throws -> Terms {
        try checkTokenShape(metric: "token shift (from)", count: a.count, clips: n, tokens: t, features: d)
        try checkTokenShape(metric: "token shift (to)", count: b.count, clips: n, tokens: t, features: d)
        var out = Terms()
        out.cosine.reserveCapacity(n * t)
        out.relative.reserveCapacity(n * t)
        // The four tokens' values, gathered once for both passes over the features.
        let gathered = UnsafeMutableBufferPointer<SIMD4<Double>>.allocate(capacity: 2 * d)
        defer { gathered.deallocate() }
        for c in 0..<n {
            var i = 0
            // Four tokens at a time, one per SIMD lane: each lane does the one-token arithmetic below in
            // the same order, so the same bits, with four independent sums (and divisions) in flight.
            while i + 4 <= t {
                if !addFourTokens(a, b, at: (c * t + i) * d, features: d, gathered: gathered, to: &out) {
                    // A zero norm or a sum that is not finite among the four: one token at a time.
                    for j in i..<(i + 4) { try addToken(a, b, clip: c, token: j, at: (c * t + j) * d, features: d, to: &out) }
                }
                i += 4
            }
            while i < t {
                try addToken(a, b, clip: c, token: i, at: (c * t + i) * d, features: d, to: &out)
                i += 1
            }
        }
        return out
    }

    /// The terms of the token at `base`; throws for a non-finite value, naming the first in feature order.
    @inline(__always)
    private static func addToken<S: BLASScalar>(_ a: UnsafeBufferPointer<S>, _ b: UnsafeBufferPointer<S>, clip c: Int, token i: Int,
                                                at base: Int, features d: Int, to out: inout Terms) throws {
        var aa = 0.0, bb = 0.0, diff = 0.0
        for k in 0..<d {
            let u = a[base + k], v = b[base + k]
            guard u.isFinite, v.isFinite else {
                throw MetricUndefined("token shift: non-finite value at clip \(c) of the chunk, token \(i), feature \(k)")
            }
            let x = Double(u), y = Double(v)
            aa += x * x
            bb += y * y
            diff += (y - x) * (y - x)
        }
        out.tokens += 1
        guard aa > 0, bb > 0 else { out.zeroNormTokens += 1; return }
        let na = aa.squareRoot(), nb = bb.squareRoot()
        let ra = 1 / na, rb = 1 / nb
        var chord = 0.0
        for k in 0..<d {
            let e = Double(a[base + k]) * ra - Double(b[base + k]) * rb
            chord += e * e
        }
        out.cosine.append(chord / 2)
        out.relative.append(diff.squareRoot() / na)
    }

    /// `addToken` for the four consecutive tokens at `base`, one per lane, appending in token order;
    /// false, having appended nothing, when a norm is zero or a sum is not finite (a non-finite value,
    /// or an overflow of float64 values), which `addToken` then handles token by token.
    @inline(__always)
    private static func addFourTokens<S: BLASScalar>(_ a: UnsafeBufferPointer<S>, _ b: UnsafeBufferPointer<S>, at base: Int,
                                                     features d: Int, gathered: UnsafeMutableBufferPointer<SIMD4<Double>>,
                                                     to out: inout Terms) -> Bool {
        let p = a.baseAddress! + base, q = b.baseAddress! + base
        @inline(__always) func lanes(_ x: UnsafePointer<S>, _ k: Int) -> SIMD4<Double> {
            SIMD4(Double(x[k]), Double(x[d + k]), Double(x[2 * d + k]), Double(x[3 * d + k]))
        }
        let xs = gathered.baseAddress!, ys = gathered.baseAddress! + d
        var aa = SIMD4<Double>.zero, bb = SIMD4<Double>.zero, diff = SIMD4<Double>.zero
        for k in 0..<d {
            let x = lanes(p, k), y = lanes(q, k)
            xs[k] = x
            ys[k] = y
            aa += x * x
            bb += y * y
            diff += (y - x) * (y - x)
        }
        for j in 0..<4 {
            guard aa[j].isFinite, bb[j].isFinite, diff[j].isFinite, aa[j] > 0, bb[j] > 0 else { return false }
        }
        let na = aa.squareRoot(), nb = bb.squareRoot()
        let ra = 1 / na, rb = 1 / nb
        var chord = SIMD4<Double>.zero
        for k in 0..<d {
            let e = xs[k] * ra - ys[k] * rb
            chord += e * e
        }
        let relative = diff.squareRoot() / na
        for j in 0..<4 {
            out.cosine.append(chord[j] / 2)
            out.relative.append(relative[j])
        }
        out.tokens += 4
        return true
    }
}

/// Token shift between two depths of the same clips; see `TokenShiftAccumulator` for the convention.
///
/// - Parameters:
///   - a: tokens at the earlier depth, row-major [clips, tokens, features].
///   - b: the same tokens at the later depth, same shape.
/// - Throws: `MetricUndefined` for no tokens, all tokens of zero norm, a shape mismatch or non-finite input.
/// - Complexity: O(clips · T · D).
public func tokenShift(from a: [Float], to b: [Float], clips: Int, tokens: Int, features: Int) throws -> TokenShift {
    var acc = TokenShiftAccumulator()
    try acc.add(from: a, to: b, clips: clips, tokens: tokens, features: features)
    return try acc.result()
}

extension Metric {
    /// Token shift between consecutive selected depths (`TokenShiftAccumulator`).
    static let tokenShiftDefinitions: [Metric: MetricDefinition] = [
        .tokenShiftCosine: MetricDefinition(unit: "cosine distance (0 to 2)", convention: "mean over tokens and clips of 1 - cos(h_l, h_next) between consecutive selected depths (block influence, ShortGPT)", undefinedWhen: ["no token with a nonzero norm at both depths", "NaN or Inf in the data"]),
        .tokenShiftRelative: MetricDefinition(unit: "ratio of norms", convention: "mean over tokens and clips of ||h_next - h_l|| / ||h_l||; tokens with zero norm at either depth are excluded and counted", undefinedWhen: ["no token with a nonzero norm at both depths", "NaN or Inf in the data"]),
    ]
}
