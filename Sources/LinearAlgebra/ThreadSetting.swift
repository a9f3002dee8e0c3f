import CBLAS
import Dispatch
import Foundation
import Synchronization

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

    /// Uses `threads` threads (at least 1) from now on, in OpenBLAS too (once no caller holds it at
    /// one thread).
    public static func set(_ threads: Int) {
        chosen = max(1, threads)
        singleThreadedHolds.withLock { if $0 == 0 { openblas_set_num_threads(Int32(chosen)) } }
    }

    /// Callers holding OpenBLAS at one thread (`withSingleThreadedBLAS`, `concurrently`). OpenBLAS's
    /// thread count is one global setting, and such callers overlap (a reader thread's parallel loads
    /// while the main thread computes single-threaded): it gets `count` threads back only when the last
    /// of them ends.
    private static let singleThreadedHolds = Mutex<Int>(0)

    private static func holdSingleThreadedBLAS() {
        singleThreadedHolds.withLock {
            if $0 == 0 { openblas_set_num_threads(1) }
            $0 += 1
        }
    }

    private static func releaseSingleThreadedBLAS() {
        singleThreadedHolds.withLock {
            $0 -= 1
            if $0 == 0 { openblas_set_num_threads(Int32(count)) }
        }
    }

    /// Runs `body` with OpenBLAS on one thread (afterwards `count` again), for a caller whose other
    /// cores are busy with work of its own, such as a reader thread streaming the next batch: threaded
    /// gemms there would wait on, and spin against, that work.
    public static func withSingleThreadedBLAS<T>(_ body: () throws -> T) rethrows -> T {
        if count <= 1 || onWorkerThread { return try body() }
        holdSingleThreadedBLAS()
        defer { releaseSingleThreadedBLAS() }
        return try body()
    }

    /// Marks threads that run one task of `concurrently` (a pthread key: Dispatch's worker threads are
    /// reused, so the mark is set and cleared around each task).
    private static let workerKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// True inside a task of `concurrently`: parallel loops there run their parts in order on the
    /// calling thread (the same parts, so the same results) instead of starting more threads.
    public static var onWorkerThread: Bool { pthread_getspecific(workerKey) != nil }

    /// Runs `body(i)` for every i in `0..<tasks` on at most `count` of Dispatch's workers, each task on one
    /// thread with OpenBLAS single-threaded; afterwards OpenBLAS uses `count` threads again. With one
    /// thread, or when already inside such a task, the tasks run in order on the caller's thread.
    ///
    /// For independent pieces of work too small for OpenBLAS's threading to pay (per-block decoders,
    /// attention pairs): one gemm per core instead of every gemm split over the cores. `body` must only
    /// write state owned by its task.
    public static func concurrently(_ tasks: Int, _ body: (Int) -> Void) {
        if tasks <= 1 || count <= 1 || onWorkerThread {
            for i in 0..<tasks { body(i) }
            return
        }
        holdSingleThreadedBLAS()
        defer { releaseSingleThreadedBLAS() }
        withoutActuallyEscaping(body) { body in
            let task = UncheckedSendable(body)
            // `count` workers (Dispatch alone would start one per core of the machine, more than
            // `--threads` asked for), each taking the next task as it frees up, so a busy core does not
            // hold back the others; which thread runs a task does not change its result.
            let next = Mutex(0)
            DispatchQueue.concurrentPerform(iterations: min(tasks, count)) { _ in
                pthread_setspecific(workerKey, UnsafeMutableRawPointer(bitPattern: 1))
                defer { pthread_setspecific(workerKey, nil) }
                while true {
                    let i = next.withLock { n -> Int in
                        defer { n += 1 }
                        return n
                    }
                    if i >= tasks { break }
                    task.value(i)
                }
            }
        }
    }
}
