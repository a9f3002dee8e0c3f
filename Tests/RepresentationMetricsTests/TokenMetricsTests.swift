import Foundation
import LinearAlgebra
import RepresentationMetrics
import XCTest

/// Patch similarity written the slow, literal way as an independent reference: layer norm with eps
/// 1e-12 and population variance, then L2 normalisation, then the mean dot product over all ordered pairs
/// i ≠ j, then the mean over clips.
private func naivePatchSimilarity(_ x: [Double], clips: Int, tokens t: Int, features d: Int) -> Double {
    var total = 0.0
    for c in 0..<clips {
        var z: [[Double]] = []
        for i in 0..<t {
            let v = Array(x[((c * t + i) * d)..<((c * t + i + 1) * d)])
            let mean = v.reduce(0, +) / Double(d)
            let variance = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d)
            let y = v.map { ($0 - mean) / (variance + 1e-12).squareRoot() }
            let norm = y.map { $0 * $0 }.reduce(0, +).squareRoot()
            z.append(y.map { $0 / norm })
        }
        var pairs = 0.0
        for i in 0..<t { for j in 0..<t where i != j { pairs += zip(z[i], z[j]).map { $0 * $1 }.reduce(0, +) } }
        total += pairs / Double(t * (t - 1))
    }
    return total / Double(clips)
}

private func gaussians(_ count: Int, seed: UInt64, offset: Double = 0) -> [Double] {
    var g = SeededGenerator(seed: seed)
    return (0..<count).map { _ in g.nextGaussian() + offset }
}

/// Rotates every coordinate plane (0,1), (2,3), ... of every D-vector by `theta`.
private func rotatePlanes(_ a: [Double], features d: Int, theta: Double) -> [Double] {
    precondition(d % 2 == 0)
    var b = a
    let c = cos(theta), s = sin(theta)
    for base in stride(from: 0, to: a.count, by: 2) {
        b[base] = c * a[base] - s * a[base + 1]
        b[base + 1] = s * a[base] + c * a[base + 1]
    }
    return b
}

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

final class PatchSimilarityTests: XCTestCase {
    func testIdenticalTokensGiveOne() throws {
        let x: [Double] = [1, 2, 3, 5, 8, 13]
        let y: [Double] = [-4, 0.5, 7, 7, 2, 1]
        // Clip 0: five copies of x; clip 1: five copies of y.
        let data = Array(repeating: x, count: 5).flatMap { $0 } + Array(repeating: y, count: 5).flatMap { $0 }
        var acc = PatchSimilarityAccumulator()
        try acc.add(data, clips: 2, tokens: 5, features: 6)
        // (‖5z‖² − 5)/20 = 1 up to a few roundings of ‖Σz‖² ≈ 25.
        XCTAssertEqual(try acc.value(), 1, accuracy: 1e-13)
        XCTAssertEqual(acc.clips, 2)
        XCTAssertEqual(acc.degenerateTokens, 0)
    }

    func testOppositeTokensGiveMinusOne() throws {
        // Layer norm is odd: LN(−x) = −LN(x), so the one pair has cosine −1.
        let x: [Double] = [0.3, -1.2, 4.0, 2.2, 0.0]
        let r = try patchSimilarity((x + x.map { -$0 }).map { Float($0) }, clips: 1, tokens: 2, features: 5)
        XCTAssertEqual(r.value, -1, accuracy: 1e-14)
    }

    func testHandComputedSmallCase() throws {
        // Centred tokens: t0 → (−1.5, −0.5, 0.5, 1.5), t1 → −t0, t2 → (0.5, −0.5, −0.5, 0.5) ⟂ both.
        // Ordered pairs: cos(t0,t1) = cos(t1,t0) = −1, the other four 0 → −2/6 = −1/3.
        let data: [Double] = [1, 2, 3, 4,  4, 3, 2, 1,  1, 0, 0, 1]
        var acc = PatchSimilarityAccumulator()
        try acc.add(data, clips: 1, tokens: 3, features: 4)
        XCTAssertEqual(try acc.value(), -1.0 / 3.0, accuracy: 1e-15)
        XCTAssertEqual(naivePatchSimilarity(data, clips: 1, tokens: 3, features: 4), -1.0 / 3.0, accuracy: 1e-12)

        // A T = 3, D = 4 case without structure, against the literal pair loop.
        let random: [Double] = [0.7, -1.1, 2.3, 0.05,  3.2, 3.1, -0.4, 1.0,  -2.0, 0.6, 0.6, 1.9]
        let got = try PatchSimilarityAccumulator.oneShot(random, clips: 1, tokens: 3, features: 4)
        XCTAssertEqual(got, naivePatchSimilarity(random, clips: 1, tokens: 3, features: 4), accuracy: 1e-12)
    }

    func testSumIdentityMatchesNaivePairLoopOnRandomData() throws {
        // Tokens with a shared component so the similarity is clearly non-zero, plus per-token offsets
        // that layer norm must remove.
        let (n, t, d) = (4, 16, 24)
        let shared = gaussians(n * d, seed: 7)
        let noise = gaussians(n * t * d, seed: 8)
        let offsets = gaussians(n * t, seed: 9, offset: 3)
        var data = [Double](repeating: 0, count: n * t * d)
        for c in 0..<n { for i in 0..<t { for k in 0..<d {
            data[(c * t + i) * d + k] = 0.8 * shared[c * d + k] + noise[(c * t + i) * d + k] + offsets[c * t + i]
        } } }
        let got = try PatchSimilarityAccumulator.oneShot(data, clips: n, tokens: t, features: d)
        let want = naivePatchSimilarity(data, clips: n, tokens: t, features: d)
        XCTAssertGreaterThan(want, 0.2)  // the data are not trivially dissimilar
        // Both are sums of O(T²) float64 terms of size ≤ 1; 1e-12 leaves ~10⁴ ulps of headroom.
        XCTAssertEqual(got, want, accuracy: 1e-12)
    }

    func testFloatAndDoubleInputAgree() throws {
        let data = gaussians(2 * 6 * 10, seed: 3).map { Float($0) }
        var f = PatchSimilarityAccumulator(), g = PatchSimilarityAccumulator()
        try f.add(data, clips: 2, tokens: 6, features: 10)
        try g.add(data.map { Double($0) }, clips: 2, tokens: 6, features: 10)
        XCTAssertEqual(try f.value(), try g.value())  // the same float64 operations on the same values
    }

    func testChunkedEqualsOneShotAndMergeAgrees() throws {
        let (n, t, d) = (7, 5, 6)
        let data = gaussians(n * t * d, seed: 11)
        var whole = PatchSimilarityAccumulator()
        try whole.add(data, clips: n, tokens: t, features: d)

        var chunked = PatchSimilarityAccumulator()
        for r in [0..<3, 3..<3, 3..<4, 4..<7] {
            try chunked.add(Array(data[(r.lowerBound * t * d)..<(r.upperBound * t * d)]), clips: r.count, tokens: t, features: d)
        }
        // Same clip values added in the same order: identical bits.
        XCTAssertEqual(try chunked.result(), try whole.result())

        var left = PatchSimilarityAccumulator(), right = PatchSimilarityAccumulator()
        try left.add(Array(data[0..<(3 * t * d)]), clips: 3, tokens: t, features: d)
        try right.add(Array(data[(3 * t * d)...]), clips: 4, tokens: t, features: d)
        left.merge(right)
        XCTAssertEqual(left.clips, n)
        // Merging re-associates one float64 sum of 7 terms in [−1, 1]: a few ulps.
        XCTAssertEqual(try left.value(), try whole.value(), accuracy: 1e-15)

        var empty = PatchSimilarityAccumulator()
        empty.merge(whole)
        XCTAssertEqual(try empty.result(), try whole.result())
    }

    func testZeroVarianceTokenIsZeroVectorAndCounted() throws {
        // Clip: x, x, and a constant token. Pairs (x, x) twice have cosine 1; the four pairs with the
        // constant token count as 0: 2/6 = 1/3. Float(0.1) repeated: its float64 mean is not exactly 0.1,
        // which must not turn it into a unit vector.
        let x: [Float] = [1, -2, 0.5]
        let c = Float(0.1)
        let r = try patchSimilarity(x + x + [c, c, c], clips: 1, tokens: 3, features: 3)
        XCTAssertEqual(r.value, 1.0 / 3.0, accuracy: 1e-15)
        XCTAssertEqual(r.degenerateTokens, 1)
        XCTAssertEqual(r.clips, 1)
    }

    func testUndefinedCases() throws {
        var acc = PatchSimilarityAccumulator()
        XCTAssertThrowsUndefined(try acc.value(), containing: ["no clips"])
        XCTAssertThrowsUndefined(try acc.add([Double](repeating: 1, count: 4), clips: 2, tokens: 1, features: 2),
                                 containing: ["at least 2 tokens"])
        XCTAssertThrowsUndefined(try acc.add([Double](repeating: 1, count: 5), clips: 1, tokens: 2, features: 2),
                                 containing: ["5 values"])
        var data = gaussians(2 * 3 * 4, seed: 1)
        try acc.add(data, clips: 2, tokens: 3, features: 4)
        let before = try acc.result()
        data[(1 * 3 + 2) * 4 + 1] = .nan
        XCTAssertThrowsUndefined(try acc.add(data, clips: 2, tokens: 3, features: 4),
                                 containing: ["clip 1", "token 2", "non-finite"])
        XCTAssertEqual(try acc.result(), before, "a failed add leaves the accumulator unchanged")
    }
}

extension PatchSimilarityAccumulator {
    static func oneShot(_ x: [Double], clips: Int, tokens: Int, features: Int) throws -> Double {
        var acc = PatchSimilarityAccumulator()
        try acc.add(x, clips: clips, tokens: tokens, features: features)
        return try acc.value()
    }
}

final class TokenShiftTests: XCTestCase {
    func testPlaneRotationGivesClosedForms() throws {
        // b = R(θ)·a with R rotating every plane (0,1), (2,3), ...: a·b = cos θ‖a‖², ‖b‖ = ‖a‖ and
        // ‖b − a‖² = (2 − 2cos θ)‖a‖², so 1 − cos = 1 − cos θ and ‖b − a‖/‖a‖ = 2 sin(θ/2) for every token.
        let (n, t, d) = (3, 5, 8)
        let a = gaussians(n * t * d, seed: 21)
        for theta in [0.7, 2.0] {
            let b = rotatePlanes(a, features: d, theta: theta)
            var acc = TokenShiftAccumulator()
            try acc.add(from: a, to: b, clips: n, tokens: t, features: d)
            let r = try acc.result()
            // A handful of roundings of O(1) quantities per token.
            XCTAssertEqual(r.cosineDistance, 1 - cos(theta), accuracy: 1e-14)
            XCTAssertEqual(r.relativeChange, 2 * sin(theta / 2), accuracy: 1e-14)
            XCTAssertEqual(r.tokens, n * t)
            XCTAssertEqual(r.zeroNormTokens, 0)
        }
    }

    func testSmallRotationKeepsRelativePrecision() throws {
        // θ = 1e-5: 1 − cos θ ≈ 5e-11. The literal 1 − a·b/(‖a‖‖b‖) loses ~1e-16/5e-11 ≈ 2e-6 relative;
        // the chord form loses ~ε/θ ≈ 2e-11 (b itself is rounded at that level).
        let (n, t, d) = (2, 4, 6)
        let a = gaussians(n * t * d, seed: 5)
        let theta = 1e-5
        let r = try TokenShiftAccumulator.oneShot(a, rotatePlanes(a, features: d, theta: theta), n, t, d)
        let want = 2 * pow(sin(theta / 2), 2)  // = 1 − cos θ without cancellation
        XCTAssertEqual(r.cosineDistance / want, 1, accuracy: 1e-9)
        XCTAssertEqual(r.relativeChange / (2 * sin(theta / 2)), 1, accuracy: 1e-9)
    }

    func testScalingAndNegation() throws {
        let (n, t, d) = (2, 3, 5)
        let a = gaussians(n * t * d, seed: 6)
        let scaled = try TokenShiftAccumulator.oneShot(a, a.map { 2.5 * $0 }, n, t, d)
        XCTAssertEqual(scaled.cosineDistance, 0, accuracy: 1e-15)
        XCTAssertEqual(scaled.relativeChange, 1.5, accuracy: 1e-14)
        let flipped = try TokenShiftAccumulator.oneShot(a, a.map { -$0 }, n, t, d)
        XCTAssertEqual(flipped.cosineDistance, 2, accuracy: 1e-14)
        XCTAssertEqual(flipped.relativeChange, 2, accuracy: 1e-14)
    }

    func testRandomAgainstLiteralFormula() throws {
        let (n, t, d) = (3, 7, 9)
        let a = gaussians(n * t * d, seed: 31), b = gaussians(n * t * d, seed: 32, offset: 0.5)
        var cosSum = 0.0, relSum = 0.0
        for i in 0..<(n * t) {
            let u = a[(i * d)..<((i + 1) * d)], v = b[(i * d)..<((i + 1) * d)]
            let dot = zip(u, v).map { $0 * $1 }.reduce(0, +)
            let nu = u.map { $0 * $0 }.reduce(0, +).squareRoot(), nv = v.map { $0 * $0 }.reduce(0, +).squareRoot()
            cosSum += 1 - dot / (nu * nv)
            relSum += zip(u, v).map { ($1 - $0) * ($1 - $0) }.reduce(0, +).squareRoot() / nu
        }
        let r = try TokenShiftAccumulator.oneShot(a, b, n, t, d)
        // Cosines of random vectors are O(0.3), far from the cancellation regime: 1e-13 is generous.
        XCTAssertEqual(r.cosineDistance, cosSum / Double(n * t), accuracy: 1e-13)
        XCTAssertEqual(r.relativeChange, relSum / Double(n * t), accuracy: 1e-13)
    }

    func testZeroNormTokensAreExcludedAndCounted() throws {
        let (n, t, d) = (2, 3, 4)
        var a = gaussians(n * t * d, seed: 41)
        var b = rotatePlanes(a, features: d, theta: 0.5)
        for k in 0..<d { a[(1 * t + 2) * d + k] = 0; b[(1 * t + 2) * d + k] = Double(k) + 1 }  // ‖a‖ = 0
        for k in 0..<d { b[(0 * t + 1) * d + k] = 0 }                                          // ‖b‖ = 0
        let r = try TokenShiftAccumulator.oneShot(a, b, n, t, d)
        XCTAssertEqual(r.tokens, 6)
        XCTAssertEqual(r.zeroNormTokens, 2)
        // The remaining four tokens are exact rotations, so the means are unchanged by the exclusions.
        XCTAssertEqual(r.cosineDistance, 1 - cos(0.5), accuracy: 1e-14)
        XCTAssertEqual(r.relativeChange, 2 * sin(0.25), accuracy: 1e-14)
    }

    func testUndefinedCases() throws {
        XCTAssertThrowsUndefined(try TokenShiftAccumulator().result(), containing: ["no tokens"])
        let zeros = [Double](repeating: 0, count: 12)
        XCTAssertThrowsUndefined(try TokenShiftAccumulator.oneShot(zeros, gaussians(12, seed: 1), 1, 3, 4),
                                 containing: ["all 3 tokens"])
        var acc = TokenShiftAccumulator()
        XCTAssertThrowsUndefined(try acc.add(from: zeros, to: [Double](repeating: 1, count: 8), clips: 1, tokens: 3, features: 4),
                                 containing: ["8 values"])
        var b = gaussians(12, seed: 2)
        b[9] = .infinity
        XCTAssertThrowsUndefined(try acc.add(from: gaussians(12, seed: 3), to: b, clips: 1, tokens: 3, features: 4),
                                 containing: ["clip 0", "token 2", "feature 1"])
        XCTAssertEqual(acc.tokens, 0, "a failed add leaves the accumulator unchanged")
    }

    func testChunkedEqualsOneShotAndMergeAgrees() throws {
        let (n, t, d) = (5, 4, 6)
        let a = gaussians(n * t * d, seed: 51), b = gaussians(n * t * d, seed: 52)
        let whole = try TokenShiftAccumulator.oneShot(a, b, n, t, d)
        var chunked = TokenShiftAccumulator()
        var parts: [TokenShiftAccumulator] = []
        for r in [0..<2, 2..<2, 2..<5] {
            let s = (r.lowerBound * t * d)..<(r.upperBound * t * d)
            try chunked.add(from: Array(a[s]), to: Array(b[s]), clips: r.count, tokens: t, features: d)
            var part = TokenShiftAccumulator()
            try part.add(from: Array(a[s]), to: Array(b[s]), clips: r.count, tokens: t, features: d)
            parts.append(part)
        }
        XCTAssertEqual(try chunked.result(), whole)  // same additions in the same order: identical bits
        var merged = parts[0]
        merged.merge(parts[1])
        merged.merge(parts[2])
        let m = try merged.result()
        XCTAssertEqual(m.tokens, n * t)
        // Merging re-associates two float64 sums of 20 terms of size ≤ 2: a few ulps.
        XCTAssertEqual(m.cosineDistance, whole.cosineDistance, accuracy: 1e-15)
        XCTAssertEqual(m.relativeChange, whole.relativeChange, accuracy: 1e-15)
    }

    func testFloatInputMatchesDoubleInput() throws {
        let (n, t, d) = (2, 3, 4)
        let a = gaussians(n * t * d, seed: 61).map { Float($0) }, b = gaussians(n * t * d, seed: 62).map { Float($0) }
        let viaFloat = try tokenShift(from: a, to: b, clips: n, tokens: t, features: d)
        let viaDouble = try TokenShiftAccumulator.oneShot(a.map { Double($0) }, b.map { Double($0) }, n, t, d)
        XCTAssertEqual(viaFloat, viaDouble)  // the same float64 operations on the same values
    }
}

extension TokenShiftAccumulator {
    static func oneShot(_ a: [Double], _ b: [Double], _ clips: Int, _ tokens: Int, _ features: Int) throws -> TokenShift {
        var acc = TokenShiftAccumulator()
        try acc.add(from: a, to: b, clips: clips, tokens: tokens, features: features)
        return try acc.result()
    }
}

/// The accumulators run four tokens at a time in SIMD lanes; every lane must do the one-token arithmetic
/// in the same order. Against the one-token loops written out here (the accumulators' convention, term
/// by term), the sums agree to the bit, on token counts with a remainder after the groups of four and
/// with constant, zero-norm and float64-overflowing tokens inside groups (which go one token at a time).
final class FourTokenLaneTests: XCTestCase {
    func onePatch(_ x: [Double], clips n: Int, tokens t: Int, features d: Int) -> (sum: Double, degenerate: Int) {
        var sum = 0.0, degenerate = 0
        for c in 0..<n {
            var total = [Double](repeating: 0, count: d)
            var unit = 0
            for i in 0..<t {
                let v = Array(x[((c * t + i) * d)..<((c * t + i + 1) * d)])
                if v.allSatisfy({ $0 == v[0] }) { degenerate += 1; continue }
                var s = 0.0
                for k in 0..<d { s += v[k] }
                let mean = s / Double(d)
                var ss = 0.0
                let centred = v.map { $0 - mean }
                for k in 0..<d { ss += centred[k] * centred[k] }
                let inv = 1 / ss.squareRoot()
                for k in 0..<d { total[k] += centred[k] * inv }
                unit += 1
            }
            var norm2 = 0.0
            for k in 0..<d { norm2 += total[k] * total[k] }
            sum += (norm2 - Double(unit)) / Double(t * (t - 1))
        }
        return (sum, degenerate)
    }

    func oneShift(_ a: [Double], _ b: [Double], count: Int, features d: Int) -> (cosine: Double, relative: Double, zero: Int) {
        var cosine = 0.0, relative = 0.0, zero = 0
        for i in 0..<count {
            var aa = 0.0, bb = 0.0, diff = 0.0
            for k in 0..<d {
                let x = a[i * d + k], y = b[i * d + k]
                aa += x * x
                bb += y * y
                diff += (y - x) * (y - x)
            }
            guard aa > 0, bb > 0 else { zero += 1; continue }
            let na = aa.squareRoot(), nb = bb.squareRoot()
            var chord = 0.0
            for k in 0..<d {
                let e = a[i * d + k] / na - b[i * d + k] / nb
                chord += e * e
            }
            cosine += chord / 2
            relative += diff.squareRoot() / na
        }
        return (cosine, relative, zero)
    }

    func testLanesGiveTheOneTokenSumsToTheBit() throws {
        var rng = SeededGenerator(seed: 44)
        for (n, t, d) in [(3, 11, 7), (2, 8, 5), (1, 3, 9)] {
            var x = (0..<(n * t * d)).map { _ in Double(Float.random(in: -2..<2, using: &rng)) }
            var y = (0..<(n * t * d)).map { _ in Double(Float.random(in: -2..<2, using: &rng)) }
            // Token 1 of clip 0 constant (and zero at the later depth); token 5 zero at the earlier depth.
            for k in 0..<d { x[d + k] = 0.5; y[d + k] = 0 }
            if t > 5 { for k in 0..<d { x[5 * d + k] = 0 } }
            let wantPatch = onePatch(x, clips: n, tokens: t, features: d)
            var p = PatchSimilarityAccumulator()
            try p.add(x, clips: n, tokens: t, features: d)
            var pf = PatchSimilarityAccumulator()
            try pf.add(x.map { Float($0) }, clips: n, tokens: t, features: d)
            XCTAssertEqual(try p.value(), wantPatch.sum / Double(n), "\(n)x\(t)x\(d)")
            XCTAssertEqual(try p.value(), try pf.value(), "float32 input widens exactly")
            XCTAssertEqual(p.degenerateTokens, wantPatch.degenerate)
            let wantShift = oneShift(x, y, count: n * t, features: d)
            var s = TokenShiftAccumulator()
            try s.add(from: x, to: y, clips: n, tokens: t, features: d)
            let got = try s.result()
            let used = Double(n * t - wantShift.zero)
            XCTAssertEqual(got.zeroNormTokens, wantShift.zero)
            XCTAssertEqual(got.cosineDistance, wantShift.cosine / used, "\(n)x\(t)x\(d)")
            XCTAssertEqual(got.relativeChange, wantShift.relative / used)
        }
        // float64 values whose squares overflow: the group goes one token at a time, where the
        // literal loop's result is kept, not an error. Unchanged tokens: the relative change is
        // 0 / ∞ = 0 for the overflowing token and 0 for the others, a finite value both ways.
        let d = 3, t = 4
        var big = [Double](repeating: 1, count: t * d)
        big[0] = 1e200
        var s = TokenShiftAccumulator()
        try s.add(from: big, to: big, clips: 1, tokens: t, features: d)
        XCTAssertEqual(oneShift(big, big, count: t, features: d).relative, 0)
        XCTAssertEqual(try s.result().relativeChange, 0)
        XCTAssertEqual(try s.result().zeroNormTokens, 0)
        // Doubled tokens: in the literal loop the overflowing token's relative change is ∞/∞ = NaN (so
        // the sum is NaN), while its cosine distance is finite (each component over an infinite norm is
        // 0): the accumulator gives both, rather than throwing or dropping the token.
        var doubled = TokenShiftAccumulator()
        try doubled.add(from: big, to: big.map { $0 * 2 }, clips: 1, tokens: t, features: d)
        let want = oneShift(big, big.map { $0 * 2 }, count: t, features: d)
        XCTAssertTrue(want.relative.isNaN)
        XCTAssertTrue(want.cosine.isFinite)
        XCTAssertTrue(try doubled.result().relativeChange.isNaN)
        XCTAssertEqual(try doubled.result().cosineDistance, want.cosine / Double(t))
        XCTAssertEqual(try doubled.result().zeroNormTokens, want.zero)
    }
}
