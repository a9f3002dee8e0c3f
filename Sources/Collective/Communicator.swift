import Foundation

/// The processes of one job and the collective operations between them.
///
/// A single process is a group of one (`SingleProcess`), so code written against this protocol runs
/// unchanged with or without MPI. Under `mpirun`/`srun`, an executable built with the `MPI` package
/// trait gets an `MPICommunicator` from `Collective.world()`; every rank must then call the same
/// collectives in the same order (MPI's rule).
public protocol Communicator: AnyObject, Sendable {
    /// This process's number, 0..<size. Rank 0 writes the outputs.
    var rank: Int { get }
    /// Processes in the job.
    var size: Int { get }
    /// Replaces `values` on every rank with the elementwise sum over ranks.
    func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int)
    /// Replaces `values` on every rank with the elementwise sum over ranks.
    func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int)
    /// Replaces `values` on every rank with the elementwise maximum over ranks.
    func allReduceMax(_ values: UnsafeMutablePointer<Double>, count: Int)
    /// Copies `count` bytes at `bytes` from rank `root` to every other rank.
    func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, root: Int)
    /// Every rank's `bytes`, in rank order, on every rank (the lengths may differ, and may be 0).
    func allGather(_ bytes: [UInt8]) -> [[UInt8]]
    /// Returns when every rank has called it.
    func barrier()
    /// Ends the whole job now with exit status `status` (MPI_Abort under MPI).
    func abort(status: Int32) -> Never
}

extension Communicator {
    /// True on the rank that writes outputs and prints progress.
    public var isRoot: Bool { rank == 0 }

    /// The sum over ranks of one number.
    public func sum(_ value: Double) -> Double {
        var v = value
        allReduceSum(&v, count: 1)
        return v
    }

    /// The maximum over ranks of one number.
    public func max(_ value: Double) -> Double {
        var v = value
        allReduceMax(&v, count: 1)
        return v
    }

    /// Whether any rank passed true (a collective: every rank must call it).
    public func any(_ flag: Bool) -> Bool { self.max(flag ? 1 : 0) > 0 }

    /// Rank 0's string on every rank.
    public func broadcast(_ string: String, root: Int = 0) -> String {
        var length = rank == root ? Double(string.utf8.count) : 0
        broadcast(&length, count: MemoryLayout<Double>.size, root: root)
        var bytes = rank == root ? Array(string.utf8) : [UInt8](repeating: 0, count: Int(length))
        if !bytes.isEmpty { bytes.withUnsafeMutableBytes { broadcast($0.baseAddress!, count: $0.count, root: root) } }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Every rank's values concatenated in rank order, on every rank (an allgatherv).
    public func allGather(_ values: [Double]) -> [Double] {
        if size == 1 { return values }
        let bytes = values.withUnsafeBytes { Array($0) }
        var out: [Double] = []
        for part in allGather(bytes) {
            part.withUnsafeBytes { out.append(contentsOf: $0.bindMemory(to: Double.self)) }
        }
        return out
    }

    /// Every rank's string, in rank order, on every rank.
    public func allGather(_ string: String) -> [String] {
        allGather(Array(string.utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The range of `0..<count` this rank owns when the items are split into `size` contiguous parts
    /// whose lengths differ by at most one (the first `count % size` ranks take one more).
    public func share(of count: Int) -> Range<Int> {
        Collective.share(of: count, rank: rank, size: size)
    }
}

/// A job of one process: every collective is the identity.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) {}
    public func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) {}
    public func allReduceMax(_ values: UnsafeMutablePointer<Double>, count: Int) {}
    public func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, root: Int) {}
    public func allGather(_ bytes: [UInt8]) -> [[UInt8]] { [bytes] }
    public func barrier() {}
    public func abort(status: Int32) -> Never { exit(status) }
}

/// A failure of one rank inside `Communicator.together`, thrown on every rank so that all of them
/// leave the collective work at the same point.
public struct RankFailure: Error, CustomStringConvertible {
    /// The lowest rank whose work threw.
    public let rank: Int
    public let size: Int
    /// That rank's error, as text.
    public let message: String
    /// The class of that error as the caller's `kind` function named it (empty by default), so that
    /// callers keep their handling of error kinds across ranks.
    public let kind: String
    public var description: String { message }
}

extension Communicator {
    /// Runs `body` on every rank (a collective: every rank must call it). When it throws on any rank,
    /// every rank throws the same `RankFailure`, naming the lowest failing rank and its message; so a
    /// failure on one rank's share of the data cannot leave the others waiting in a later collective.
    /// In a job of one process the error of `body` is rethrown as it is.
    public func together<T>(kind: (any Error) -> String = { _ in "" }, _ body: () throws -> T) throws -> T {
        if size == 1 { return try body() }
        var result: Result<T, any Error>
        do { result = .success(try body()) } catch { result = .failure(error) }
        var mine = ""
        if case .failure(let e) = result { mine = "1" + kind(e) + "\u{0}" + "\(e)" }
        for (r, text) in allGather(mine).enumerated() where !text.isEmpty {
            let parts = text.dropFirst().split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false)
            throw RankFailure(rank: r, size: size, message: parts.count > 1 ? String(parts[1]) : "", kind: String(parts[0]))
        }
        return try result.get()
    }
}

/// Errors of job start-up.
public struct CollectiveError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public enum Collective {
    /// Whether this build can run as an MPI job (built with `swift build --traits MPI`).
    public static var mpiAvailable: Bool {
        #if MPI
        return true
        #else
        return false
        #endif
    }

    /// Processes the launcher started, read from the variables Open MPI, MPICH/PMI and Slurm set
    /// (`OMPI_COMM_WORLD_SIZE`, `PMI_SIZE`, `SLURM_NTASKS` when `SLURM_PROCID` is set); 1 otherwise.
    public static func launchedProcesses(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        for key in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"] {
            if let v = environment[key], let n = Int(v) { return n }
        }
        if environment["SLURM_PROCID"] != nil, let v = environment["SLURM_NTASKS"], let n = Int(v) { return n }
        return 1
    }

    /// The job this process belongs to: MPI's world when the executable was built with the MPI trait
    /// and started by a launcher, one process otherwise.
    ///
    /// Throws when a launcher started several copies of an executable built without MPI: each copy
    /// would run the whole job and write the same outputs.
    public static func world(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> any Communicator {
        let launched = launchedProcesses(environment)
        #if MPI
        if launched > 1 || environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMI_SIZE"] != nil {
            return try MPICommunicator.world()
        }
        return SingleProcess()
        #else
        if launched > 1 {
            throw CollectiveError("started as one of \(launched) processes, but this executable was built without MPI; build it with `swift build -c release --traits MPI` (see README, 'Running on a cluster')")
        }
        return SingleProcess()
        #endif
    }

    /// The part of `0..<count` that rank `rank` of `size` owns (see `Communicator.share(of:)`).
    public static func share(of count: Int, rank: Int, size: Int) -> Range<Int> {
        let base = count / size, extra = count % size
        let start = rank * base + Swift.min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }
}
