import Foundation
import LinearAlgebra
import RepresentationMetrics
import XCTest

/// 8 tokens = 2 time slots (frame centres 0.5 and 2.5) × 2×2 patches of 16 px (row/col centres 7.5, 23.5).
/// Token index = slot·4 + row·2 + col, so q ^ 4 is the same patch in the other slot, q ^ 1 the horizontal
/// neighbour, q ^ 2 the vertical one and q ^ 3 the diagonal one.
private let gridTokens = 8
private let gridPositions: [Float] = (0..<8).flatMap { q -> [Float] in
    let slot = q / 4, row = (q / 2) % 2, col = q % 2
    return [0.5 + 2 * Float(slot), 7.5 + 16 * Float(row), 7.5 + 16 * Float(col)]
}

/// One 8×8 attention map whose row q is `row(q)` (a dictionary key → weight).
private func map(_ row: (Int) -> [Int: Float]) -> [Float] {
    var a = [Float](repeating: 0, count: 64)
    for q in 0..<8 { for (k, w) in row(q) { a[q * 8 + k] += w } }
    return a
}

private let identity = map { q in [q: 1] }
private let uniform = map { _ in Dictionary(uniqueKeysWithValues: (0..<8).map { ($0, Float(0.125)) }) }
private let otherSlot = map { q in [q ^ 4: 1] }
private let horizontalNeighbour = map { q in [q ^ 1: 1] }
private let halfSelfHalfDiagonal = map { q in [q: 0.5, q ^ 3: 0.5] }
private let uniformSameSlot = map { q in Dictionary(uniqueKeysWithValues: (0..<4).map { ((q / 4) * 4 + $0, Float(0.25)) }) }

private func XCTAssertThrowsUndefined<T>(_ expression: @autoclosure () throws -> T, containing parts: [String] = [],
                                         file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try expression(), file: file, line: line) { error in
        guard let undefined = error as? MetricUndefined else {
            return XCTFail("expected MetricUndefined, got \(error)", file: file, line: line)
        }
        for part in parts {
            XCTAssertTrue(undefined.reason.contains(part), "reason '\(undefined.reason)' lacks '\(part)'", file: file, line: line)
        }
    }
}

final class AttentionMetricsTests: XCTestCase {
    private let s2 = 2.0.squareRoot()

    /// Checks one single-head, single-clip pattern against its closed form. All weights and positions are
    /// exact binary fractions, so only the final float64 roundings remain: 1e-12 is loose.
    private func check(_ a: [Float], spatial: Double, temporal: Double, entropy: Double,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try attentionDistance(a, clips: 1, heads: 1, positions: gridPositions, tokens: gridTokens)
        XCTAssertEqual(r.count, 1, file: file, line: line)
        XCTAssertEqual(r[0].spatialPixels, spatial, accuracy: 1e-12, "spatial", file: file, line: line)
        XCTAssertEqual(r[0].temporalFrames, temporal, accuracy: 1e-12, "temporal", file: file, line: line)
        XCTAssertEqual(r[0].entropy, entropy, accuracy: 1e-12, "entropy", file: file, line: line)
        XCTAssertEqual(r[0].queries, 8, file: file, line: line)
    }

    func testClosedFormsOnTheGrid() throws {
        try check(identity, spatial: 0, temporal: 0, entropy: 0)
        // From any query: the same patch in both slots (0, 0), the two edge neighbours in both slots
        // (16 ×4) and the diagonal one in both slots (16√2 ×2); temporal: 4 keys at 0, 4 at 2.
        try check(uniform, spatial: (64 + 32 * s2) / 8, temporal: 1, entropy: log(8))
        XCTAssertEqual((64 + 32 * s2) / 8, 13.6569, accuracy: 1e-4)
        try check(otherSlot, spatial: 0, temporal: 2, entropy: 0)
        try check(horizontalNeighbour, spatial: 16, temporal: 0, entropy: 0)
        try check(halfSelfHalfDiagonal, spatial: 8 * s2, temporal: 0, entropy: log(2))
        try check(uniformSameSlot, spatial: (0 + 16 + 16 + 16 * s2) / 4, temporal: 0, entropy: log(4))
    }

    func testUniformBaselinesForOrientation() throws {
        let r = try attentionDistance(identity, clips: 1, heads: 1, positions: gridPositions, tokens: gridTokens)
        XCTAssertEqual(r[0].uniformEntropy, log(8), accuracy: 1e-15)
        XCTAssertEqual(r[0].uniformSpatialPixels, (64 + 32 * s2) / 8, accuracy: 1e-12)
        XCTAssertEqual(r[0].uniformTemporalFrames, 1, accuracy: 1e-15)
    }

    func testHeadsAndClipsAreAveragedSeparately() throws {
        // [clips 2, heads 3]: head 0 sees identity then other-slot, head 1 horizontal then uniform,
        // head 2 uniform-same-slot twice. Each head's value is the mean of its two clips.
        let a = identity + horizontalNeighbour + uniformSameSlot + otherSlot + uniform + uniformSameSlot
        let r = try attentionDistance(a, clips: 2, heads: 3, positions: gridPositions, tokens: gridTokens)
        XCTAssertEqual(r.map(\.head), [0, 1, 2])
        XCTAssertEqual(r.map(\.queries), [16, 16, 16])
        XCTAssertEqual(r[0].spatialPixels, 0, accuracy: 1e-12)
        XCTAssertEqual(r[0].temporalFrames, 1, accuracy: 1e-12)
        XCTAssertEqual(r[0].entropy, 0, accuracy: 1e-12)
        XCTAssertEqual(r[1].spatialPixels, (16 + (64 + 32 * s2) / 8) / 2, accuracy: 1e-12)
        XCTAssertEqual(r[1].temporalFrames, 0.5, accuracy: 1e-12)
        XCTAssertEqual(r[1].entropy, log(8) / 2, accuracy: 1e-12)
        XCTAssertEqual(r[2].spatialPixels, (32 + 16 * s2) / 4, accuracy: 1e-12)
        XCTAssertEqual(r[2].temporalFrames, 0, accuracy: 1e-12)
        XCTAssertEqual(r[2].entropy, log(4), accuracy: 1e-12)
    }

    func testRandomSoftmaxAgainstLiteralLoops() throws {
        // Irregular positions and random softmax rows, against the definition written as plain loops.
        let (n, h, t) = (3, 2, 6)
        var g = SeededGenerator(seed: 77)
        let positions = (0..<(t * 3)).map { _ in Float(g.nextUniform() * 40) }
        var a = [Float](repeating: 0, count: n * h * t * t)
        for row in 0..<(n * h * t) {
            let logits = (0..<t).map { _ in 2 * g.nextGaussian() }
            let z = logits.map { exp($0) }.reduce(0, +)
            for k in 0..<t { a[row * t + k] = Float(exp(logits[k]) / z) }
        }
        let r = try attentionDistance(a, clips: n, heads: h, positions: positions, tokens: t)
        for head in 0..<h {
            var sp = 0.0, tm = 0.0, en = 0.0
            for c in 0..<n { for q in 0..<t { for k in 0..<t {
                let w = Double(a[((c * h + head) * t + q) * t + k])
                let p = positions.map { Double($0) }
                let dr = p[3 * q + 1] - p[3 * k + 1], dc = p[3 * q + 2] - p[3 * k + 2]
                sp += w * (dr * dr + dc * dc).squareRoot()
                tm += w * abs(p[3 * q] - p[3 * k])
                if w > 0 { en -= w * log(w) }
            } } }
            let queries = Double(n * t)
            // Sums of 108 products of size ≤ 60: 1e-12 absolute is a few hundred ulps of headroom.
            XCTAssertEqual(r[head].spatialPixels, sp / queries, accuracy: 1e-12)
            XCTAssertEqual(r[head].temporalFrames, tm / queries, accuracy: 1e-12)
            XCTAssertEqual(r[head].entropy, en / queries, accuracy: 1e-12)
            XCTAssertGreaterThan(r[head].entropy, 0.1)
        }
    }

    func testChunkedAndMergedEqualOneShot() throws {
        let a = identity + uniform + otherSlot + halfSelfHalfDiagonal + uniformSameSlot + horizontalNeighbour
        let whole = try attentionDistance(a, clips: 3, heads: 2, positions: gridPositions, tokens: gridTokens)
        var chunked = try AttentionDistanceAccumulator(positions: gridPositions, tokens: gridTokens)
        var merged = chunked
        for r in [0..<1, 1..<1, 1..<3] {
            let part = Array(a[(r.lowerBound * 128)..<(r.upperBound * 128)])
            try chunked.add(attention: part, clips: r.count, heads: 2)
            var other = try AttentionDistanceAccumulator(positions: gridPositions, tokens: gridTokens)
            try other.add(attention: part, clips: r.count, heads: 2)
            try merged.merge(other)
        }
        XCTAssertEqual(chunked.clips, 3)
        XCTAssertEqual(merged.clips, 3)
        // Re-association of three float64 sums of O(10) values: 1e-12 is loose.
        for (x, y) in Array(zip(try chunked.result(), whole)) + Array(zip(try merged.result(), whole)) {
            XCTAssertEqual(x.queries, y.queries)
            XCTAssertEqual(x.spatialPixels, y.spatialPixels, accuracy: 1e-12)
            XCTAssertEqual(x.temporalFrames, y.temporalFrames, accuracy: 1e-12)
            XCTAssertEqual(x.entropy, y.entropy, accuracy: 1e-12)
        }
    }

    func testChunksLargerThanOneConversionBlock() throws {
        // The paper's token grid (2 slots × 8×8 patches of 16 px, T = 128) with 8 heads: the accumulator
        // converts at most about 2²⁰ values per gemm, i.e. 8 clips, so 17 clips take blocks of 8, 8 and 1.
        // One-hot rows at key (q + c + h) mod T; each clip added alone must give the same sums.
        let (n, h, t) = (17, 8, 128)
        var positions: [Float] = []
        for q in 0..<t {
            let slot = Float(q / 64), row = Float((q % 64) / 8), col = Float(q % 8)
            positions += [0.5 + 2 * slot, 7.5 + 16 * row, 7.5 + 16 * col]
        }
        var a = [Float](repeating: 0, count: n * h * t * t)
        for c in 0..<n { for head in 0..<h { for q in 0..<t { a[((c * h + head) * t + q) * t + (q + c + head) % t] = 1 } } }
        let whole = try attentionDistance(a, clips: n, heads: h, positions: positions, tokens: t)
        var single = try AttentionDistanceAccumulator(positions: positions, tokens: t)
        for c in 0..<n {
            try single.add(attention: Array(a[(c * h * t * t)..<((c + 1) * h * t * t)]), clips: 1, heads: h)
        }
        for (x, y) in zip(try single.result(), whole) {
            XCTAssertEqual(x.queries, n * t)
            XCTAssertGreaterThan(y.spatialPixels, 10)
            XCTAssertEqual(x.spatialPixels, y.spatialPixels, accuracy: 1e-12)
            XCTAssertEqual(x.temporalFrames, y.temporalFrames, accuracy: 1e-12)
            XCTAssertEqual(y.entropy, 0)
        }
    }

    func testRowsThatAreNotDistributionsAreRejected() throws {
        var acc = try AttentionDistanceAccumulator(positions: gridPositions, tokens: gridTokens)
        try acc.add(attention: identity, clips: 1, heads: 1)
        let before = try acc.result()

        // Clip 1, head 1, query 3 sums to 0.9.
        var a = identity + identity + identity + identity
        a[(1 * 2 + 1) * 64 + 3 * 8 + 3] = 0.9
        XCTAssertThrowsUndefined(try acc.add(attention: a, clips: 2, heads: 2), containing: ["2 heads", "earlier"])
        XCTAssertThrowsUndefined(try attentionDistance(a, clips: 2, heads: 2, positions: gridPositions, tokens: gridTokens),
                                 containing: ["clip 1", "head 1", "query 3", "sums to"])

        // A negative entry, even in a row that sums to 1.
        var b = uniform
        b[5 * 8 + 0] = -0.125
        b[5 * 8 + 1] = 0.375
        XCTAssertThrowsUndefined(try acc.add(attention: b, clips: 1, heads: 1), containing: ["clip 0", "head 0", "query 5"])

        var c = uniform
        c[2] = .nan
        XCTAssertThrowsUndefined(try acc.add(attention: c, clips: 1, heads: 1), containing: ["query 0", "nan"])
        XCTAssertEqual(try acc.result(), before, "failed adds leave the accumulator unchanged")

        // Within the 1e-3 tolerance: accepted, and used as given (not renormalised).
        var d = identity
        d[0] = 1.0005
        try acc.add(attention: d, clips: 1, heads: 1)
        XCTAssertEqual(acc.clips, 2)
    }

    func testShapeErrors() throws {
        XCTAssertThrowsUndefined(try AttentionDistanceAccumulator(positions: [0, 1, 2, 3], tokens: 2), containing: ["[2, 3]"])
        XCTAssertThrowsUndefined(try AttentionDistanceAccumulator(positions: [0, .infinity, 2], tokens: 1), containing: ["token 0"])
        var acc = try AttentionDistanceAccumulator(positions: gridPositions, tokens: gridTokens)
        XCTAssertThrowsUndefined(try acc.result(), containing: ["no clips"])
        XCTAssertThrowsUndefined(try acc.add(attention: identity, clips: 2, heads: 1), containing: ["64 values"])
        try acc.add(attention: identity, clips: 1, heads: 1)
        let moved = gridPositions.enumerated().map { $0.offset == 0 ? Float(9) : $0.element }
        var other = try AttentionDistanceAccumulator(positions: moved, tokens: gridTokens)
        try other.add(attention: identity, clips: 1, heads: 1)
        XCTAssertThrowsUndefined(try acc.merge(other), containing: ["positions"])
        var twoHeads = try AttentionDistanceAccumulator(positions: gridPositions, tokens: gridTokens)
        try twoHeads.add(attention: identity + identity, clips: 1, heads: 2)
        XCTAssertThrowsUndefined(try acc.merge(twoHeads), containing: ["heads"])
    }
}
