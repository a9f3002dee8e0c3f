import Collective
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
