import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Write-to-temporary-then-rename, shared by every writer of the suite (HDF5 files here, text
/// outputs of the analyses and reports through `write(_:to:)`).
public enum AtomicFile {
    /// Writes `data` to `path` atomically: a temporary file beside it, flushed, then renamed.
    /// A failure (or a killed process) never leaves a partial file under `path`.
    public static func write(_ data: Data, to path: String) throws {
        let temp = try temporaryPath(for: path)
        do {
            guard FileManager.default.createFile(atPath: temp, contents: data) else {
                throw ActivationStoreError(.io, file: path, "cannot write (\(String(cString: strerror(errno))))")
            }
            try commit(temp, to: path)
        } catch {
            unlink(temp)
            throw error
        }
    }

    /// A hidden temporary path beside `path`: `.NAME.tmp-PID-RANDOM`.
    static func temporaryPath(for path: String) throws -> String {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw ActivationStoreError(.notFound, file: path, "the directory \(dir) does not exist")
        }
        try OutputPolicy.checkOutput(path)
        let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(suffix)").path
    }

    /// Flushes the finished temporary file to disk and renames it over `path` (atomic on POSIX).
    static func commit(_ temporary: String, to path: String) throws {
        try syncToDisk(temporary, displayName: path)
        guard rename(temporary, path) == 0 else {
            throw ActivationStoreError(.io, file: path, "cannot rename the finished file into place: \(String(cString: strerror(errno)))")
        }
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try? syncToDisk(dir, displayName: dir)
    }

    static func syncToDisk(_ path: String, displayName: String) throws {
        let fd = Glibc.open(path, O_RDONLY)
        guard fd >= 0 else { throw ActivationStoreError(.io, file: displayName, "cannot reopen to flush") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw ActivationStoreError(.io, file: displayName, "fsync failed") }
    }
}

/// Where outputs may go: only onto regular files that are not inputs of the running command.
///
/// Policy (docs/hostile-input.md): an output path must be missing or a regular file. Directories,
/// devices, fifos and sockets are refused, and so is a symbolic link (the link is neither followed nor
/// replaced: give its target instead). A path naming a file that this process opened as an input, by
/// any name or hard link (same device and inode), is refused.
public enum OutputPolicy {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var inputs: Set<[UInt64]> = []

    /// Records `path` as an input of this process (called for every activation file opened).
    public static func protectInput(_ path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return }
        lock.lock()
        inputs.insert(identity(st))
        lock.unlock()
    }

    static func isInput(_ st: stat) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return inputs.contains(identity(st))
    }

    /// Device, inode and change time: an inode freed and reused by a later file (in a long-lived
    /// process such as the test runner) is not mistaken for the input.
    private static func identity(_ st: stat) -> [UInt64] {
        [UInt64(st.st_dev), UInt64(st.st_ino), UInt64(bitPattern: Int64(st.st_ctim.tv_sec)), UInt64(bitPattern: Int64(st.st_ctim.tv_nsec))]
    }

    /// Throws unless `path` may be replaced by a regular output file.
    public static func checkOutput(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        let kind: String
        switch st.st_mode & S_IFMT {
        case S_IFREG:
            if isInput(st) {
                throw ActivationStoreError(.invalidArgument, file: path, "is an input of this command; refusing to overwrite it")
            }
            return
        case S_IFLNK: kind = "a symbolic link (outputs neither follow nor replace links; give the target path)"
        case S_IFDIR: kind = "a directory"
        case S_IFIFO: kind = "a fifo"
        case S_IFCHR, S_IFBLK: kind = "a device"
        case S_IFSOCK: kind = "a socket"
        default: kind = "not a regular file"
        }
        throw ActivationStoreError(.invalidArgument, file: path, "is \(kind); outputs are written only to regular files")
    }
}
