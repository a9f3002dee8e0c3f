import Crypto
import Foundation

/// SHA-256 checksums (swift-crypto) for a report's provenance, as lower-case hexadecimal.
public enum Checksum {
    /// Lower-case hexadecimal SHA-256 digest of `bytes`.
    public static func sha256<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        hex(Crypto.SHA256.hash(data: Array(bytes)))
    }

    /// Lower-case hexadecimal SHA-256 digest of a file, read in 1 MiB pieces.
    public static func sha256(fileAt path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ReportError("\(path): cannot open for reading")
        }
        defer { try? handle.close() }
        var hasher = Crypto.SHA256()
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
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
