import Foundation
@testable import Reports
import TestSupport
import XCTest

/// The report's SHA-256 checksums (swift-crypto underneath) keep their lower-case hex form.
final class ChecksumTests: XCTestCase {
    // FIPS 180-2 appendix B / NIST example vectors.
    func testKnownVectors() {
        XCTAssertEqual(Checksum.sha256(Array("".utf8)), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(Checksum.sha256(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(Checksum.sha256(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(Checksum.sha256([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testFileDigestReadInPiecesMatchesTheOneShotDigest() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("three-mib.bin")
        // Over three 1 MiB pieces, the last one partial.
        let bytes = (0..<(3 << 20) + 77).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try Checksum.sha256(fileAt: path), Checksum.sha256(bytes))
    }

    /// The background checksums give the digests of the files in the order given, and report a file that
    /// cannot be read, naming it.
    func testBackgroundChecksumsInOrderAndTheirFailure() throws {
        let dir = TemporaryDirectory()
        let a = dir.file("a.bin"), b = dir.file("b.bin")
        try Data("abc".utf8).write(to: URL(fileURLWithPath: a))
        try Data().write(to: URL(fileURLWithPath: b))
        XCTAssertEqual(try Checksums([b, a, b]).wait(),
                       ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"])
        let missing = dir.file("missing.bin")
        XCTAssertThrowsError(try Checksums([a, missing]).wait()) { error in
            XCTAssertTrue("\(error)".contains("missing.bin"), "\(error)")
        }
    }

    func testFileDigestMatchesPythonHashlib() throws {
        let path = fixturePath("run-a.h5")
        let ours = try Checksum.sha256(fileAt: path)
        guard let python = debianPython(modules: ["hashlib"]) else {
            if pythonRequired { XCTFail("/usr/bin/python3 is required") }
            return
        }
        let r = try runProcess(python, ["-c", "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(ours, r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
