@testable import ActivationStore
import Foundation
import TestSupport
import XCTest

/// Writes an HDF5 file that departs from bwact/1 in a chosen way, bypassing the writer's checks.
func writeRaw(_ path: String, omitAttribute: String? = nil, format: String = "bwact", blockEnds: [Int] = [2],
              tokenShapes: [Int: [Int]] = [0: [6, 2, 3], 1: [6, 2, 3], 2: [6, 2, 3]], tokenType: ElementType = .float32,
              labels: [String: (count: Int, type: ElementType)] = ["c": (6, .int64)], nanAt: (depth: Int, count: Int)? = nil) throws {
    let f = try HDF5File.create(path: path, displayName: path)
    let strings = ["format": format, "run": "raw", "regime": "external", "probe_set": "p", "config": "{}"]
    for (k, v) in strings.sorted(by: { $0.key < $1.key }) where k != omitAttribute { try f.writeStringAttribute(k, v) }
    for (k, v) in [("format_version", 1), ("step", 0), ("seed", 0)] where k != omitAttribute { try f.writeIntAttribute(k, [v], scalar: true) }
    if omitAttribute != "block_ends" { try f.writeIntAttribute("block_ends", blockEnds, scalar: false) }
    for (depth, shape) in tokenShapes {
        let path = ActivationPaths.tokens(depth)
        try f.createDataset(path, shape: shape, type: tokenType)
        let n = shape.reduce(1, *)
        if tokenType == .int64 {
            try f.write(path, [Int64](repeating: 1, count: n))
        } else {
            var v = (0..<n).map { Double($0 % 7) }
            if let nanAt, nanAt.depth == depth { for i in 0..<nanAt.count { v[i] = i % 2 == 0 ? .nan : .infinity } }
            try f.write(path, v)
        }
    }
    for (name, l) in labels {
        try f.createDataset(ActivationPaths.labels(name), shape: [l.count], type: l.type)
        if l.type == .int64 { try f.write(ActivationPaths.labels(name), (0..<l.count).map { Int64($0 % 2) }) } else {
            try f.write(ActivationPaths.labels(name), (0..<l.count).map { Double($0 % 2) })
        }
    }
    try f.createDataset(ActivationPaths.positions, shape: [2, 3], type: .float32)
    try f.write(ActivationPaths.positions, [Float](repeating: 0, count: 6))
    try f.close()
}

final class BadInputTests: XCTestCase {
    let dir = TemporaryDirectory()

    /// Asserts that opening fails with `kind`, that the one-line message names the file (and
    /// object), and that the CLI exits 1 with that single line on stderr and nothing on stdout.
    func assertRejected(_ path: String, kind: ActivationStoreError.Kind, object: String?, contains text: String,
                        file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertThrowsError(try ActivationFile(path: path), file: file, line: line) { error in
            guard let e = error as? ActivationStoreError else { return XCTFail("unexpected \(error)", file: file, line: line) }
            XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
            XCTAssertEqual(e.file, path, file: file, line: line)
            XCTAssertEqual(e.object, object, "\(e)", file: file, line: line)
            XCTAssertTrue(e.message.contains(text), "\(e)", file: file, line: line)
            XCTAssertFalse(e.description.contains("\n"), file: file, line: line)
        }
        let r = try bwanalyze("inspect", path)
        XCTAssertEqual(r.status, 1, file: file, line: line)
        XCTAssertEqual(r.stdout, "", file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, r.stderr, file: file, line: line)
        XCTAssertTrue(lines.first?.hasPrefix("bwanalyze: error: \(path): ") ?? false, r.stderr, file: file, line: line)
        let v = try bwanalyze("validate", path)
        XCTAssertEqual(v.status, 1, file: file, line: line)
        XCTAssertTrue(v.stdout.contains(text), v.stdout, file: file, line: line)
    }

    func testMissingPath() throws {
        try assertRejected(dir.file("nope.h5"), kind: .notFound, object: nil, contains: "no such file")
    }

    func testDirectory() throws {
        try assertRejected(dir.path, kind: .isDirectory, object: nil, contains: "is a directory")
    }

    func testNonHDF5File() throws {
        let p = dir.file("notes.h5")
        try "just text\n".write(toFile: p, atomically: true, encoding: .utf8)
        try assertRejected(p, kind: .notHDF5, object: nil, contains: "not an HDF5 file")
    }

    func testTruncatedHDF5File() throws {
        let p = dir.file("truncated.h5")
        let whole = try Data(contentsOf: URL(fileURLWithPath: fixturePath("geometry.h5")))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: p))
        try assertRejected(p, kind: .cannotOpen, object: nil, contains: "truncated")
    }

    func testHDF5FileOfAnotherSchema() throws {
        let p = dir.file("other.h5")
        let f = try HDF5File.create(path: p, displayName: p)
        try f.createDataset("/data", shape: [3], type: .float64)
        try f.write("/data", [1.0, 2, 3])
        try f.close()
        try assertRejected(p, kind: .notBwact, object: nil, contains: "not a bwact activation file")
    }

    func testWrongFormatName() throws {
        let p = dir.file("format.h5")
        try writeRaw(p, format: "something-else")
        try assertRejected(p, kind: .schema, object: "/ attr format", contains: "expected \"bwact\"")
    }

    func testMissingAttribute() throws {
        let p = dir.file("noprobe.h5")
        try writeRaw(p, omitAttribute: "probe_set")
        try assertRejected(p, kind: .schema, object: "/ attr probe_set", contains: "missing")
    }

    func testWrongRank() throws {
        let p = dir.file("rank.h5")
        try writeRaw(p, tokenShapes: [0: [6, 2, 3], 1: [6, 6], 2: [6, 2, 3]])
        try assertRejected(p, kind: .schema, object: "/layers/01/tokens", contains: "rank 2")
    }

    func testWrongTokenDtype() throws {
        let p = dir.file("dtype.h5")
        try writeRaw(p, tokenType: .int64)
        try assertRejected(p, kind: .schema, object: "/layers/00/tokens", contains: "int64; tokens must be float16, float32 or float64")
    }

    func testClipCountMismatchBetweenLayers() throws {
        let p = dir.file("nmismatch.h5")
        try writeRaw(p, tokenShapes: [0: [6, 2, 3], 1: [6, 2, 3], 2: [5, 2, 3]])
        try assertRejected(p, kind: .schema, object: "/layers/02/tokens", contains: "N = 5 clips but /layers/00/tokens has 6")
    }

    func testClipCountMismatchWithLabels() throws {
        let p = dir.file("labels.h5")
        try writeRaw(p, labels: ["c": (7, .int64)])
        try assertRejected(p, kind: .schema, object: "/labels/c", contains: "7 labels but the layers hold N = 6")
    }

    func testFloatLabels() throws {
        let p = dir.file("floatlabels.h5")
        try writeRaw(p, labels: ["c": (6, .float64)])
        try assertRejected(p, kind: .schema, object: "/labels/c", contains: "labels must be int64")
    }

    func testGapInLayers() throws {
        let p = dir.file("gap.h5")
        try writeRaw(p, tokenShapes: [0: [6, 2, 3], 2: [6, 2, 3]])
        try assertRejected(p, kind: .schema, object: "/layers", contains: "missing 01")
    }

    func testBlockEndsNotEndingAtLastLayer() throws {
        let p = dir.file("blocks.h5")
        try writeRaw(p, blockEnds: [1, 3])
        try assertRejected(p, kind: .schema, object: "/ attr block_ends", contains: "end at L = 2")
    }

    func testValidateListsEveryViolation() throws {
        let p = dir.file("many.h5")
        try writeRaw(p, omitAttribute: "seed", blockEnds: [2, 1],
                     tokenShapes: [0: [6, 2, 3], 1: [6, 2, 4], 2: [6, 2, 3]], labels: ["c": (5, .int64)])
        let r = try bwanalyze("validate", p)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stdout.hasPrefix("\(p): 4 problems\n"), r.stdout)
        for part in ["/ attr seed: missing", "/layers/01/tokens: has D = 4", "/ attr block_ends: [2, 1] is not strictly increasing",
                     "/labels/c: has 5 labels"] {
            XCTAssertTrue(r.stdout.contains(part), "missing \(part) in\n\(r.stdout)")
        }
    }

    func testNaNAndInfAreCountedPerLayerButTheFileStillOpens() throws {
        let p = dir.file("nan.h5")
        try writeRaw(p, nanAt: (1, 5))
        let f = try ActivationFile(path: p)
        XCTAssertEqual(f.layerCount, 2)
        let report = ActivationValidator.validate(path: p)
        XCTAssertEqual(report.nonFiniteCounts, [0: 0, 1: 5, 2: 0])
        let r = try bwanalyze("validate", p)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stdout.contains("/layers/01/tokens: 5 NaN/Inf values"), r.stdout)
        let clean = dir.file("clean.h5")
        try writeRaw(clean)
        let ok = try bwanalyze("validate", clean)
        XCTAssertEqual(ok.status, 0, ok.stdout)
        XCTAssertEqual(ok.stdout, "\(clean): ok\n")
    }

    func testOneBadFileAmongGoodOnesFailsTheCommandButReportsTheRest() throws {
        let r = try bwanalyze("inspect", fixturePath("spectrum.h5"), dir.file("missing.h5"))
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stdout.contains("fixture-spectrum"), r.stdout)
        XCTAssertEqual(r.stderr, "bwanalyze: error: \(dir.file("missing.h5")): no such file\n")
    }
}
