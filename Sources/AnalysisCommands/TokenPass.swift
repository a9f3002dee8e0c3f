import ActivationStore
import Foundation
import LinearAlgebra
import RepresentationMetrics
import Synchronization

/// One pass over the tokens of chosen depths on one process: the patch similarity of every depth, the
/// token shift of every consecutive pair, and optionally the clip vectors (means over tokens) of every
/// depth, so a report reads each token once.
///
/// The clips go in slabs (whole storage chunks of clips when they fit, about `slabBytes` of tokens per
/// depth), one slab per core. A slab's job reads its depths in turn, keeping the previous depth for the token
/// shift; float32 tokens in unfiltered chunks are read chunk by chunk under HDF5's lock and put in
/// place after it is released, so one core arranges and measures while the other reads. The slabs'
/// per-clip and per-token terms are added to the accumulators in clip order, so every number is the one
/// a single accumulator fed every clip in order gives, to the bit; the clip vectors are summed in token
/// order in float64, as `DepthStream` pools them.
struct TokenPass {
    var file: ActivationFile
    var depths: [Int]
    var keepsClipValues: Bool
    var keepsClipVectors: Bool
    /// Bytes of one depth of a slab, as the pass holds it (float32, or float64 when a depth is float64).
    var slabBytes = 16 << 20

    /// The slab size that keeps a pass within `budget` bytes of tokens: each core holds two depths of its
    /// slab (the one read and the previous one, for the token shift). 16 MiB for the default 64 MiB
    /// budget on two cores.
    static func slabBytes(budget: Int) -> Int {
        max(1, budget / (2 * max(1, Parallel.threads)))
    }

    /// True when a selected depth is float64: the pass then holds every depth as float64.
    var isWide: Bool { depths.contains { file.tokenTypes[$0] == .float64 } }

    /// The clip ranges of the slabs: at most `slabBytes` of tokens each (at least one clip). When the
    /// file is chunked by clips they are whole chunks of clips if a chunk fits, else near-equal parts of
    /// one chunk (each slab then reads its chunk whole, so a chunk is read once per part: the price of a
    /// budget below a chunk).
    func slabs() -> [Range<Int>] {
        let n = file.clipCount
        let perClip = max(1, file.tokenCount * file.featureCount * (isWide ? 8 : 4))
        let size = max(1, slabBytes / perClip)
        let c = max(1, file.chunkClips ?? 1)
        if size < c {
            return stride(from: 0, to: n, by: c).flatMap { o -> [Range<Int>] in
                let rows = min(c, n - o), parts = (rows + size - 1) / size
                return (0..<parts).map { (o + rows * $0 / parts)..<(o + rows * ($0 + 1) / parts) }
            }
        }
        let step = size / c * c
        return stride(from: 0, to: n, by: step).map { $0..<min($0 + step, n) }
    }

    /// What one slab gave: per depth its clip values (or the error), per pair its token-shift terms.
    struct SlabResult: @unchecked Sendable {
        var clips: Range<Int>
        var patch: [Result<(values: [Double], degenerateTokens: Int), Error>]
        var shifts: [Result<TokenShiftAccumulator.Terms, Error>]
    }

    /// The accumulators, fed the slabs' results in slab order as they arrive.
    struct Merger {
        var measured: TokenAnalysis.Measured
        var pending: [Int: SlabResult] = [:]
        var next = 0

        mutating func receive(_ slab: Int, _ result: SlabResult) {
            pending[slab] = result
            while let r = pending.removeValue(forKey: next) {
                let place = "in clips \(r.clips.lowerBound)..<\(r.clips.upperBound): "
                for i in r.patch.indices where measured.patchErrors[i] == nil {
                    switch r.patch[i] {
                    case .success(let v): measured.patch[i].add(clipValues: v.values, degenerateTokens: v.degenerateTokens)
                    case .failure(let e): measured.patchErrors[i] = place + "\(e)"
                    }
                }
                for i in r.shifts.indices where measured.shiftErrors[i] == nil {
                    switch r.shifts[i] {
                    case .success(let terms): measured.shifts[i].add(terms: terms)
                    case .failure(let e): measured.shiftErrors[i] = place + "\(e)"
                    }
                }
                next += 1
            }
        }
    }

    /// Runs the pass; `progress` gets (slabs done, total). A read that fails fails the call (the first
    /// failing slab's error, after the running slabs end; slabs not yet started are skipped).
    func run(progress: ((Int, Int) -> Void)?) throws -> TokenAnalysis.Measured {
        let n = file.clipCount, d = file.featureCount
        let empty = TokenAnalysis.Measured(
            patch: depths.map { _ in PatchSimilarityAccumulator(keepsClipValues: keepsClipValues) },
            shifts: depths.dropLast().map { _ in TokenShiftAccumulator() },
            patchErrors: depths.map { _ in nil }, shiftErrors: depths.dropLast().map { _ in nil },
            clipValues: depths.map { _ in [] })
        let merger = Mutex(Merger(measured: empty))
        let failed = Mutex(false)
        // Clip vectors: each slab writes its own rows.
        let vectors: [UnsafeMutableBufferPointer<Double>] = keepsClipVectors
            ? depths.map { _ in UnsafeMutableBufferPointer<Double>.allocate(capacity: n * d) } : []
        defer { for v in vectors { v.deallocate() } }
        let rows = UncheckedSendable(vectors)
        let ranges = slabs()
        let wide = isWide
        let pass = self
        let outcomes = Parallel.map(ranges.count, { s -> Error? in
            if failed.withLock({ $0 }) { return nil }
            do {
                let result = wide ? try pass.slab(ranges[s], as: Double.self, vectors: rows.value)
                                  : try pass.slab(ranges[s], as: Float.self, vectors: rows.value)
                merger.withLock { $0.receive(s, result) }
                return nil
            } catch {
                failed.withLock { $0 = true }
                return error
            }
        }, finished: { _, _, done in progress?(done, ranges.count) })
        if let error = outcomes.compactMap({ $0 }).first { throw error }
        var measured = merger.withLock { $0.measured }
        measured.clipVectors = vectors.map { Array($0) }
        return measured
    }

    /// One slab: each depth read in turn, pooled into `vectors`, measured, and compared with the previous.
    func slab<S: TokenScalar>(_ r: Range<Int>, as: S.Type, vectors: [UnsafeMutableBufferPointer<Double>]) throws -> SlabResult {
        let t = file.tokenCount, d = file.featureCount
        var result = SlabResult(clips: r, patch: [], shifts: [])
        var previous: [S] = []
        var current = [S](repeating: 0, count: r.count * t * d)
        for (i, depth) in depths.enumerated() {
            try S.read(file, depth: depth, clips: r, into: &current)
            if !vectors.isEmpty {
                let means = DepthStream.tokenMeans(current, clips: r.count, tokens: t, features: d)
                (vectors[i].baseAddress! + r.lowerBound * d).update(from: means, count: means.count)
            }
            result.patch.append(Result { try current.withUnsafeBufferPointer {
                try S.patchValues($0, clips: r.count, tokens: t, features: d)
            } })
            if i > 0 {
                result.shifts.append(Result { try previous.withUnsafeBufferPointer { a in
                    try current.withUnsafeBufferPointer { b in try S.shiftTerms(a, b, clips: r.count, tokens: t, features: d) }
                } })
            }
            swap(&previous, &current)
            if current.count != previous.count { current = [S](repeating: 0, count: previous.count) }
        }
        return result
    }
}

/// The element types a token pass reads: float32 (float16 and float32 files) or float64.
protocol TokenScalar: BinaryFloatingPoint {
    static func read(_ f: ActivationFile, depth: Int, clips: Range<Int>, into out: inout [Self]) throws
    static func patchValues(_ x: UnsafeBufferPointer<Self>, clips: Int, tokens: Int, features: Int) throws -> (values: [Double], degenerateTokens: Int)
    static func shiftTerms(_ a: UnsafeBufferPointer<Self>, _ b: UnsafeBufferPointer<Self>, clips: Int, tokens: Int, features: Int) throws -> TokenShiftAccumulator.Terms
}

extension Float: TokenScalar {
    /// Float32 tokens in unfiltered chunks are read chunk by chunk and put in place outside HDF5's lock;
    /// others through `ActivationFile.tokens` (float16 converted to float32 by HDF5, exactly).
    static func read(_ f: ActivationFile, depth: Int, clips r: Range<Int>, into out: inout [Float]) throws {
        let direct = try out.withUnsafeMutableBufferPointer { o in
            try f.forEachTokenChunk(depth: depth, clips: r) { $0.copy(into: o.baseAddress!, firstRow: r.lowerBound) }
        }
        if !direct {
            out = []   // not held beside the new array
            out = try f.tokens(depth: depth, clips: r, as: Float.self)
        }
    }

    static func patchValues(_ x: UnsafeBufferPointer<Float>, clips: Int, tokens: Int, features: Int) throws -> (values: [Double], degenerateTokens: Int) {
        try PatchSimilarityAccumulator.clipValues(x, clips: clips, tokens: tokens, features: features)
    }

    static func shiftTerms(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, clips: Int, tokens: Int, features: Int) throws -> TokenShiftAccumulator.Terms {
        try TokenShiftAccumulator.terms(from: a, to: b, clips: clips, tokens: tokens, features: features)
    }
}

extension Double: TokenScalar {
    static func read(_ f: ActivationFile, depth: Int, clips r: Range<Int>, into out: inout [Double]) throws {
        out = []   // not held beside the new array
        out = try f.tokens(depth: depth, clips: r, as: Double.self)
    }

    static func patchValues(_ x: UnsafeBufferPointer<Double>, clips: Int, tokens: Int, features: Int) throws -> (values: [Double], degenerateTokens: Int) {
        try PatchSimilarityAccumulator.clipValues(x, clips: clips, tokens: tokens, features: features)
    }

    static func shiftTerms(_ a: UnsafeBufferPointer<Double>, _ b: UnsafeBufferPointer<Double>, clips: Int, tokens: Int, features: Int) throws -> TokenShiftAccumulator.Terms {
        try TokenShiftAccumulator.terms(from: a, to: b, clips: clips, tokens: tokens, features: features)
    }
}
