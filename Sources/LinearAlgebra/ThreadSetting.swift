import CBLAS
import Foundation

/// The one thread count that governs OpenBLAS and the project's own parallel loops.
///
/// Defaults to the machine's cores. Set it once at start-up, before any parallel work (an MPI job sets
/// it to one thread per rank, so R ranks on R cores do not oversubscribe them).
public enum ThreadSetting {
    /// The machine's cores.
    public static let machineCores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    nonisolated(unsafe) private static var chosen = 0

    /// Threads for BLAS calls and parallel loops.
    public static var count: Int { chosen > 0 ? chosen : machineCores }

    /// Uses `threads` threads (at least 1) from now on, in OpenBLAS too.
    public static func set(_ threads: Int) {
        chosen = max(1, threads)
        openblas_set_num_threads(Int32(chosen))
    }
}
