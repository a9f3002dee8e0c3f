import ActivationStore
import BlockwiseTraining
import Foundation
import TestSupport
import XCTest

/// `VideoClipSet.load`: a synthetic set written by h5py as a user would, read back whole.
final class VideoClipSetFileTests: XCTestCase {
    /// Reads raw uint8 bytes in [N, F, H, W, C] order and a JSON of labels, writes a clip file.
    static let writer = """
    import json, sys
    import h5py
    import numpy as np

    raw, labels, shape, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    with h5py.File(out, "w") as h:
        h["clips"] = np.fromfile(raw, dtype=np.uint8).reshape(shape)
        for k, v in json.load(open(labels)).items():
            h["labels/" + k] = np.array(v, dtype=np.int64)
    """

    func testLoadReadsAUsersFileWhole() throws {
        guard let py = debianPython(modules: ["h5py", "numpy"]) else {
            if pythonRequired { XCTFail("/usr/bin/python3 with h5py and numpy is required") }
            throw XCTSkip("Debian's python3-h5py is not installed")
        }
        let dir = TemporaryDirectory()
        let set = SyntheticVideo.actions(count: 7, frames: 3, height: 16, width: 12, channels: 3, seed: 4)
        let bytes = set.pixels.map { UInt8(($0 * 255).rounded()) }
        try Data(bytes).write(to: URL(fileURLWithPath: dir.file("clips.raw")))
        try JSONEncoder().encode(set.labels).write(to: URL(fileURLWithPath: dir.file("labels.json")))
        let path = dir.file("mine.h5")
        let r = try runProcess(py, ["-c", VideoClipSetFileTests.writer, dir.file("clips.raw"), dir.file("labels.json"),
                                    "[7, 3, 16, 12, 3]", path])
        XCTAssertEqual(r.status, 0, r.stderr)

        let loaded = try VideoClipSet.load(path: path, name: "my-actions")
        XCTAssertEqual(loaded.name, "my-actions")
        XCTAssertEqual([loaded.count, loaded.frames, loaded.height, loaded.width, loaded.channels], [7, 3, 16, 12, 3])
        XCTAssertEqual(loaded.pixels, bytes.map { Float($0) / 255 })
        // 8-bit quantisation moves a value by at most half a step.
        XCTAssertLessThanOrEqual(zip(loaded.pixels, set.pixels).map { abs($0 - $1) }.max()!, 0.5 / 255 + 1e-6)
        XCTAssertEqual(loaded.labels, set.labels)
        // Class counts come from the largest label present (7 clips hold all 4 objects and motions 0…5).
        XCTAssertEqual(loaded.classCounts["object"], 4)
        XCTAssertEqual(loaded.classCounts["motion"], set.labels["motion"]!.max()! + 1)

        XCTAssertThrowsError(try VideoClipSet.load(path: dir.file("absent.h5"), name: "x")) {
            XCTAssertEqual(($0 as? ActivationStoreError)?.kind, .notFound)
        }
    }
}
