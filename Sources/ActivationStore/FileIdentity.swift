import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What tells one file on disk from another at the same path: device, inode, size and change time.
/// A file replaced by rename (as the writers here replace files) or rewritten gets another identity.
public struct FileIdentity: Hashable, Sendable, CustomStringConvertible {
    public let device: UInt64
    public let inode: UInt64
    public let size: Int64
    public let changeSeconds: Int64
    public let changeNanoseconds: Int64

    /// The identity of the file at `path` now; nil when it cannot be stat'ed.
    public init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        changeSeconds = Int64(st.st_ctim.tv_sec)
        changeNanoseconds = Int64(st.st_ctim.tv_nsec)
    }

    /// The identity of the file open on descriptor `fd`; nil when it cannot be stat'ed.
    public init?(descriptor fd: Int32) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        changeSeconds = Int64(st.st_ctim.tv_sec)
        changeNanoseconds = Int64(st.st_ctim.tv_nsec)
    }

    /// The form `description` writes: five integers joined by colons.
    public init?(argument: String) {
        let parts = argument.split(separator: ":")
        guard parts.count == 5, let d = UInt64(parts[0]), let i = UInt64(parts[1]), let s = Int64(parts[2]),
              let cs = Int64(parts[3]), let cn = Int64(parts[4]) else { return nil }
        device = d; inode = i; size = s; changeSeconds = cs; changeNanoseconds = cn
    }

    public var description: String { "\(device):\(inode):\(size):\(changeSeconds):\(changeNanoseconds)" }
}
