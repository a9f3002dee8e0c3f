import ActivationStore
import Collective
import Foundation
import LinearAlgebra

// How an analysis runs as one rank of an MPI job (docs/mpi.md). Every rank reads and pools its own
// contiguous clip range (`Communicator.share(of:)`); sums (XᵀX, cross products, HSIC sums, covariances,
// token sums, counts) are added over ranks in place; what needs every pooled vector (Gram matrices,
// retrieval, probes, pairwise statistics, bootstrap) gathers them in clip order first, so it sees the
// very matrices one process sees; independent fits are spread over the ranks and their results
// gathered. With `SingleProcess` every helper here is the identity.

extension Communicator {
    /// Adds an array of sums over the ranks, in place (the `reduce` of the accumulators' `combineSums`).
    public var sumOverRanks: (UnsafeMutableBufferPointer<Double>) -> Void {
        { buffer in
            if self.size > 1, let base = buffer.baseAddress, buffer.count > 0 { self.allReduceSum(base, count: buffer.count) }
        }
    }

    /// `together`, with failures to read an input marked as kind "read" (a report stops on those).
    public func jointly<T>(_ body: () throws -> T) throws -> T {
        try together(kind: { error in
            if let e = error as? ActivationStoreError, [.io, .damaged, .cannotOpen].contains(e.kind) { return "read" }
            return ""
        }, body)
    }

    /// The rows of a matrix split over the ranks (each rank holds its contiguous part, in rank order),
    /// whole on every rank.
    public func gatherRows(_ part: Matrix<Double>) -> Matrix<Double> {
        if size == 1 { return part }
        let all = allGather(part.storage)
        return Matrix(rows: part.cols == 0 ? 0 : all.count / part.cols, cols: part.cols, storage: all)
    }

    /// Whether `flag` is true on any rank, for each flag.
    func anyRank(_ flags: [Bool]) -> [Bool] {
        if size == 1 { return flags }
        var values = flags.map { $0 ? 1.0 : 0.0 }
        if !values.isEmpty { allReduceMax(&values, count: values.count) }
        return values.map { $0 > 0 }
    }

    /// The first non-nil message over the ranks (in rank order), for each slot.
    func firstMessage(_ messages: [String?]) throws -> [String?] {
        if size == 1 { return messages }
        let parts = try allGather(Array(JSONEncoder().encode(messages))).map { try JSONDecoder().decode([String?].self, from: Data($0)) }
        return messages.indices.map { i in parts.lazy.compactMap { $0[i] }.first }
    }

    /// Runs jobs `0..<count` spread over the ranks (job j on rank j mod R) and returns every job's
    /// result, in job order, on every rank.
    ///
    /// `local` receives this rank's job indices and returns their results in that order (it may run
    /// them concurrently). Results travel as JSON; a failure travels as its message and comes back as
    /// an error with the same description, so the records built from it read the same.
    public func distributedMap<T: Codable>(_ count: Int, _ local: ([Int]) -> [Result<T, any Error>]) throws -> [Result<T, any Error>] {
        try distributedMap(results: count) { mine in local(mine).map { [$0] } }.map { $0[0] }
    }

    /// `distributedMap` for jobs that give several results each (one per target, say).
    public func distributedMap<T: Codable>(results count: Int, _ local: ([Int]) -> [[Result<T, any Error>]]) throws -> [[Result<T, any Error>]] {
        if size == 1 { return local(Array(0..<count)) }
        let mine = Array(stride(from: rank, to: count, by: size))
        let results = local(mine).map { job in
            job.map { r -> JobOutcome<T> in
                switch r {
                case .success(let v): return .success(v)
                case .failure(let e): return .failure("\(e)")
                }
            }
        }
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let parts = allGather(Array(try encoder.encode(results)))
        var out = [[Result<T, any Error>]?](repeating: nil, count: count)
        for (r, bytes) in parts.enumerated() {
            let decoded = try decoder.decode([[JobOutcome<T>]].self, from: Data(bytes))
            for (k, job) in decoded.enumerated() {
                out[r + k * size] = job.map { outcome in
                    switch outcome {
                    case .success(let v): return .success(v)
                    case .failure(let message): return .failure(RemoteFailure(description: message))
                    }
                }
            }
        }
        return out.map { $0! }
    }
}

/// One job's result as it travels between ranks.
enum JobOutcome<T: Codable>: Codable {
    case success(T)
    case failure(String)
}

/// The failure of a job that ran on another rank: its message.
public struct RemoteFailure: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// Clip vectors of the chosen depths of the whole file on every rank: each rank reads and pools its
/// share of the clips, then the parts are gathered in clip order.
func collectClipVectors(_ f: ActivationFile, depths: [Int], maxBatchBytes: Int, communicator comm: any Communicator,
                        progress: ((Int, Int) -> Void)? = nil) throws -> [Matrix<Double>] {
    if comm.size == 1 { return try collectClipVectors(f, depths: depths, maxBatchBytes: maxBatchBytes, progress: progress) }
    let share = comm.share(of: f.clipCount)
    let parts = try comm.jointly {
        var stream = DepthStream(sources: [.init(file: f, depths: depths)], pooling: .mean, maxBatchBytes: maxBatchBytes)
        stream.clips = share
        var collected: [[Double]] = depths.map { _ in [] }
        try stream.forEach(progress: progress) { _, batch in
            for i in depths.indices { collected[i] += batch[i].storage }
        }
        return collected
    }
    return parts.map { comm.gatherRows(Matrix(rows: share.count, cols: f.featureCount, storage: $0)) }
}

/// The first row of clip 0 at each depth of each source, pooled as the stream pools: the reference row
/// one process shifts by (the first row it sees), given to every rank so their sums combine.
func referenceRows(_ sources: [DepthStream.Source], pooling: Pooling) throws -> [[Double]]? {
    guard let first = sources.first, first.file.clipCount > 0 else { return nil }
    var rows: [[Double]] = []
    for s in sources {
        for d in s.depths { rows.append(Array(try DepthStream.load(s.file, depth: d, clips: 0..<1, pooling: pooling).row(0))) }
    }
    return rows
}
