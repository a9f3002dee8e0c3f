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
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw ActivationStoreError(.isDirectory, file: path, "is a directory; cannot write a file there")
        }
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
