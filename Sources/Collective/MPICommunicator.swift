#if MPI
import CMPI
import Foundation

/// MPI_COMM_WORLD through Open MPI (built with `--traits MPI`).
///
/// MPI is initialised once, funneled (only the thread that initialised it calls MPI; the project's
/// parallel loops never do), and finalised at exit. Collectives larger than Int32.max elements are
/// split into pieces. MPI errors abort the job (MPI's default error handler).
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    private let comm: MPI_Comm

    nonisolated(unsafe) private static var shared: MPICommunicator?

    /// The world communicator, initialising MPI on first use.
    public static func world() throws -> MPICommunicator {
        if let shared { return shared }
        var provided: Int32 = 0
        guard MPI_Init_thread(nil, nil, bwssl_mpi_thread_funneled(), &provided) == bwssl_mpi_success() else {
            throw CollectiveError("MPI_Init_thread failed")
        }
        guard let comm = bwssl_mpi_comm_world() else { throw CollectiveError("MPI_COMM_WORLD is not available") }
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(comm, &rank)
        MPI_Comm_size(comm, &size)
        let world = MPICommunicator(comm: comm, rank: Int(rank), size: Int(size))
        shared = world
        atexit {
            var finalized: Int32 = 0
            MPI_Finalized(&finalized)
            if finalized == 0 { MPI_Finalize() }
        }
        return world
    }

    private init(comm: MPI_Comm, rank: Int, size: Int) {
        self.comm = comm
        self.rank = rank
        self.size = size
    }

    /// Calls `body(offset, n)` over `0..<count` in pieces that fit MPI's Int32 counts.
    private func inPieces(_ count: Int, _ body: (Int, Int32) -> Void) {
        let piece = Int(Int32.max)
        var done = 0
        while done < count {
            let n = Swift.min(piece, count - done)
            body(done, Int32(n))
            done += n
        }
    }

    public func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) {
        inPieces(count) { MPI_Allreduce(bwssl_mpi_in_place(), values + $0, $1, bwssl_mpi_float(), bwssl_mpi_sum(), comm) }
    }

    public func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) {
        inPieces(count) { MPI_Allreduce(bwssl_mpi_in_place(), values + $0, $1, bwssl_mpi_double(), bwssl_mpi_sum(), comm) }
    }

    public func allReduceMax(_ values: UnsafeMutablePointer<Double>, count: Int) {
        inPieces(count) { MPI_Allreduce(bwssl_mpi_in_place(), values + $0, $1, bwssl_mpi_double(), bwssl_mpi_max(), comm) }
    }

    public func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, root: Int) {
        inPieces(count) { MPI_Bcast(bytes + $0, $1, bwssl_mpi_byte(), Int32(root), comm) }
    }

    public func barrier() { MPI_Barrier(comm) }

    public func abort(status: Int32) -> Never {
        MPI_Abort(comm, status)
        exit(status)
    }
}
#endif
