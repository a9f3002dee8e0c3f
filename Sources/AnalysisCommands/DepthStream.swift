import ActivationStore
import Foundation
import LinearAlgebra
import Synchronization

/// How a clip's tokens become rows of a representation matrix.
public enum Pooling: String, Sendable, Codable, CaseIterable {
    /// One row per clip: the mean over its tokens (the clip vector; there is no CLS token).
    case mean
    /// One row per token: N·T rows.
    case tokens
}

/// Which depths an analysis covers.
public enum DepthSelection: ArgumentSyntax, Sendable, Equatable {
    /// The embedding (depth 0) and the last layer of each block.
    case blocks
    /// Every depth 0…L.
    case layers
    /// An explicit list.
    case list([Int])

    /// Parses `blocks`, `layers` or a comma-separated list such as `0,3,6`.
    public init(parsing text: String) throws {
        switch text {
        case "blocks": self = .blocks
        case "layers", "all": self = .layers
        default:
            guard let parts = parseList(text, as: Int.self), parts.allSatisfy({ $0 >= 0 }) else {
                throw AnalysisError("--depth must be 'blocks', 'layers' or a comma-separated list of depths such as 0,3,6 (got '\(text)')")
            }
            self = .list(parts)
        }
    }

    /// The depths of `file`, validated against it.
    public func depths(in file: ActivationFile) throws -> [Int] {
        switch self {
        case .blocks: return [0] + file.metadata.blockEnds
        case .layers: return Array(file.depths)
        case .list(let ds):
            if let bad = ds.first(where: { !file.depths.contains($0) }) {
                throw AnalysisError("\(file.path): depth \(bad) is out of range; this file holds depths 0...\(file.layerCount)")
            }
            return ds
        }
    }
}

/// A failure of an analysis (bad arguments, mismatched files), as one line.
public struct AnalysisError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ message: String) { description = message }
}

/// Reads chosen depths of one or more files in clip batches — one pass over each file for all
/// depths — and hands every batch to a consumer as float64 matrices.
///
/// The next batch is read on a background thread while the consumer works on the current one
/// (HDF5 reads are serialised by the store; BLAS work in the consumer runs alongside).
public struct DepthStream {
    public struct Source {
        public var file: ActivationFile
        public var depths: [Int]
        public init(file: ActivationFile, depths: [Int]) {
            self.file = file
            self.depths = depths
        }
    }

    public var sources: [Source]
    public var pooling: Pooling
    /// Budget for one batch of every source's depths, in bytes of float64 tokens.
    public var maxBatchBytes: Int
    /// Batches are whole multiples of this many clips (for minibatch estimators).
    public var clipMultiple: Int
    /// The clips read (a rank's share in an MPI job); nil for every clip. Batches start at its lower bound.
    public var clips: Range<Int>? = nil

    public init(sources: [Source], pooling: Pooling, maxBatchBytes: Int = 64 << 20, clipMultiple: Int = 1) {
        self.sources = sources
        self.pooling = pooling
        self.maxBatchBytes = maxBatchBytes
        self.clipMultiple = max(1, clipMultiple)
    }

    public var clipCount: Int { sources.first?.file.clipCount ?? 0 }

    /// Representations in order: each source's depths in turn.
    public var representationCount: Int { sources.reduce(0) { $0 + $1.depths.count } }

    /// Clip ranges of the batches.
    public func batches() -> [Range<Int>] {
        // Bytes held per clip of a batch: token rows in float64 for every depth, or, when pooling to
        // clip vectors, the pooled vectors of every depth twice: the batch in use and the next one being
        // read (`DepthStream.tokenMeans` bounds the tokens it holds while pooling by itself).
        let perClip: Int
        switch pooling {
        case .tokens:
            perClip = sources.reduce(0) { $0 + $1.depths.count * $1.file.tokenCount * $1.file.featureCount * 8 }
        case .mean:
            perClip = 2 * sources.reduce(0) { $0 + $1.depths.count * $1.file.featureCount * 8 }
        }
        var size = max(1, maxBatchBytes / max(1, perClip))
        if let chunk = sources.first?.file.chunkClips, chunk > 0, size > chunk { size = size / chunk * chunk }
        if size > clipMultiple { size = size / clipMultiple * clipMultiple } else { size = clipMultiple }
        let range = clips ?? 0..<clipCount
        return stride(from: range.lowerBound, to: range.upperBound, by: size).map { $0..<min($0 + size, range.upperBound) }
    }

    /// Rows of one depth for clips `r`, pooled.
    static func load(_ file: ActivationFile, depth: Int, clips r: Range<Int>, pooling: Pooling) throws -> Matrix<Double> {
        let rows = r.count * file.tokenCount, d = file.featureCount
        switch pooling {
        case .mean:
            if let known = file.knownClipVectors[depth] {
                return Matrix(rows: r.count, cols: d, storage: Array(known[(r.lowerBound * d)..<(r.upperBound * d)]))
            }
            return Matrix(rows: r.count, cols: d, storage: try tokenMeans(file, depth: depth, clips: r))
        case .tokens:
            // float64 files are read as they are; float16/32 are read as float32 (HDF5's own conversion
            // to float64 is several times slower) and widened here, which is exact.
            if file.tokenTypes[depth] == .float64 {
                return Matrix(rows: rows, cols: d, storage: try file.tokens(depth: depth, clips: r, as: Double.self))
            }
            return Matrix(rows: rows, cols: d, storage: try file.tokens(depth: depth, clips: r, as: Float.self).map { Double($0) })
        }
    }

    /// The mean over tokens of every clip in `r` at `depth`, row-major [r.count, D], in float64: the
    /// sum over tokens in token order, times 1/T. Float32 tokens stored in unfiltered chunks are summed
    /// straight from the chunks (`ActivationFile.forEachTokenChunk`); others are read in parts of at
    /// most `tokenMeansReadBytes` and summed in the same order, so both give the same bits.
    static func tokenMeans(_ file: ActivationFile, depth: Int, clips r: Range<Int>) throws -> [Double] {
        let t = file.tokenCount, d = file.featureCount
        var sums = [Double](repeating: 0, count: r.count * d)
        let direct = try sums.withUnsafeMutableBufferPointer { o in
            try file.forEachTokenChunk(depth: depth, clips: r) { addTokenSums($0, first: r.lowerBound, into: o) }
        }
        if direct {
            let inv = 1 / Double(t)
            for i in sums.indices { sums[i] *= inv }
            return sums
        }
        let wide = file.tokenTypes[depth] == .float64
        var step = max(1, tokenMeansReadBytes / max(1, t * d * (wide ? 8 : 4)))
        if let c = file.chunkClips, c > 0, step > c { step = step / c * c }
        var out: [Double] = []
        out.reserveCapacity(r.count * d)
        for lo in stride(from: r.lowerBound, to: r.upperBound, by: step) {
            let part = lo..<min(lo + step, r.upperBound)
            // float16/32 are read as float32 (HDF5's conversion to float64 is several times slower) and
            // widened exactly.
            out += wide ? tokenMeans(try file.tokens(depth: depth, clips: part, as: Double.self), clips: part.count, tokens: t, features: d)
                        : tokenMeans(try file.tokens(depth: depth, clips: part, as: Float.self), clips: part.count, tokens: t, features: d)
        }
        return out
    }

    /// Most bytes of tokens `tokenMeans` reads at once when it cannot sum straight from the chunks.
    static let tokenMeansReadBytes = 32 << 20

    /// Means over the middle dimension of row-major [clips, t, d] values, summed in token order.
    static func tokenMeans<S: BinaryFloatingPoint>(_ x: [S], clips: Int, tokens t: Int, features d: Int) -> [Double] {
        var out = [Double](repeating: 0, count: clips * d)
        let inv = 1 / Double(t)
        out.withUnsafeMutableBufferPointer { o in
            x.withUnsafeBufferPointer { p in
                for i in 0..<clips {
                    for j in 0..<t {
                        let base = (i * t + j) * d
                        for k in 0..<d { o[i * d + k] += Double(p[base + k]) }
                    }
                    for k in 0..<d { o[i * d + k] *= inv }
                }
            }
        }
        return out
    }

    /// Adds one stored chunk's tokens, summed over its token dimension in order, into the [clips, D]
    /// sums `o` (clip `first` at the top).
    static func addTokenSums(_ chunk: StoredChunk, first: Int, into o: UnsafeMutableBufferPointer<Double>) {
        let c = chunk.chunk, d = chunk.shape, origin = chunk.origin
        let width = min(c[2], d[2] - origin[2]), height = min(c[1], d[1] - origin[1])
        let (rowStride, tokenStride) = (c[1] * c[2], c[2])
        for i in chunk.rows {
            let row = o.baseAddress! + (i - first) * d[2] + origin[2]
            let block = chunk.values.baseAddress! + (i - origin[0]) * rowStride
            // Eight features at a time in registers, over the chunk's tokens in order (the sums are those
            // of adding token by token into `row`).
            var k = 0
            while k + 8 <= width {
                var a0 = row[k], a1 = row[k + 1], a2 = row[k + 2], a3 = row[k + 3]
                var a4 = row[k + 4], a5 = row[k + 5], a6 = row[k + 6], a7 = row[k + 7]
                var f = block + k
                for _ in 0..<height {
                    a0 += Double(f[0]); a1 += Double(f[1]); a2 += Double(f[2]); a3 += Double(f[3])
                    a4 += Double(f[4]); a5 += Double(f[5]); a6 += Double(f[6]); a7 += Double(f[7])
                    f += tokenStride
                }
                row[k] = a0; row[k + 1] = a1; row[k + 2] = a2; row[k + 3] = a3
                row[k + 4] = a4; row[k + 5] = a5; row[k + 6] = a6; row[k + 7] = a7
                k += 8
            }
            while k < width {
                var a = row[k]
                for j in 0..<height { a += Double(block[j * tokenStride + k]) }
                row[k] = a
                k += 1
            }
        }
    }

    private func loadAll(_ r: Range<Int>) throws -> [Matrix<Double>] {
        let reps = sources.flatMap { s in s.depths.map { (s.file, $0) } }
        guard pooling == .mean, reps.count > 1 else {
            return try reps.map { try DepthStream.load($0.0, depth: $0.1, clips: r, pooling: pooling) }
        }
        // Clip means: one representation per core. Each holds HDF5's lock only while it reads a block
        // of chunks and sums outside it, so one thread sums while the other reads.
        let mode = self.pooling
        return try Parallel.map(reps.count) { i in
            Result { try DepthStream.load(reps[i].0, depth: reps[i].1, clips: r, pooling: mode) }
        }.map { try $0.get() }
    }

    /// Calls `body` for every batch in order, with one matrix per representation.
    /// - Parameter progress: called with (batches done, total) after each batch.
    public func forEach(progress: ((Int, Int) -> Void)? = nil,
                        _ body: (Range<Int>, [Matrix<Double>]) throws -> Void) throws {
        let ranges = batches()
        guard !ranges.isEmpty else { return }
        final class Slot: @unchecked Sendable { var result: Result<[Matrix<Double>], Error>? }
        let queue = DispatchQueue(label: "bwssl.prefetch")
        let stream = self
        func start(_ r: Range<Int>) -> (Slot, DispatchGroup) {
            let slot = Slot(), group = DispatchGroup()
            nonisolated(unsafe) let s = stream
            queue.async(group: group) { slot.result = Result { try s.loadAll(r) } }
            return (slot, group)
        }
        func run() throws {
            var pending = start(ranges[0])
            for (i, r) in ranges.enumerated() {
                pending.1.wait()
                let current = try pending.0.result!.get()
                if i + 1 < ranges.count { pending = start(ranges[i + 1]) }
                try body(r, current)
                progress?(i + 1, ranges.count)
            }
        }
        // Pooled clip vectors make small products: one core computes while the other reads the next
        // batch. Token rows make large ones, worth OpenBLAS's threads.
        if pooling == .mean { try ThreadSetting.withSingleThreadedBLAS(run) } else { try run() }
    }
}

extension DepthStream {
    /// Reads each representation `reps[i]` whole (every clip, mean-pooled as the stream pools) in a job of
    /// its own and hands it to `body(i, &x)` there, one job per core: one core's work on a representation
    /// fills the time the other waits for HDF5's lock while reading, where reading every representation
    /// first left a core idle for most of the read. For one process; `x` is the job's own copy. Once a
    /// read fails, jobs not yet started skip their work unless they come before it in `reps`, and the
    /// first failed read in `reps` order is thrown after every job has ended (whatever order the jobs ran
    /// in); otherwise the results in `reps` order.
    ///
    /// A share of the representations (`ClipVectorHelper.delegated`: those of the last of several files,
    /// or every other one of a single file) may be pooled by a helper process while the jobs read the
    /// rest; their jobs take its vectors, or read themselves whatever it did not deliver.
    /// - Parameter progress: called with (representations done, total).
    static func readEach<T>(_ reps: [(file: ActivationFile, depth: Int)], progress: ((Int, Int) -> Void)?,
                            _ body: @escaping @Sendable (Int, inout Matrix<Double>) -> T) throws -> [T] {
        // The lowest index of a failed read so far: later jobs skip their work, earlier ones still run.
        let failed = Mutex(Int.max)
        let delegated = ClipVectorHelper.delegated(reps)
        let helper = delegated.first.flatMap { ClipVectorHelper.Delivery(file: reps[$0].file, depths: delegated.map { reps[$0].depth }) }
        defer { helper?.finish() }
        var slots: [Int: Int] = [:]
        if helper != nil { for (slot, i) in delegated.enumerated() { slots[i] = slot } }
        let slotOf = slots
        let order = helper == nil ? Array(reps.indices) : ClipVectorHelper.jobOrder(reps.count, delegated: delegated)
        let started = Parallel.map(reps.count, { j -> Result<T, Error>? in
            let i = order[j]
            if failed.withLock({ $0 < i }) { return nil }
            do {
                let f = reps[i].file
                var x: Matrix<Double>
                if let slot = slotOf[i], let values = helper?.take(slot) {
                    x = Matrix(rows: f.clipCount, cols: f.featureCount, storage: values)
                } else {
                    x = try load(f, depth: reps[i].depth, clips: 0..<f.clipCount, pooling: .mean)
                }
                return .success(body(i, &x))
            } catch {
                failed.withLock { $0 = min($0, i) }
                return .failure(error)
            }
        }, finished: { _, _, done in progress?(done, reps.count) })
        var outcomes = [Result<T, Error>?](repeating: nil, count: reps.count)
        for (j, i) in order.enumerated() { outcomes[i] = started[j] }
        for case .failure(let error)? in outcomes { throw error }
        return outcomes.map { outcome in
            guard case .success(let value)? = outcome else { preconditionFailure("a job was skipped without a failed read") }
            return value
        }
    }
}

/// Clip vectors (means over tokens) of the chosen depths, in one streamed pass.
public func collectClipVectors(_ f: ActivationFile, depths: [Int], maxBatchBytes: Int,
                               progress: ((Int, Int) -> Void)? = nil) throws -> [Matrix<Double>] {
    let stream = DepthStream(sources: [.init(file: f, depths: depths)], pooling: .mean, maxBatchBytes: maxBatchBytes)
    var collected: [[Double]] = depths.map { _ in [] }
    try stream.forEach(progress: progress) { _, batch in
        for i in depths.indices { collected[i] += batch[i].storage }
    }
    return collected.map { Matrix(rows: f.clipCount, cols: f.featureCount, storage: $0) }
}
