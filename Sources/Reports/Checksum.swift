import Crypto
import Foundation

/// SHA-256 checksums (swift-crypto) for a report's provenance, as lower-case hexadecimal.
public enum Checksum {
    /// Lower-case hexadecimal SHA-256 digest of `bytes`.
    public static func sha256<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        hex(Crypto.SHA256.hash(data: Array(bytes)))
    }

    /// Lower-case hexadecimal SHA-256 digest of a file, read in 1 MiB pieces into one buffer (a fresh
    /// piece per read cost a page fault per 4 KiB: 0.7 million for a 3 GB file).
    public static func sha256(fileAt path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ReportError("\(path): cannot open for reading (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var hasher = Crypto.SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer.baseAddress!, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw ReportError("\(path): cannot read (\(String(cString: strerror(errno))))")
            }
            if n == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        return hex(hasher.finalize())
    }

    private static func hex(_ digest: SHA256Digest) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}

/// SHA-256 checksums of several files, computed in order on a background thread from creation on.
final class Checksums: @unchecked Sendable {
    private var results: [Result<String, Error>] = []
    private let done = DispatchSemaphore(value: 0)

    init(_ paths: [String]) {
        Thread.detachNewThread { [self] in
            results = paths.map { p in Result { try Checksum.sha256(fileAt: p) } }
            done.signal()
        }
    }

    /// The checksums in the order given, once all are computed; the first failure is thrown.
    func wait() throws -> [String] {
        done.wait()
        return try results.map { try $0.get() }
    }
}
