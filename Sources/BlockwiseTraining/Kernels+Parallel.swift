import Dispatch
import Foundation
import LinearAlgebra

extension Kernels {
    /// Worker threads of the element-wise kernels: `ThreadSetting.count` (OpenBLAS uses as many for gemm).
    public static var threads: Int { ThreadSetting.count }

    /// Runs `body` over `0..<count` split into at most `threads` contiguous ranges, concurrently.
    ///
    /// The split depends only on `count`, `grain` and `threads`, so results are reproducible run to run.
    /// Ranges get at least `grain` items; below `2·grain` the call runs `body(0..<count)` on the caller's
    /// thread (a dispatch costs a few microseconds, which small loops do not repay). Inside a task of
    /// `ThreadSetting.concurrently` the same ranges run in order on the caller's thread. `body` must only
    /// write state owned by its range.
    @inlinable
    public static func parallelFor(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
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
}

/// A value handed to worker threads whose disjoint use the caller guarantees (buffer slices, closures
/// writing disjoint ranges).
@usableFromInline
struct UncheckedSendable<T>: @unchecked Sendable {
    @usableFromInline let value: T
    @usableFromInline init(_ value: T) { self.value = value }
}
