import ActivationStore
import Foundation
import LinearAlgebra
#if canImport(Glibc)
import Glibc
#endif

/// Pools the clip vectors of some representations in a child process while this process reads the rest.
///
/// libhdf5 1.10 is not thread-safe, so every HDF5 call of a process runs under one lock, and the copy of
/// each stored chunk from the page cache happens under it (`HDF5File.forEachStoredChunk`). Reading two
/// paper-scale files in one process therefore copies 5.6 GB on one core at a time, while another
/// process has a library, and a lock, of its own: two single-file commands run side by side finish
/// both files in less time than one two-file command (BENCHMARKS.md, issue 10). So when
/// `DepthStream.readEach` reads every clip of several representations (`bwanalyze cka A B`, `cka A`,
/// `probe A` on one process), a share of them (`delegated`) is pooled by a helper process (the same
/// executable, see `helper`), which streams each one's clip vectors back through a pipe as soon as it
/// has them.
///
/// The helper runs `DepthStream.tokenMeans`, the function this process would run, on the same file (it
/// refuses a file at that path whose `FileIdentity` is not the one this process opened), so the vectors
/// are the same bits; they travel as raw float64. Whatever the helper does not deliver (it could not
/// start, failed, or died) is read in this process as before, so results, errors and their messages do
/// not depend on the helper. If this process dies, the helper ends at its next write.
public enum ClipVectorHelper {
    /// argv of the helper, to which `--identity ID FILE DEPTH...` are appended (`ID` the file's
    /// `FileIdentity` when this process opened it); nil keeps every read in this process (library
    /// users and tests, unless they set it).
    nonisolated(unsafe) public static var helper: [String]? = nil

    /// The helper's side: writes the clip vectors of `depths` of the file at `path` (every clip, in the
    /// file's stored order) to file descriptor `fd`, one depth after the other in the order given, each
    /// after a header of two little-endian 64-bit integers: the depth and the number of float64 values.
    /// With `identity`, refuses (before writing anything) a file at `path` that is not that file, before
    /// or after opening it. Throws the first read or write error; what was written before it stays valid.
    public static func serve(path: String, identity: FileIdentity?, depths: [Int], to fd: Int32) throws {
        func requireIdentity() throws {
            guard let identity, FileIdentity(path: path) != identity else { return }
            throw AnalysisError("\(path): not the file the parent process opened (it was replaced or changed since)")
        }
        try requireIdentity()
        guard let file = try ActivationFile.open([path]).first else { return }
        try requireIdentity()
        for depth in depths {
            let values = try DepthStream.tokenMeans(file, depth: depth, clips: 0..<file.clipCount)
            let header = [Int64(depth).littleEndian, Int64(values.count).littleEndian]
            try header.withUnsafeBytes { try writeAll(fd, $0) }
            try values.withUnsafeBytes { try writeAll(fd, $0) }
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw AnalysisError("clip-vector helper: cannot write to its pipe (\(String(cString: strerror(errno))))")
            }
            done += n
        }
    }

    /// Least bytes of stored tokens worth a helper: starting one (a process, the Swift runtime, the
    /// file's metadata) costs some tens of milliseconds, against 216 MB pooled in about 40 ms.
    nonisolated(unsafe) public static var minimumBytes = 256 << 20

    /// Which of `reps` a helper should pool: with two or more files, those of the last file; with one,
    /// every other representation (the others' reads then share this process's lock between fewer
    /// jobs). None when there is no helper, `--threads` allows one core, the file is read in another
    /// clip order than it stores (a file aligned to another by clip ids), the vectors are known
    /// already, or their tokens come to less than `minimumBytes`.
    /// Also none inside a job of a parallel loop (its jobs then run one after another, so a helper would
    /// add a process beyond `--threads`).
    static func delegated(_ reps: [(file: ActivationFile, depth: Int)]) -> [Int] {
        guard helper != nil, ThreadSetting.count >= 2, !ThreadSetting.onWorkerThread,
              let last = reps.last?.file, last.clipOrder == nil, last.identity != nil else { return [] }
        let oneFile = reps.allSatisfy { $0.file === last }
        let chosen = reps.indices.filter { i in
            (oneFile ? i % 2 == 1 : reps[i].file === last) && last.tokenTypes.indices.contains(reps[i].depth)
                && last.knownClipVectors[reps[i].depth] == nil
        }
        // Declared shapes may be huge (a virtual dataset is not checked against its storage): saturate.
        var bytes = 0
        for i in chosen where bytes < minimumBytes {
            let (perClip, o1) = last.tokenCount.multipliedReportingOverflow(by: last.featureCount)
            let (perDepth, o2) = perClip.multipliedReportingOverflow(by: last.clipCount)
            let (stored, o3) = perDepth.multipliedReportingOverflow(by: last.tokenTypes[reps[i].depth].byteCount)
            let (sum, o4) = bytes.addingReportingOverflow(stored)
            bytes = o1 || o2 || o3 || o4 ? Int.max : sum
        }
        return bytes >= minimumBytes ? chosen : []
    }

    /// The order in which `readEach` starts its jobs when `delegated` are the helper's: the others with
    /// the helper's interleaved from the third on, so that each of its deliveries is taken (and its
    /// vectors become a Gram matrix and are released) soon after it arrives instead of all of them
    /// waiting in memory for the end, while the first two jobs read as the helper starts up.
    static func jobOrder(_ count: Int, delegated: [Int]) -> [Int] {
        let helpers = Set(delegated)
        let own = (0..<count).filter { !helpers.contains($0) }
        var order = Array(own.prefix(2))
        var next = 0
        for i in own.dropFirst(2) {
            if next < delegated.count { order.append(delegated[next]); next += 1 }
            order.append(i)
        }
        order += delegated[next...]
        return order
    }

    /// A helper at work on some depths of one file, and the vectors it has delivered so far.
    final class Delivery: @unchecked Sendable {
        private let condition = NSCondition()
        /// Delivered vectors by position in `depths` (taken out by `take`).
        private var delivered: [Int: [Double]] = [:]
        /// Set once the pipe is at its end (every depth delivered, or the helper stopped).
        private var ended = false
        private let depths: [Int]
        private let expected: Int
        private var pid: pid_t = 0
        private var readEnd: Int32 = -1
        private var reader: Thread?

        /// Starts the helper on `depths` of `file` (each depth's vectors are clipCount × featureCount
        /// values); nil when it cannot be started.
        init?(file: ActivationFile, depths: [Int]) {
            let (values, overflow) = file.clipCount.multipliedReportingOverflow(by: file.featureCount)
            guard let helper = ClipVectorHelper.helper, !helper.isEmpty, !depths.isEmpty, !overflow,
                  let identity = file.identity else { return nil }
            self.depths = depths
            expected = values
            // A socket pair rather than a pipe, since it is created close-on-exec in one call: neither end
            // may leak into a child another thread starts meanwhile (the end of the stream would wait for
            // that child). The helper gets fds[1] as its standard output.
            var fds: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else { return nil }
            let started = StructureGuard.spawnHelper(helper + ["--identity", identity.description, file.path] + depths.map(String.init),
                                                     output: fds[1])
            close(fds[1])
            guard let started else {
                close(fds[0])
                return nil
            }
            pid = started
            readEnd = fds[0]
            let thread = Thread { [self] in receive() }
            thread.name = "clip-vector helper"
            reader = thread
            thread.start()
        }

        /// Reads depth after depth from the pipe until its end or a block that is not what was asked.
        private func receive() {
            for (slot, depth) in depths.enumerated() {
                var header = [Int64](repeating: 0, count: 2)
                guard header.withUnsafeMutableBytes({ readAll($0) }),
                      Int64(littleEndian: header[0]) == Int64(depth), Int64(littleEndian: header[1]) == Int64(expected) else { break }
                var complete = false
                let values = [Double](unsafeUninitializedCapacity: expected) { buffer, count in
                    complete = readAll(UnsafeMutableRawBufferPointer(buffer))
                    count = complete ? expected : 0
                }
                guard complete else { break }
                condition.lock()
                delivered[slot] = values
                condition.broadcast()
                condition.unlock()
            }
            condition.lock()
            ended = true
            condition.broadcast()
            condition.unlock()
        }

        private func readAll(_ bytes: UnsafeMutableRawBufferPointer) -> Bool {
            var done = 0
            while done < bytes.count {
                let n = read(readEnd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                done += n
            }
            return true
        }

        /// The vectors of `depths[slot]`, waiting for the helper if it is still at work; nil when it
        /// stopped without delivering them. Each slot can be taken once (the values are released here).
        func take(_ slot: Int) -> [Double]? {
            condition.lock()
            defer { condition.unlock() }
            while delivered[slot] == nil && !ended { condition.wait() }
            return delivered.removeValue(forKey: slot)
        }

        /// Stops the helper if it is still at work and waits for it to end.
        func finish() {
            if pid > 0 {
                kill(pid, SIGKILL)
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                pid = 0
            }
            condition.lock()
            while !ended { condition.wait() }
            condition.unlock()
            if readEnd >= 0 { close(readEnd); readEnd = -1 }
        }
    }
}
