@testable import ActivationStore
import LinearAlgebra
import TestSupport
import XCTest

final class RoundTripTests: XCTestCase {
    let meta = ActivationMetadata(run: "rt", regime: "sequential", blockEnds: [1, 2], probeSet: "gratings",
                                  step: 1234, seed: -7, config: "{\"width\":4,\"name\":\"tiny ü\"}")

    /// Values that are a closed-form function of (clip, token, feature, depth).
    func value(_ i: Int, _ j: Int, _ k: Int, _ depth: Int) -> Float { Float(i) * 0.5 + Float(j) * 0.25 - Float(k) / 8 + Float(depth) }

    func writeSample(_ path: String, n: Int = 10, t: Int = 3, d: Int = 5) throws {
        let w = try ActivationWriter(path: path, metadata: meta)
        for depth in 0...2 {
            var v: [Float] = []
            for i in 0..<n { for j in 0..<t { for k in 0..<d { v.append(value(i, j, k, depth)) } } }
            try w.writeTokens(depth: depth, values: v, clips: n, tokens: t, features: d)
        }
        try w.writeAttention(depth: 2, values: (0..<(2 * 1 * t * t)).map { Float($0) }, clips: 2, heads: 1, tokens: t)
        try w.writePositions((0..<(t * 3)).map { Float($0) })
        try w.writeLabels("orientation", (0..<n).map { $0 % 4 })
        try w.writeLabels("speed", (0..<n).map { $0 / 5 })
        try w.writeTrainingCurve(TrainingCurve(steps: [0, 5], loss: [1, 2, 3, 4], blocks: 2))
        try w.commit()
    }

    func testEverythingWrittenReadsBack() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("a.h5")
        try writeSample(path)
        XCTAssertEqual(dir.contents, ["a.h5"], "no temporary file may remain after commit")
        let f = try ActivationFile(path: path)
        XCTAssertEqual(f.metadata, meta)
        XCTAssertEqual(f.layerCount, 2)
        XCTAssertEqual([f.clipCount, f.tokenCount, f.featureCount], [10, 3, 5])
        XCTAssertEqual(f.targets, ["orientation", "speed"])
        XCTAssertEqual(try f.labels("orientation"), (0..<10).map { $0 % 4 })
        XCTAssertEqual(try f.positions(), (0..<9).map { Float($0) })
        XCTAssertEqual(f.attentionShapes, [2: AttentionShape(clips: 2, heads: 1, tokens: 3)])
        XCTAssertEqual(try f.attention(depth: 2), (0..<18).map { Float($0) })
        XCTAssertEqual(try f.attention(depth: 2, clips: 1..<2), (9..<18).map { Float($0) })
        XCTAssertEqual(try f.trainingCurve(), TrainingCurve(steps: [0, 5], loss: [1, 2, 3, 4], blocks: 2))
        XCTAssertTrue(f.warnings.isEmpty, "\(f.warnings)")
        // A hyperslab of clips 3..<7 at depth 1 is exactly those clips.
        let slab = try f.tokens(depth: 1, clips: 3..<7)
        var expected: [Float] = []
        for i in 3..<7 { for j in 0..<3 { for k in 0..<5 { expected.append(value(i, j, k, 1)) } } }
        XCTAssertEqual(slab, expected)
        XCTAssertEqual(try f.tokens(depth: 1, clips: 3..<7, as: Double.self), expected.map(Double.init))
    }

    func testStreamingWritesInClipRangesEqualOneWrite() throws {
        let dir = TemporaryDirectory()
        let n = 9, t = 2, d = 3
        let values = (0..<(n * t * d)).map { Float($0) / 3 }
        let w = try ActivationWriter(path: dir.file("s.h5"), metadata: ActivationMetadata(run: "s", regime: "e2e", blockEnds: [1], probeSet: "p"))
        for depth in 0...1 {
            try w.createTokens(depth: depth, clips: n, tokens: t, features: d)
            for start in stride(from: 0, to: n, by: 4) {
                let end = min(n, start + 4)
                try w.writeTokens(depth: depth, firstClip: start, values: Array(values[(start * t * d)..<(end * t * d)]))
            }
        }
        try w.writeLabels("c", Array(repeating: 0, count: n))
        try w.commit()
        let f = try ActivationFile(path: dir.file("s.h5"))
        XCTAssertEqual(try f.tokens(depth: 1, clips: 0..<n), values)
    }

    func testClipBatchesCoverAllClipsAlignedToChunks() throws {
        let f = try ActivationFile(path: fixturePath("geometry.h5"))
        for budget in [1, 500, 8 * 12 * 8 * 7, 1 << 30] {
            let batches = f.clipBatches(maxBytes: budget)
            XCTAssertEqual(batches.first?.lowerBound, 0)
            XCTAssertEqual(batches.last?.upperBound, f.clipCount)
            XCTAssertTrue(zip(batches, batches.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
            XCTAssertTrue(batches.allSatisfy { $0.count * f.tokenCount * f.featureCount * 8 <= max(budget, f.tokenCount * f.featureCount * 8) })
        }
    }

    func testFloat16AndFloat64FilesReadTheSameValues() throws {
        let h = try ActivationFile(path: fixturePath("precision-f16.h5"))
        let d = try ActivationFile(path: fixturePath("precision-f64.h5"))
        XCTAssertEqual(h.tokenTypes, [.float16, .float16])
        XCTAssertEqual(d.tokenTypes, [.float64, .float64])
        for depth in 0...1 {
            let a = try h.tokens(depth: depth, clips: 0..<h.clipCount, as: Double.self)
            let b = try d.tokens(depth: depth, clips: 0..<d.clipCount, as: Double.self)
            XCTAssertEqual(a, b)
            XCTAssertTrue(a.allSatisfy { ($0 * 8).rounded() == $0 * 8 && abs($0) <= 4 })
            XCTAssertGreaterThan(Set(a).count, 40, "values must vary for the comparison to mean anything")
        }
    }

    /// Floats written to float16 tokens are rounded to nearest, ties to even (IEEE 754, as numpy's
    /// `astype(float16)`). HDF5 1.10.8's own conversion rounds ties up, clamps 65520 to 65504 and, inside
    /// long arrays, halves some values just below a power of two (0.4999115 to 0.25). Expected values
    /// worked out by hand from the binary16 format; the long array is checked against the rounding bound.
    func testFloat16TokensAreRoundedToNearest() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("half.h5")
        let cases: [(Float, Float)] = [
            (0.4999115, 0.5), (-0.24995826, -0.25), (0.2499509, 0.25), (0.9998339, 1), (-0.999784, -1),
            (0.49999997, 0.5), (1.9999999, 2),
            (0.1, 0.0999755859375),            // 0x2E66
            (1 + 1.0 / 2048, 1),               // halfway between 1 and 1 + 2^-10: ties to even (1)
            (1 + 3.0 / 2048, 1 + 2.0 / 1024),  // halfway between 1 + 2^-10 and 1 + 2^-9: ties to even
            (65519, 65504), (65520, .infinity), // the largest finite half, and the first value past it
            (3e-8, 5.9604645e-8), (2e-8, 0),    // the smallest subnormal (2^-24), and below half of it
            (-0.0, -0.0), (7, 7),
        ]
        let w = try ActivationWriter(path: path, metadata: meta)
        for depth in 0...2 {
            try w.writeTokens(depth: depth, values: cases.map(\.0), clips: 1, tokens: 1, features: cases.count, type: .float16)
        }
        try w.writeLabels("c", [0])
        try w.commit()
        let f = try ActivationFile(path: path)
        XCTAssertEqual(f.tokenTypes, [.float16, .float16, .float16])
        let read = try f.tokens(depth: 0, clips: 0..<1)
        for (k, (written, expected)) in cases.enumerated() {
            XCTAssertEqual(read[k], expected, "\(written)")
            XCTAssertEqual(read[k].sign, expected.sign, "\(written)")
        }
        // A long array of uniform values: each read back within half a float16 spacing of the value written.
        var rng = SeededGenerator(seed: 5)
        let many = (0..<100_000).map { _ in Float.random(in: -1..<1, using: &rng) }
        let pathMany = dir.file("half-many.h5")
        let wm = try ActivationWriter(path: pathMany, metadata: meta)
        for depth in 0...2 {
            try wm.writeTokens(depth: depth, values: many, clips: 100, tokens: 10, features: 100, type: .float16)
        }
        try wm.writeLabels("c", (0..<100).map { $0 % 2 })
        try wm.commit()
        let back = try ActivationFile(path: pathMany).tokens(depth: 1, clips: 0..<100)
        let outside = zip(many, back).filter { x, h in
            let spacing = abs(x) < 0x1p-14 ? Float(0x1p-24) : Float(sign: .plus, exponent: x.exponent - 10, significand: 1)
            return abs(h - x) > spacing / 2
        }
        XCTAssertTrue(outside.isEmpty, "\(outside.count) values off by more than half a float16 spacing, e.g. \(outside.prefix(3))")
        // The same rounding from float64 values.
        let path64 = dir.file("half64.h5")
        let w64 = try ActivationWriter(path: path64, metadata: meta)
        for depth in 0...2 {
            try w64.createTokens(depth: depth, clips: 1, tokens: 1, features: 2, type: .float16)
            try w64.writeTokens(depth: depth, firstClip: 0, values: [0.49999999999, 0.1] as [Double])
        }
        try w64.writeLabels("c", [0])
        try w64.commit()
        XCTAssertEqual(try ActivationFile(path: path64).tokens(depth: 0, clips: 0..<1), [0.5, 0.0999755859375])
    }

    func testChunksAreAtMostOneMebibyte() throws {
        XCTAssertEqual(ActivationWriter.chunkClips(tokens: 128, features: 384, type: .float32), 5)
        XCTAssertLessThanOrEqual(5 * 128 * 384 * 4, 1 << 20)
        XCTAssertGreaterThan(6 * 128 * 384 * 4, 1 << 20)
        let f = try ActivationFile(path: fixturePath("geometry.h5"))
        XCTAssertEqual(f.chunkClips, 96)
    }

    func testOutOfRangeRequestsAreClearErrors() throws {
        let f = try ActivationFile(path: fixturePath("geometry.h5"))
        XCTAssertThrowsError(try f.tokens(depth: 6, clips: 0..<1)) { e in
            XCTAssertEqual("\(e)", "\(fixturePath("geometry.h5")): /layers: depth 6 is out of range; this file holds depths 0...5")
        }
        XCTAssertThrowsError(try f.tokens(depth: 0, clips: 90..<97)) { e in
            XCTAssertTrue("\(e)".contains("/layers/00/tokens: clips 90..<97 outside 0..<96"), "\(e)")
        }
        XCTAssertThrowsError(try f.labels("colour")) { e in
            XCTAssertTrue("\(e)".hasSuffix("/labels/colour: no such target; known targets: planted, random"), "\(e)")
        }
        XCTAssertThrowsError(try f.attention(depth: 1)) { e in
            XCTAssertTrue("\(e)".contains("stores no attention"), "\(e)")
        }
    }
}
