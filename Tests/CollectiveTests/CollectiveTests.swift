import Collective
import Foundation
import XCTest

final class CollectiveTests: XCTestCase {
    /// The shares tile 0..<count in rank order, and their lengths differ by at most one.
    func testSharesTileTheRangeInRankOrder() {
        for size in 1...7 {
            for count in [0, 1, 5, 6, 7, 31, 32, 33, 100] {
                let shares = (0..<size).map { Collective.share(of: count, rank: $0, size: size) }
                XCTAssertEqual(shares.first?.lowerBound, 0)
                XCTAssertEqual(shares.last?.upperBound, count)
                for (a, b) in zip(shares, shares.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                let lengths = shares.map(\.count)
                XCTAssertLessThanOrEqual(lengths.max()! - lengths.min()!, 1, "count \(count) size \(size)")
            }
        }
        // 32 clips on 3 ranks: 11 + 11 + 10.
        XCTAssertEqual((0..<3).map { Collective.share(of: 32, rank: $0, size: 3) }, [0..<11, 11..<22, 22..<32])
    }

    func testLaunchedProcessesReadsTheLaunchersVariables() {
        XCTAssertEqual(Collective.launchedProcesses([:]), 1)
        XCTAssertEqual(Collective.launchedProcesses(["OMPI_COMM_WORLD_SIZE": "4"]), 4)
        XCTAssertEqual(Collective.launchedProcesses(["PMI_SIZE": "3"]), 3)
        XCTAssertEqual(Collective.launchedProcesses(["SLURM_PROCID": "0", "SLURM_NTASKS": "8"]), 8)
        // SLURM_NTASKS alone (a batch script, not a task started by srun) is not a launch.
        XCTAssertEqual(Collective.launchedProcesses(["SLURM_NTASKS": "8"]), 1)
    }

    func testOneProcessIsTheIdentity() throws {
        let world = try Collective.world([:])
        XCTAssertEqual(world.rank, 0)
        XCTAssertEqual(world.size, 1)
        XCTAssertTrue(world.isRoot)
        var values: [Float] = [1, -2, 3.5]
        world.allReduceSum(&values, count: 3)
        XCTAssertEqual(values, [1, -2, 3.5])
        XCTAssertEqual(world.sum(2.5), 2.5)
        XCTAssertEqual(world.max(-1), -1)
        XCTAssertTrue(world.any(true))
        XCTAssertFalse(world.any(false))
        XCTAssertEqual(world.broadcast("rank zero's text"), "rank zero's text")
        XCTAssertEqual(world.share(of: 32), 0..<32)
    }

    /// Several copies of a build without MPI would each run the whole job: refused with a clear error.
    func testABuildWithoutMPIRefusesSeveralLaunchedCopies() throws {
        if Collective.mpiAvailable { throw XCTSkip("built with the MPI trait") }
        XCTAssertThrowsError(try Collective.world(["OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"])) { error in
            XCTAssertTrue("\(error)".contains("built without MPI"), "\(error)")
        }
    }
}

/// R ranks as threads of this process, for testing what the collectives are built into (`together`,
/// the typed gathers): each collective waits until every rank has contributed, like MPI's.
final class ThreadGroup: @unchecked Sendable {
    let size: Int
    private let condition = NSCondition()
    private var contributions: [Int: [UInt8]] = [:]
    private var generation = 0
    private var result: [[UInt8]] = []
    init(size: Int) { self.size = size }

    /// Every rank's bytes in rank order, once all ranks have called it.
    func exchange(rank: Int, _ bytes: [UInt8]) -> [[UInt8]] {
        condition.lock()
        defer { condition.unlock() }
        let mine = generation
        contributions[rank] = bytes
        if contributions.count == size {
            result = (0..<size).map { contributions[$0]! }
            contributions = [:]
            generation += 1
            condition.broadcast()
        } else {
            while generation == mine { condition.wait() }
        }
        return result
    }

    /// Runs `body` once per rank, each on a thread of its own (all must run at once: a collective
    /// waits for every rank), and returns the results in rank order.
    func run<T>(_ body: @escaping @Sendable (any Communicator) -> T) -> [T] {
        let results = UnsafeMutableBufferPointer<T?>.allocate(capacity: size)
        results.initialize(repeating: nil)
        defer { results.deallocate() }
        let slots = UncheckedBox(results)
        let done = DispatchGroup()
        for r in 0..<size {
            done.enter()
            Thread { slots.value[r] = body(ThreadRank(group: self, rank: r)); done.leave() }.start()
        }
        done.wait()
        return results.map { $0! }
    }
}

struct UncheckedBox<T>: @unchecked Sendable { let value: T; init(_ v: T) { value = v } }

final class ThreadRank: Communicator, @unchecked Sendable {
    let group: ThreadGroup
    let rank: Int
    var size: Int { group.size }
    init(group: ThreadGroup, rank: Int) { self.group = group; self.rank = rank }

    func allGather(_ bytes: [UInt8]) -> [[UInt8]] { group.exchange(rank: rank, bytes) }
    private func reduce(_ values: UnsafeMutablePointer<Double>, count: Int, _ op: (Double, Double) -> Double) {
        let parts = allGather(Array(UnsafeRawBufferPointer(start: values, count: count * 8)))
        for i in 0..<count {
            var v: Double? = nil
            for p in parts {
                let x = p.withUnsafeBytes { $0.load(fromByteOffset: i * 8, as: Double.self) }
                v = v.map { op($0, x) } ?? x
            }
            values[i] = v!
        }
    }
    func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) { fatalError("not used") }
    func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) { reduce(values, count: count, +) }
    func allReduceMax(_ values: UnsafeMutablePointer<Double>, count: Int) { reduce(values, count: count, Swift.max) }
    func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, root: Int) {
        let parts = allGather(Array(UnsafeRawBufferPointer(start: bytes, count: rank == root ? count : 0)))
        parts[root].withUnsafeBytes { bytes.copyMemory(from: $0.baseAddress!, byteCount: count) }
    }
    func barrier() { _ = allGather([]) }
    func abort(status: Int32) -> Never { fatalError("abort") }
}

final class GatherTests: XCTestCase {
    func testOneProcessGathersItself() {
        let world = SingleProcess()
        XCTAssertEqual(world.allGather([1, 2, 3] as [UInt8]), [[1, 2, 3]])
        XCTAssertEqual(world.allGather([1.5, -2] as [Double]), [1.5, -2])
        XCTAssertEqual(world.allGather("text"), ["text"])
    }

    /// Parts of different lengths (one empty, as a rank with no clips) come back concatenated in rank order.
    func testPartsAreConcatenatedInRankOrder() {
        let results = ThreadGroup(size: 3).run { comm -> ([Double], [String]) in
            let share = comm.share(of: 5)   // 0..<2, 2..<4, 4..<5
            let mine = share.map { Double($0) * 1.5 }
            return (comm.allGather(comm.rank == 1 ? [] : mine), comm.allGather("rank \(comm.rank)"))
        }
        for (values, strings) in results {
            XCTAssertEqual(values, [0, 1.5, 6])
            XCTAssertEqual(strings, ["rank 0", "rank 1", "rank 2"])
        }
    }

    /// A failure on one rank is thrown on every rank, naming the lowest failing rank and its message.
    func testTogetherThrowsTheFailureOfTheLowestRankOnEveryRank() {
        struct Failure: Error, CustomStringConvertible { let description: String }
        let results = ThreadGroup(size: 3).run { comm -> String in
            do {
                let v = try comm.together(kind: { _ in "read" }) { () throws -> Int in
                    if comm.rank >= 1 { throw Failure(description: "clip \(comm.rank) is damaged") }
                    return 1
                }
                return "returned \(v)"
            } catch let f as RankFailure {
                return "rank \(f.rank) of \(f.size) [\(f.kind)]: \(f.message)"
            } catch {
                return "other error \(error)"
            }
        }
        XCTAssertEqual(results, Array(repeating: "rank 1 of 3 [read]: clip 1 is damaged", count: 3))
        let fine = ThreadGroup(size: 2).run { comm in (try? comm.together { comm.rank * 10 }) ?? -1 }
        XCTAssertEqual(fine, [0, 10])
    }
}
