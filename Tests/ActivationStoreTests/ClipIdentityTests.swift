import ActivationStore
import Foundation
import TestSupport
import XCTest

/// `/clip_ids` and a file seen in another clip order; a shard index whose source is missing.
final class ClipIdentityTests: XCTestCase {
    func python() throws -> String {
        if let p = debianPython(modules: ["h5py", "numpy"]) { return p }
        if pythonRequired { XCTFail("/usr/bin/python3 with h5py and numpy is required") }
        throw XCTSkip("Debian's python3-h5py is not installed")
    }

    /// A copy of the run-b fixture with ids written by h5py (`ids` is a Python expression over N).
    func fixtureWithIDs(_ dir: TemporaryDirectory, _ ids: String) throws -> String {
        let path = dir.file("ids.h5")
        try FileManager.default.copyItem(atPath: fixturePath("run-b.h5"), toPath: path)
        let r = try runProcess(try python(), ["-c", """
            import sys, h5py, numpy as np
            with h5py.File(sys.argv[1], "a") as f:
                N = f["layers/00/tokens"].shape[0]
                f["clip_ids"] = \(ids)
            """, path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return path
    }

    func testReorderedFileReadsTheStoredClipsInTheGivenOrder() throws {
        let dir = TemporaryDirectory()
        let path = try fixtureWithIDs(dir, "np.array([f'clip-{i}' for i in range(N)], dtype=h5py.string_dtype())")
        let f = try ActivationFile(path: path)
        let ids = try XCTUnwrap(f.clipIDs())
        XCTAssertEqual(ids, (0..<f.clipCount).map { "clip-\($0)" })
        var rng = SystemRandomNumberGenerator()
        let order = Array(0..<f.clipCount).shuffled(using: &rng)
        let g = try f.reordered(order)
        XCTAssertEqual(try g.clipIDs(), order.map { "clip-\($0)" })
        XCTAssertEqual(try g.labels("motion"), try f.labels("motion").indices.map { try! f.labels("motion")[order[$0]] })
        let perClip = f.tokenCount * f.featureCount
        let all = try f.tokens(depth: 2, clips: 0..<f.clipCount, as: Double.self)
        let got = try g.tokens(depth: 2, clips: 5..<37, as: Double.self)
        let expected = (5..<37).flatMap { all[(order[$0] * perClip)..<((order[$0] + 1) * perClip)] }
        XCTAssertEqual(got, expected)
        XCTAssertThrowsError(try g.attention(depth: 1))
        XCTAssertThrowsError(try f.reordered([0, 0] + Array(2..<f.clipCount)))
    }

    func testRepeatedIDsAreRefusedAndIntIDsReadAsText() throws {
        let dir = TemporaryDirectory()
        let path = try fixtureWithIDs(dir, "np.array([i // 2 for i in range(N)], dtype=np.int64)")
        XCTAssertThrowsError(try ActivationFile(path: path).clipIDs()) { error in
            XCTAssertEqual("\(error)", "\(path): /clip_ids: clip id '0' occurs more than once; ids are unique within a file")
        }
        let report = ActivationValidator.validate(path: path)
        XCTAssertEqual(report.violations.map(\.object), ["/clip_ids"])
        let other = TemporaryDirectory()
        let ok = try fixtureWithIDs(other, "np.arange(N, dtype=np.int64) * 10")
        XCTAssertEqual(try ActivationFile(path: ok).clipIDs()?.prefix(3), ["0", "10", "20"])
    }

    func testIndexWithAMissingSourceIsRefused() throws {
        let dir = TemporaryDirectory()
        try FileManager.default.copyItem(atPath: fixturePath("run-b.h5"), toPath: dir.file("part.h5"))
        let r = try runProcess(try python(), ["-c", """
            import sys, h5py
            with h5py.File(sys.argv[1] + "/part.h5", "r") as src, h5py.File(sys.argv[1] + "/index.h5", "w") as f:
                for k, v in src.attrs.items():
                    f.attrs[k] = v
                def copy(name, obj):
                    if isinstance(obj, h5py.Dataset):
                        if name.endswith("tokens"):
                            layout = h5py.VirtualLayout(shape=obj.shape, dtype=obj.dtype)
                            layout[...] = h5py.VirtualSource("part.h5", name, shape=obj.shape)
                            f.create_virtual_dataset(name, layout)
                        else:
                            f.create_dataset(name, data=obj[()])
                src.visititems(copy)
            """, dir.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let index = dir.file("index.h5")
        XCTAssertEqual(try ActivationFile(path: index).tokens(depth: 1, clips: 0..<3),
                       try ActivationFile(path: dir.file("part.h5")).tokens(depth: 1, clips: 0..<3))
        XCTAssertTrue(ActivationValidator.validate(path: index).isValid)
        XCTAssertEqual(VirtualSources.files(behind: index), [URL(fileURLWithPath: dir.file("part.h5")).standardizedFileURL.path])
        try FileManager.default.removeItem(atPath: dir.file("part.h5"))
        XCTAssertThrowsError(try ActivationFile(path: index)) { error in
            XCTAssertEqual("\(error)", "\(index): /layers/00/tokens: virtual dataset source 'part.h5' is missing (HDF5 would read it as fill values)")
        }
        let report = ActivationValidator.validate(path: index)
        XCTAssertFalse(report.isValid)
        XCTAssertTrue(report.violations.contains { $0.message.contains("'part.h5' is missing") }, "\(report.violations)")
    }
}
