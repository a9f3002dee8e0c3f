import LinearAlgebra
import RepresentationMetrics
import XCTest

/// `combineSums` of every accumulator: parts fed disjoint rows (one of them none), combined as an MPI
/// allreduce combines them, equal one accumulator fed every row.
final class CombineSumsTests: XCTestCase {
    /// Combines the parts as an allreduce does: every array of sums becomes its sum over the parts.
    func combine<A>(_ parts: inout [A], _ call: (inout A, (UnsafeMutableBufferPointer<Double>) -> Void) throws -> Void) rethrows {
        var recorded: [[[Double]]] = []
        for i in parts.indices {
            var arrays: [[Double]] = []
            var copy = parts[i]
            try call(&copy) { arrays.append(Array($0)) }
            recorded.append(arrays)
        }
        for i in parts.indices {
            var c = 0
            try call(&parts[i]) { buffer in
                for j in buffer.indices { buffer[j] = recorded.reduce(0) { $0 + $1[c][j] } }
                c += 1
            }
        }
    }

    func random(_ rows: Int, _ cols: Int, seed: UInt64) -> Matrix<Double> {
        var g = SeededGenerator(seed: seed)
        return Matrix(rows: rows, cols: cols) { _, _ in g.nextGaussian() + 0.5 }
    }

    func relative(_ a: Double, _ b: Double) -> Double { abs(a - b) / max(abs(a), 1e-300) }

    func testLinearCKAParts() throws {
        let x = random(23, 5, seed: 1), y = random(23, 4, seed: 2)
        let pairs = [CKAPair(0, 1)]
        var whole = LinearCKAAccumulator(dimensions: [5, 4], pairs: pairs)
        try whole.add([x, y])
        let references = [Array(x.row(0)), Array(y.row(0))]
        var parts: [LinearCKAAccumulator] = []
        for r in [0..<10, 10..<10, 10..<23] {
            var p = LinearCKAAccumulator(dimensions: [5, 4], pairs: pairs, references: references)
            try p.add([x.rows(r), y.rows(r)])
            parts.append(p)
        }
        combine(&parts) { $0.combineSums($1) }
        for p in parts {
            XCTAssertEqual(p.count, 23)
            for e in [CKAEstimator.biased, .debiased] {
                XCTAssertLessThanOrEqual(relative(try whole.cka(pairs[0], estimator: e), try p.cka(pairs[0], estimator: e)), 1e-13)
            }
        }
    }

    func testMinibatchCKAPartsOfWholeMinibatches() throws {
        let x = random(23, 5, seed: 3), y = random(23, 4, seed: 4)
        let pairs = [CKAPair(0, 1)]
        var whole = try MinibatchCKAAccumulator(dimensions: [5, 4], pairs: pairs, batchSize: 4)
        try whole.add([x, y])
        var parts: [MinibatchCKAAccumulator] = []
        for r in [0..<8, 8..<8, 8..<23] {   // minibatches 0-1, none, 2-4 and the 3 rows left over
            var p = try MinibatchCKAAccumulator(dimensions: [5, 4], pairs: pairs, batchSize: 4)
            try p.add([x.rows(r), y.rows(r)])
            parts.append(p)
        }
        combine(&parts) { $0.combineSums($1) }
        for p in parts {
            XCTAssertEqual(p.batches, 5)
            XCTAssertEqual(p.droppedRows, 3)
            XCTAssertLessThanOrEqual(relative(try whole.cka(pairs[0]), try p.cka(pairs[0])), 1e-13)
        }
    }

    func testCovarianceParts() throws {
        let x = random(19, 6, seed: 5)
        var whole = CovarianceAccumulator(dimension: 6)
        try whole.add(x)
        var parts = try [0..<7, 7..<7, 7..<19].map { r -> CovarianceAccumulator in
            var p = CovarianceAccumulator(dimension: 6, reference: Array(x.row(0)))
            try p.add(x.rows(r))
            return p
        }
        combine(&parts) { $0.combineSums($1) }
        let expected = try whole.covariance()
        for p in parts {
            XCTAssertEqual(p.count, 19)
            let c = try p.covariance()
            for i in c.storage.indices { XCTAssertEqual(c.storage[i], expected.storage[i], accuracy: 1e-13 * abs(expected.storage[i]) + 1e-15) }
        }
    }

    func testTokenAccumulatorParts() throws {
        let (n, t, d) = (7, 5, 3)
        let a = random(n * t, d, seed: 6).storage.map { Float($0) }, b = random(n * t, d, seed: 7).storage.map { Float($0) }
        var patchWhole = PatchSimilarityAccumulator(), shiftWhole = TokenShiftAccumulator()
        try patchWhole.add(a, clips: n, tokens: t, features: d)
        try shiftWhole.add(from: a, to: b, clips: n, tokens: t, features: d)
        var patches: [PatchSimilarityAccumulator] = [], shifts: [TokenShiftAccumulator] = []
        for r in [0..<3, 3..<3, 3..<7] {
            let slice = Array(a[(r.lowerBound * t * d)..<(r.upperBound * t * d)]), next = Array(b[(r.lowerBound * t * d)..<(r.upperBound * t * d)])
            var p = PatchSimilarityAccumulator(), s = TokenShiftAccumulator()
            try p.add(slice, clips: r.count, tokens: t, features: d)
            try s.add(from: slice, to: next, clips: r.count, tokens: t, features: d)
            patches.append(p)
            shifts.append(s)
        }
        combine(&patches) { $0.combineSums($1) }
        combine(&shifts) { $0.combineSums($1) }
        for p in patches { XCTAssertLessThanOrEqual(relative(try patchWhole.value(), try p.value()), 1e-14) }
        for s in shifts {
            XCTAssertEqual(try s.result().tokens, n * t)
            XCTAssertLessThanOrEqual(relative(try shiftWhole.result().cosineDistance, try s.result().cosineDistance), 1e-14)
            XCTAssertLessThanOrEqual(relative(try shiftWhole.result().relativeChange, try s.result().relativeChange), 1e-14)
        }
    }

    func testAttentionParts() throws {
        let (n, h, t) = (5, 2, 4)
        var g = SeededGenerator(seed: 8)
        let positions = (0..<(t * 3)).map { _ in Float(g.nextUniform() * 30) }
        var a = [Float](repeating: 0, count: n * h * t * t)
        for row in 0..<(n * h * t) {
            let logits = (0..<t).map { _ in g.nextGaussian() }
            let z = logits.map { exp($0) }.reduce(0, +)
            for k in 0..<t { a[row * t + k] = Float(exp(logits[k]) / z) }
        }
        var whole = try AttentionDistanceAccumulator(positions: positions, tokens: t)
        try whole.add(attention: a, clips: n, heads: h)
        let perClip = h * t * t
        var parts = try [0..<2, 2..<2, 2..<5].map { r -> AttentionDistanceAccumulator in
            var p = try AttentionDistanceAccumulator(positions: positions, tokens: t)
            try p.add(attention: Array(a[(r.lowerBound * perClip)..<(r.upperBound * perClip)]), clips: r.count, heads: h)
            return p
        }
        try combine(&parts) { try $0.combineSums(heads: h, $1) }
        let expected = try whole.result()
        for p in parts {
            for (e, r) in zip(expected, try p.result()) {
                XCTAssertLessThanOrEqual(relative(e.spatialPixels, r.spatialPixels), 1e-14)
                XCTAssertLessThanOrEqual(relative(e.temporalFrames, r.temporalFrames), 1e-14)
                XCTAssertLessThanOrEqual(relative(e.entropy, r.entropy), 1e-14)
            }
        }
    }
}
