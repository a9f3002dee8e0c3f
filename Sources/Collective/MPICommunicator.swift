#if MPI
import CMPI
import Foundation

/// MPI_COMM_WORLD through Open MPI (built with `--traits MPI`).
///
/// MPI is initialised once, funneled (only the thread that initialised it calls MPI; the project's
/// parallel loops never do), and finalised at exit. Collectives larger than Int32.max elements are
/// split into pieces. MPI errors abort the job (MPI's default error handler).
public final class MPICommunicator: Communicator, @unchecked Sendable {
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

    /// MPI_Allgatherv of bytes after an allreduce of the lengths. When the total exceeds MPI's Int32
    /// counts, each rank's part is broadcast in turn instead (in pieces).
    public func allGather(_ bytes: [UInt8]) -> [[UInt8]] {
        var lengths = [Double](repeating: 0, count: size)
        lengths[rank] = Double(bytes.count)
        allReduceSum(&lengths, count: size)
        let counts = lengths.map { Int($0) }
        let total = counts.reduce(0, +)
        var parts: [[UInt8]] = []
        if total <= Int(Int32.max) {
            var received = [UInt8](repeating: 0, count: Swift.max(1, total))
            var displacements: [Int32] = []
            var offset = 0
            for c in counts { displacements.append(Int32(offset)); offset += c }
            var counts32 = counts.map { Int32($0) }
            var send = bytes.isEmpty ? [0] : bytes
            received.withUnsafeMutableBytes { r in
                send.withUnsafeMutableBytes { s in
                    _ = MPI_Allgatherv(s.baseAddress, Int32(bytes.count), bwssl_mpi_byte(), r.baseAddress, &counts32,
                                       &displacements, bwssl_mpi_byte(), comm)
                }
            }
            for (c, d) in zip(counts, displacements) { parts.append(Array(received[Int(d)..<(Int(d) + c)])) }
        } else {
            for (r, c) in counts.enumerated() {
                var part = r == rank ? bytes : [UInt8](repeating: 0, count: c)
                if c > 0 { part.withUnsafeMutableBytes { broadcast($0.baseAddress!, count: c, root: r) } }
                parts.append(part)
            }
        }
        return parts
    }

    public func barrier() { MPI_Barrier(comm) }

    public func abort(status: Int32) -> Never {
        MPI_Abort(comm, status)
        exit(status)
    }
}
#endif
