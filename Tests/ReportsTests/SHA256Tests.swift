import Foundation
import Reports
import TestSupport
import XCTest

final class SHA256Tests: XCTestCase {
    // FIPS 180-2 appendix B / NIST example vectors.
    func testKnownVectors() {
        XCTAssertEqual(SHA256.hex(Array("".utf8)), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testIncrementalUpdatesMatchOneShotAtEveryBlockBoundary() {
        let message = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let whole = SHA256.hex(message)
        for split in [0, 1, 55, 56, 63, 64, 65, 127, 128, 200, 300] {
            var h = SHA256()
            h.update(Data(message[..<split]))
            h.update(Array(message[split...]))
            XCTAssertEqual(h.finalize().map { String(format: "%02x", $0) }.joined(), whole, "split at \(split)")
        }
    }

    func testFileDigestMatchesPythonHashlib() throws {
        let path = fixturePath("run-a.h5")
        let ours = try SHA256.hex(fileAt: path)
        guard let python = debianPython(modules: ["hashlib"]) else {
            if pythonRequired { XCTFail("/usr/bin/python3 is required") }
            return
        }
        let r = try runProcess(python, ["-c", "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(ours, r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
