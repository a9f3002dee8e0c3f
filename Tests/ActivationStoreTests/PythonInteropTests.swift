import ActivationStore
import Foundation
import TestSupport
import XCTest

/// The public contract with users' PyTorch code: files go both ways between h5py and the store.
final class PythonInteropTests: XCTestCase {
    func python() throws -> String {
        if let p = debianPython(modules: ["h5py", "numpy"]) { return p }
        if pythonRequired { XCTFail("/usr/bin/python3 with h5py and numpy is required (apt-get install python3-h5py python3-numpy)") }
        throw XCTSkip("Debian's python3-h5py is not installed")
    }

    func script(_ name: String) -> String { repositoryRoot.appendingPathComponent("Tests/python/\(name)").path }

    func testH5pyReadsFilesTheStoreWrote() throws {
        let py = try python()
        let r = try runProcess(py, [script("read_ours.py"), repositoryRoot.appendingPathComponent("Fixtures").path])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.hasSuffix("passed, 0 failed\n"), r.stdout)
    }

    func testStoreReadsFilesH5pyWrote() throws {
        let py = try python()
        let dir = TemporaryDirectory()
        for dtype in ["float16", "float32", "float64"] {
            let path = dir.file("torch-\(dtype).h5")
            let w = try runProcess(py, [script("write_theirs.py"), path, dtype])
            XCTAssertEqual(w.status, 0, w.stderr)
            let f = try ActivationFile(path: path)
            XCTAssertEqual(f.metadata, ActivationMetadata(run: "torch-run", regime: "external", blockEnds: [1, 3], probeSet: "gratings",
                                                          step: 5000, seed: 3, config: "{\"model\": \"vit-tiny\", \"depth\": 3}"))
            XCTAssertEqual([f.layerCount, f.clipCount, f.tokenCount, f.featureCount], [3, 12, 4, 6])
            XCTAssertEqual(f.tokenTypes, Array(repeating: ElementType(rawValue: dtype)!, count: 4))
            XCTAssertEqual(f.chunkClips, 5)
            XCTAssertEqual(f.targets, ["direction", "speed"])
            XCTAssertEqual(try f.labels("speed"), (0..<12).map { $0 / 6 })
            XCTAssertEqual(f.attentionShapes, [2: AttentionShape(clips: 2, heads: 3, tokens: 4)])
            XCTAssertTrue(try f.attention(depth: 2).allSatisfy { $0 == 0.25 })
            for depth in [0, 3] {
                // Clips 7..<11 cross a chunk boundary (chunks of 5 clips).
                let x = try f.tokens(depth: depth, clips: 7..<11, as: Double.self)
                var expected: [Double] = []
                for i in 7..<11 { for j in 0..<4 { for k in 0..<6 { expected.append(0.5 * Double(i) + 0.25 * Double(j) - Double(k) / 8 + Double(depth)) } } }
                XCTAssertEqual(x, expected, "\(dtype) depth \(depth)")  // every value is exact in float16
            }
            let v = try bwanalyze("validate", path)
            XCTAssertEqual(v.status, 0, v.stdout)
        }
    }
}

extension PythonInteropTests {
    /// The h5py example in docs/activation-format.md writes a file that validates.
    func testDocumentedH5pyExampleWritesAValidFile() throws {
        let py = try python()
        let doc = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/activation-format.md"), encoding: .utf8)
        let blocks = doc.components(separatedBy: "```python\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        XCTAssertGreaterThanOrEqual(blocks.count, 2)
        let dir = TemporaryDirectory()
        let scriptPath = dir.file("example.py")
        try (blocks[0] + "\n" + blocks[1]).write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let cwd = FileManager.default.currentDirectoryPath
        _ = FileManager.default.changeCurrentDirectoryPath(dir.path)
        defer { _ = FileManager.default.changeCurrentDirectoryPath(cwd) }
        let r = try runProcess(py, [scriptPath])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("13 (64, 128, 192) (10, 128, 192) (16, 192)"), r.stdout)
        let v = try bwanalyze("validate", dir.file("my-run.h5"))
        XCTAssertEqual(v.status, 0, v.stdout)
        let f = try ActivationFile(path: dir.file("my-run.h5"))
        XCTAssertEqual(f.attentionShapes[12], AttentionShape(clips: 4, heads: 3, tokens: 128))
    }
}
