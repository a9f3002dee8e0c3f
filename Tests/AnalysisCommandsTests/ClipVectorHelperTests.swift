import ActivationStore
@testable import AnalysisCommands
import Foundation
import LinearAlgebra
import TestSupport
import XCTest

/// The helper process that pools a share of `DepthStream.readEach`'s representations: what it delivers
/// are this process's vectors to the bit, and whatever it does not deliver (it fails, writes something
/// else, stops early) is read in this process, with the same result.
final class ClipVectorHelperTests: XCTestCase {
    let n = 23, t = 6, d = 10, depths = 5
    var bw: String { productsDirectory.appendingPathComponent("bwanalyze").path }
    private var savedHelper: [String]? = nil
    private var savedMinimum = 0

    private var savedThreads = 0

    override func setUp() {
        savedHelper = ClipVectorHelper.helper
        savedMinimum = ClipVectorHelper.minimumBytes
        savedThreads = ThreadSetting.count
        ClipVectorHelper.minimumBytes = 0
        ThreadSetting.set(2)
    }

    override func tearDown() {
        ClipVectorHelper.helper = savedHelper
        ClipVectorHelper.minimumBytes = savedMinimum
        ThreadSetting.set(savedThreads)
    }

    /// Random float32 tokens at depths 0...4 in h5py-like chunks (partial at every edge).
    func writeFile(_ path: String, seed: UInt64) throws -> ActivationFile {
        var rng = SeededGenerator(seed: seed)
        let w = try ActivationWriter(path: path, metadata: ActivationMetadata(run: "cv\(seed)", regime: "e2e", blockEnds: [2, 4],
                                                                             probeSet: "p", step: 1, seed: 1, config: "{}"))
        for depth in 0..<depths {
            try w.createTokens(depth: depth, clips: n, tokens: t, features: d, type: .float32, chunk: [4, 4, 3])
            try w.writeTokens(depth: depth, firstClip: 0, values: (0..<(n * t * d)).map { _ in Float.random(in: -1..<1, using: &rng) })
        }
        try w.writeLabels("c", (0..<n).map { $0 % 3 })
        try w.commit()
        return try ActivationFile(path: path)
    }

    /// Each representation's vectors as `readEach` hands them to its jobs.
    func readEach(_ reps: [(file: ActivationFile, depth: Int)]) throws -> [[Double]] {
        try DepthStream.readEach(reps, progress: nil) { _, x in x.storage }
    }

    func inProcess(_ reps: [(file: ActivationFile, depth: Int)]) throws -> [[Double]] {
        try reps.map { try DepthStream.tokenMeans($0.file, depth: $0.depth, clips: 0..<$0.file.clipCount) }
    }

    func testHelperDeliversThisProcesssVectors() throws {
        let dir = TemporaryDirectory()
        let b = try writeFile(dir.file("b.h5"), seed: 2)
        ClipVectorHelper.helper = [bw, "clip-vectors"]
        let delivery = try XCTUnwrap(ClipVectorHelper.Delivery(file: b, depths: [3, 0, 4]))
        defer { delivery.finish() }
        for (slot, depth) in [3, 0, 4].enumerated() {
            let values = try XCTUnwrap(delivery.take(slot), "depth \(depth)")
            XCTAssertEqual(values, try DepthStream.tokenMeans(b, depth: depth, clips: 0..<n), "depth \(depth)")
        }
        XCTAssertNil(delivery.take(0), "a slot is taken once")
    }

    func testReadEachWithTheHelperGivesTheVectorsOfOneProcess() throws {
        let dir = TemporaryDirectory()
        let a = try writeFile(dir.file("a.h5"), seed: 1), b = try writeFile(dir.file("b.h5"), seed: 2)
        let two = (0..<depths).map { (file: a, depth: $0) } + (0..<depths).map { (file: b, depth: $0) }
        let one = (0..<depths).map { (file: a, depth: $0) }
        ClipVectorHelper.helper = [bw, "clip-vectors"]
        XCTAssertEqual(ClipVectorHelper.delegated(two), Array(depths..<(2 * depths)))
        XCTAssertEqual(ClipVectorHelper.delegated(one), [1, 3])
        XCTAssertEqual(try readEach(two), try inProcess(two))
        XCTAssertEqual(try readEach(one), try inProcess(one))
    }

    func testReadEachTakesTheHelpersDeliveriesForItsShare() throws {
        // A helper that pools another file of the same shape in place of the one it is given (it drops
        // `--identity ID FILE`): the delegated representations, and only those, get that file's vectors,
        // each at its own depth, which shows the deliveries are taken and where they go.
        let dir = TemporaryDirectory()
        let a = try writeFile(dir.file("a.h5"), seed: 1), b = try writeFile(dir.file("b.h5"), seed: 2)
        let other = try writeFile(dir.file("other.h5"), seed: 3)
        ClipVectorHelper.helper = ["/bin/sh", "-c", "shift 3; exec \"$0\" clip-vectors '\(other.path)' \"$@\"", bw]
        let two = (0..<depths).map { (file: a, depth: $0) } + [3, 1, 4].map { (file: b, depth: $0) }
        let expected = try inProcess(Array(two.prefix(depths))) + inProcess([3, 1, 4].map { (file: other, depth: $0) })
        XCTAssertEqual(try readEach(two), expected)
        let one = (0..<depths).map { (file: a, depth: $0) }
        XCTAssertEqual(try readEach(one), try (0..<depths).map { i in
            try DepthStream.tokenMeans(i % 2 == 1 ? other : a, depth: i, clips: 0..<n)
        })
    }

    func testHelperRefusesAFileChangedSinceThisProcessOpenedIt() throws {
        let dir = TemporaryDirectory()
        let a = try writeFile(dir.file("a.h5"), seed: 1), b = try writeFile(dir.file("b.h5"), seed: 2)
        let reps = (0..<depths).map { (file: a, depth: $0) } + (0..<depths).map { (file: b, depth: $0) }
        let expected = try inProcess(reps)
        // Changing the file's mode changes its change time, so its identity.
        XCTAssertEqual(chmod(b.path, 0o600), 0)
        ClipVectorHelper.helper = [bw, "clip-vectors"]
        let delivery = try XCTUnwrap(ClipVectorHelper.Delivery(file: b, depths: [0]))
        XCTAssertNil(delivery.take(0))
        delivery.finish()
        XCTAssertEqual(try readEach(reps), expected)
        let r = try bwanalyze("clip-vectors", "--identity", try XCTUnwrap(a.identity).description, b.path, "0")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stdout, "")
        XCTAssertTrue(r.stderr.contains("b.h5: not the file the parent process opened"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
    }

    func testWhatTheHelperDoesNotDeliverIsReadHere() throws {
        let dir = TemporaryDirectory()
        let a = try writeFile(dir.file("a.h5"), seed: 1), b = try writeFile(dir.file("b.h5"), seed: 2)
        let reps = (0..<depths).map { (file: a, depth: $0) } + (0..<depths).map { (file: b, depth: $0) }
        let expected = try inProcess(reps)
        // The helper (argv + --identity ID FILE DEPTH...) cannot start, fails at once, writes bytes that
        // are not a depth's vectors, or delivers the first depth and stops.
        let helpers: [[String]] = [
            [dir.file("no-such-helper")],
            ["/bin/false"],
            ["/bin/sh", "-c", "head -c 100000 /dev/urandom", "sh"],
            ["/bin/sh", "-c", "exec \"$0\" clip-vectors \"$1\" \"$2\" \"$3\" \"$4\"", bw],
        ]
        for helper in helpers {
            ClipVectorHelper.helper = helper
            XCTAssertEqual(try readEach(reps), expected, "\(helper)")
        }
        // The one that stops early did deliver its first depth.
        ClipVectorHelper.helper = helpers[3]
        let delivery = try XCTUnwrap(ClipVectorHelper.Delivery(file: b, depths: [2, 3]))
        defer { delivery.finish() }
        XCTAssertEqual(delivery.take(0), expected[depths + 2])
        XCTAssertNil(delivery.take(1))
    }

    func testNoHelperWhereItCannotHelp() throws {
        let dir = TemporaryDirectory()
        let a = try writeFile(dir.file("a.h5"), seed: 1), b = try writeFile(dir.file("b.h5"), seed: 2)
        let reps = (0..<depths).map { (file: a, depth: $0) } + (0..<depths).map { (file: b, depth: $0) }
        ClipVectorHelper.helper = nil
        XCTAssertEqual(ClipVectorHelper.delegated(reps), [])
        ClipVectorHelper.helper = [bw, "clip-vectors"]
        // One core allowed.
        ThreadSetting.set(1)
        XCTAssertEqual(ClipVectorHelper.delegated(reps), [])
        ThreadSetting.set(2)
        // Too few bytes: 5 depths of 23 × 6 × 10 float32 tokens are 27,600 bytes.
        ClipVectorHelper.minimumBytes = 27_601
        XCTAssertEqual(ClipVectorHelper.delegated(reps), [])
        ClipVectorHelper.minimumBytes = 27_600
        XCTAssertEqual(ClipVectorHelper.delegated(reps).count, depths)
        // A file read in another clip order than it stores.
        let reordered = try b.reordered(Array((0..<n).reversed()))
        XCTAssertEqual(ClipVectorHelper.delegated((0..<depths).map { (file: a, depth: $0) } + [(file: reordered, depth: 0)]), [])
        // Vectors already known.
        ClipVectorHelper.minimumBytes = 0
        let known = b.sharingClipVectors([0: try DepthStream.tokenMeans(b, depth: 0, clips: 0..<n)])
        XCTAssertEqual(ClipVectorHelper.delegated([(file: a, depth: 0), (file: known, depth: 0), (file: known, depth: 1)]), [2])
    }

    func testJobOrderInterleavesTheHelpersShareAfterTwoJobs() {
        XCTAssertEqual(ClipVectorHelper.jobOrder(10, delegated: [5, 6, 7, 8, 9]), [0, 1, 5, 2, 6, 3, 7, 4, 8, 9])
        XCTAssertEqual(ClipVectorHelper.jobOrder(5, delegated: [1, 3]), [0, 2, 1, 4, 3])
        XCTAssertEqual(ClipVectorHelper.jobOrder(3, delegated: []), [0, 1, 2])
    }

    func testHelperCommandNamesAFileItCannotRead() throws {
        let dir = TemporaryDirectory()
        let r = try bwanalyze("clip-vectors", dir.file("missing.h5"), "0")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stdout, "")
        XCTAssertTrue(r.stderr.contains("missing.h5"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
    }
}
