import ActivationStore
import Foundation
import TestSupport
import XCTest

/// Users' clip files, written by h5py as a user would, read back by `ClipFile`.
final class ClipFileTests: XCTestCase {
    let dir = TemporaryDirectory()

    /// Writes one case of a clip file: `python -c WRITER OUT CASE`. Clip values are a closed form the
    /// test recomputes: clips[i, f, y, x, c] = (131 i + 37 f + 11 y + 5 x + 3 c) mod 256.
    static let writer = """
    import sys
    import h5py
    import numpy as np

    out, case = sys.argv[1], sys.argv[2]
    N, F, H, W, C = 5, 3, 4, 6, 3
    i, f, y, x, c = np.meshgrid(*[np.arange(k) for k in (N, F, H, W, C)], indexing="ij")
    clips = ((131 * i + 37 * f + 11 * y + 5 * x + 3 * c) % 256).astype(np.uint8)
    good_labels = {"motion": (np.arange(N) % 3).astype(np.int64), "object": (np.arange(N) // 2).astype(np.int32)}
    with h5py.File(out, "w") as h:
        if case == "good":
            h["clips"] = clips
            for k, v in good_labels.items():
                h["labels/" + k] = v
        elif case == "chunked":
            h.create_dataset("clips", data=clips, chunks=(2, F, H, W, C), compression="gzip")
        elif case == "no-clips":
            h["labels/motion"] = good_labels["motion"]
        elif case == "clips-group":
            h.create_group("clips")
        elif case == "rank4":
            h["clips"] = clips[:, 0]
        elif case == "float32":
            h["clips"] = clips.astype(np.float32) / 255
        elif case == "int8":
            h["clips"] = (clips // 2).astype(np.int8)
        elif case == "int16":
            h["clips"] = clips.astype(np.int16)
        elif case == "no-frames":
            h["clips"] = np.zeros((N, 0, H, W, C), np.uint8)
        else:
            h["clips"] = clips
            if case == "labels-short":
                h["labels/motion"] = np.zeros(N - 1, np.int64)
            elif case == "labels-2d":
                h["labels/motion"] = np.zeros((N, 1), np.int64)
            elif case == "labels-negative":
                v = np.arange(N, dtype=np.int64)
                v[3] = -2
                h["labels/motion"] = v
            elif case == "labels-float":
                h["labels/motion"] = np.zeros(N, np.float32)
            elif case == "labels-not-group":
                h["labels"] = np.zeros(N, np.int64)
            elif case == "labels-nested":
                h.create_group("labels/motion")
            else:
                raise SystemExit("unknown case " + case)
    """

    func python() throws -> String {
        if let p = debianPython(modules: ["h5py", "numpy"]) { return p }
        if pythonRequired { XCTFail("/usr/bin/python3 with h5py and numpy is required (apt-get install python3-h5py python3-numpy)") }
        throw XCTSkip("Debian's python3-h5py is not installed")
    }

    func write(_ testCase: String) throws -> String {
        let py = try python()
        let path = dir.file("\(testCase).h5")
        let r = try runProcess(py, ["-c", ClipFileTests.writer, path, testCase])
        XCTAssertEqual(r.status, 0, r.stderr)
        return path
    }

    func expectedPixels(clips: Range<Int>) -> [Float] {
        var out: [Float] = []
        for i in clips { for f in 0..<3 { for y in 0..<4 { for x in 0..<6 { for c in 0..<3 {
            out.append(Float((131 * i + 37 * f + 11 * y + 5 * x + 3 * c) % 256) / 255)
        } } } } }
        return out
    }

    func testReadsWhatH5pyWrote() throws {
        for testCase in ["good", "chunked"] {
            let f = try ClipFile(path: try write(testCase))
            XCTAssertEqual([f.count, f.frames, f.height, f.width, f.channels], [5, 3, 4, 6, 3])
            XCTAssertEqual(try f.pixels(clips: 0..<5), expectedPixels(clips: 0..<5), testCase)
            // Clips 1..<4 cross the chunk boundaries of the chunked file (chunks of 2 clips).
            XCTAssertEqual(try f.pixels(clips: 1..<4), expectedPixels(clips: 1..<4), testCase)
            XCTAssertEqual(try f.pixels(clips: 2..<2), [])
            if testCase == "good" {
                XCTAssertEqual(f.targets, ["motion", "object"])
                XCTAssertEqual(try f.labels("motion"), [0, 1, 2, 0, 1])
                XCTAssertEqual(try f.labels("object"), [0, 0, 1, 1, 2], "int32 labels are accepted")
            } else {
                XCTAssertEqual(f.targets, [])
            }
        }
        // Byte 255 reads as exactly 1 and 0 as exactly 0.
        let all = try ClipFile(path: try write("good")).pixels(clips: 0..<5)
        XCTAssertEqual(all.min(), 0)
        XCTAssertEqual(all.max(), 1)
    }

    func testBadRangesAndTargets() throws {
        let path = try write("good")
        let f = try ClipFile(path: path)
        for (body, object, text) in [({ _ = try f.pixels(clips: 3..<6) }, "/clips", "outside 0..<5"),
                                     ({ _ = try f.labels("colour") }, "/labels/colour", "known targets: motion, object")] {
            XCTAssertThrowsError(try body()) { error in
                guard let e = error as? ActivationStoreError else { return XCTFail("\(error)") }
                XCTAssertEqual(e.kind, .invalidArgument)
                XCTAssertEqual(e.file, path)
                XCTAssertEqual(e.object, object)
                XCTAssertTrue(e.message.contains(text), "\(e)")
            }
        }
    }

    func assertRejected(_ path: String, kind: ActivationStoreError.Kind, object: String?, contains text: String,
                        file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ClipFile(path: path), file: file, line: line) { error in
            guard let e = error as? ActivationStoreError else { return XCTFail("unexpected \(error)", file: file, line: line) }
            XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
            XCTAssertEqual(e.file, path, file: file, line: line)
            XCTAssertEqual(e.object, object, "\(e)", file: file, line: line)
            XCTAssertTrue(e.message.contains(text), "\(e)", file: file, line: line)
            XCTAssertTrue(e.description.hasPrefix(path + ": "), "\(e)", file: file, line: line)
            XCTAssertFalse(e.description.contains("\n"), file: file, line: line)
        }
    }

    func testMissingDirectoryAndNonHDF5Files() throws {
        assertRejected(dir.file("nope.h5"), kind: .notFound, object: nil, contains: "no such file")
        assertRejected(dir.path, kind: .isDirectory, object: nil, contains: "is a directory")
        let text = dir.file("clips.txt")
        try "not hdf5\n".write(toFile: text, atomically: true, encoding: .utf8)
        assertRejected(text, kind: .notHDF5, object: nil, contains: "not an HDF5 file")
    }

    func testBadLayoutsNameTheDataset() throws {
        let cases: [(String, String, String)] = [
            ("no-clips", "/clips", "missing; a clip file holds /clips uint8 [N, F, H, W, C]"),
            ("clips-group", "/clips", "is not a dataset"),
            ("rank4", "/clips", "expected rank 5 [N, F, H, W, C], found shape [5, 4, 6, 3]"),
            ("float32", "/clips", "expected uint8 pixels 0…255, found float32; only uint8 is accepted"),
            ("int8", "/clips", "found int8; only uint8 is accepted"),
            ("int16", "/clips", "found int16; only uint8 is accepted"),
            ("no-frames", "/clips", "must be ≥ 1, found shape [5, 0, 4, 6, 3]"),
            ("labels-short", "/labels/motion", "shape [5], found shape [4]"),
            ("labels-2d", "/labels/motion", "shape [5], found shape [5, 1]"),
            ("labels-negative", "/labels/motion", "negative class index -2 at clip 3"),
            ("labels-float", "/labels/motion", "expected int64 class indices, found float32"),
            ("labels-not-group", "/labels", "is not a group"),
            ("labels-nested", "/labels/motion", "is not a dataset"),
        ]
        for (testCase, object, text) in cases {
            assertRejected(try write(testCase), kind: .schema, object: object, contains: text)
        }
    }
}
