import Dispatch
import Foundation

/// The suite's one way to spread work over the cores: the trainer's kernels split index ranges, the
/// analyses and the report run independent jobs. Both wrap `DispatchQueue.concurrentPerform`.
public enum Parallel {
    /// Worker threads: `ThreadSetting.count` (OpenBLAS uses as many for gemm).
    public static var threads: Int { ThreadSetting.count }

    /// Runs `body` over `0..<count` split into at most `threads` contiguous ranges, concurrently.
    ///
    /// The split depends only on `count`, `grain` and `threads`, so results are reproducible run to run.
    /// Ranges get at least `grain` items; below `2·grain` the call runs `body(0..<count)` on the caller's
    /// thread (a dispatch costs a few microseconds, which small loops do not repay). Inside a task of
    /// `ThreadSetting.concurrently` the same ranges run in order on the caller's thread. `body` must only
    /// write state owned by its range.
    @inlinable
    public static func forEachRange(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
        let parts = min(threads, count / max(1, grain))
        if parts <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        if ThreadSetting.onWorkerThread {
            // Inside a task of ThreadSetting.concurrently: the same parts, in order, on this thread.
            for i in 0..<parts { body((count * i / parts)..<(count * (i + 1) / parts)) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let task = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { i in
                task.value((count * i / parts)..<(count * (i + 1) / parts))
            }
        }
    }

    /// Runs `body(i)` for every `i` in `0..<count` concurrently, one job per core with OpenBLAS
    /// single-threaded (`ThreadSetting.concurrently`), and returns the results in index order.
    ///
    /// The jobs are independent analyses or probe fits whose products are small: one gemm per core
    /// beats every small gemm split over the cores, where OpenBLAS's threads spend their time
    /// synchronising. Parallel loops inside a job run their parts in order on its thread.
    ///
    /// `finished(i, result, done)` is called once per job as it completes, with `done` jobs finished so
    /// far. The calls come from worker threads but one at a time, under a lock, so `finished` may update
    /// progress state and write lines without a lock of its own; it must not call back into `map`.
    public static func map<T>(_ count: Int, _ body: @Sendable (Int) -> T,
                              finished: ((_ index: Int, _ result: T, _ done: Int) -> Void)? = nil) -> [T] {
        let results = ParallelResults<T>(count)
        ThreadSetting.concurrently(count) { i in
            let value = body(i)
            results.lock.lock()
            defer { results.lock.unlock() }
            results.values[i] = value
            results.done += 1
            finished?(i, value, results.done)
        }
        return results.values.map { $0! }
    }
}

/// The results of `Parallel.map`, each slot written once by its job under `lock`.
final class ParallelResults<T>: @unchecked Sendable {
    var values: [T?]
    var done = 0
    let lock = NSLock()
    init(_ n: Int) { values = Array(repeating: nil, count: n) }
}

/// A value handed to worker threads whose disjoint or serialised use the caller guarantees (buffer
/// slices, closures writing disjoint ranges, callbacks called under a lock).
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
