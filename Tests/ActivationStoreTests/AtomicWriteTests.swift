import ActivationStore
import Foundation
import TestSupport
import XCTest

final class AtomicWriteTests: XCTestCase {
    func testDroppedWriterLeavesNothing() throws {
        let dir = TemporaryDirectory()
        do {
            let w = try ActivationWriter(path: dir.file("x.h5"), metadata: ActivationMetadata(run: "x", regime: "e2e", blockEnds: [1], probeSet: "p"))
            try w.writeTokens(depth: 0, values: [1, 2], clips: 1, tokens: 1, features: 2)
            XCTAssertEqual(dir.contents.count, 1, "the temporary file exists while writing")
            XCTAssertTrue(dir.contents[0].hasPrefix(".x.h5.tmp-"), dir.contents[0])
        }
        XCTAssertEqual(dir.contents, [])
    }

    func testCommitRefusesAnIncompleteFileAndKeepsTheOldOne() throws {
        let dir = TemporaryDirectory()
        let dest = dir.file("x.h5")
        try "previous contents".write(toFile: dest, atomically: false, encoding: .utf8)
        let w = try ActivationWriter(path: dest, metadata: ActivationMetadata(run: "x", regime: "e2e", blockEnds: [2], probeSet: "p"))
        try w.writeTokens(depth: 0, values: [1, 2], clips: 1, tokens: 1, features: 2)
        try w.writeTokens(depth: 2, values: [1, 2], clips: 1, tokens: 1, features: 2)  // depth 1 missing
        XCTAssertThrowsError(try w.commit()) { e in
            XCTAssertTrue("\(e)".contains("refusing to write an invalid file"), "\(e)")
            XCTAssertTrue("\(e)".contains("missing 01"), "\(e)")
        }
        XCTAssertEqual(dir.contents, ["x.h5"])
        XCTAssertEqual(try String(contentsOfFile: dest, encoding: .utf8), "previous contents")
    }

    func testWriterRejectsMissingDirectory() {
        XCTAssertThrowsError(try ActivationWriter(path: "/nonexistent-dir-bwssl/x.h5",
                                                  metadata: ActivationMetadata(run: "x", regime: "e2e", blockEnds: [1], probeSet: "p"))) { e in
            XCTAssertEqual("\(e)", "/nonexistent-dir-bwssl/x.h5: the directory /nonexistent-dir-bwssl does not exist")
        }
    }

    /// Kills a writing `bwanalyze synth` process at several points and checks that the destination
    /// is never half-written: absent when it did not exist, byte-identical when it did.
    func testKilledWriterNeverLeavesAPartialFileUnderTheFinalName() throws {
        let dir = TemporaryDirectory()
        let dest = dir.file("big.h5")
        let old = try Data(contentsOf: URL(fileURLWithPath: fixturePath("spectrum.h5")))
        for (attempt, delayMs) in [0, 150, 600].enumerated() {
            let preexisting = attempt == 1
            if preexisting { try old.write(to: URL(fileURLWithPath: dest)) }
            let p = Process()
            p.executableURL = productsDirectory.appendingPathComponent("bwanalyze")
            // ~100 MB of tokens: several seconds of work, so each kill lands mid-write.
            p.arguments = ["synth", "--out", dest, "--clips", "1500", "--tokens", "64", "--features", "64", "--layers", "3", "--quiet"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            let deadline = Date().addingTimeInterval(30)
            while !dir.contents.contains(where: { $0.hasPrefix(".big.h5.tmp-") }) && Date() < deadline && p.isRunning {
                usleep(2_000)
            }
            usleep(useconds_t(delayMs * 1000))
            XCTAssertTrue(p.isRunning, "the writer finished before it could be killed (attempt \(attempt)); make the file larger")
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationReason, .uncaughtSignal)
            if preexisting {
                XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dest)), old, "an existing file must be untouched")
                try FileManager.default.removeItem(atPath: dest)
            } else {
                XCTAssertFalse(FileManager.default.fileExists(atPath: dest), "attempt \(attempt): partial file under the final name")
            }
            XCTAssertTrue(dir.contents.allSatisfy { $0.hasPrefix(".big.h5.tmp-") }, "\(dir.contents)")
            for leftover in dir.contents { try FileManager.default.removeItem(atPath: dir.file(leftover)) }
        }
        // And left alone, the same command does produce a valid file.
        let r = try bwanalyze("synth", "--out", dest, "--clips", "20", "--tokens", "4", "--features", "8", "--layers", "4", "--quiet")
        XCTAssertEqual(r.status, 0, r.stderr)
        let f = try ActivationFile(path: dest)
        XCTAssertEqual([f.clipCount, f.tokenCount, f.featureCount, f.layerCount], [20, 4, 8, 4])
        XCTAssertEqual(f.metadata.blockEnds, [1, 2, 3, 4])
        XCTAssertEqual(dir.contents, ["big.h5"])
    }
}
