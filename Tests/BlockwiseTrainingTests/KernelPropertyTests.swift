import BlockwiseTraining
import LinearAlgebra
import XCTest

/// The kernels' forwards against closed forms and naive loops, and the Float kernels against the Double ones.
final class KernelPropertyTests: XCTestCase {
    // MARK: GELU

    func testGELUClosedForms() {
        // Reference values of x·Φ(x) from Python's math.erf:
        // /usr/bin/python3 -c "import math; [print(repr(0.5*x*(1+math.erf(x/math.sqrt(2))))) for x in [-3.0,-1.0,-0.5,0.5,1.0,2.0,3.0]]"
        let x: [Double] = [-3, -1, -0.5, 0, 0.5, 1, 2, 3]
        let expected: [Double] = [-0.00404969409489031, -0.15865525393145707, -0.15426876936299344, 0,
                                  0.34573123063700656, 0.8413447460685429, 1.9544997361036416, 2.99595030590511]
        var out = [Double](repeating: .nan, count: x.count)
        Kernels.geluForward(out: &out, inp: x, count: x.count)
        XCTAssertEqual(out[3], 0, "GELU(0) = 0")
        // erf is good to a few ulps: 1e-15 relative.
        assertClose("gelu vs math.erf", out, expected, relative: 1e-15, absolute: 1e-300)
        // Not the tanh approximation, whose value at 1 is 0.8411919906082768 (1.5e-4 away).
        XCTAssertGreaterThan(abs(out[5] - 0.8411919906082768), 1e-4)

        // GELU(x) − GELU(−x) = x·Φ(x) + x·Φ(−x) = x, to rounding (a few ulps of max(|x|, 1)).
        var rng = SeededGenerator(seed: 101)
        let y = gaussians(50, &rng, scale: 3)
        var plus = [Double](repeating: .nan, count: y.count), minus = plus
        Kernels.geluForward(out: &plus, inp: y, count: y.count)
        Kernels.geluForward(out: &minus, inp: y.map { -$0 }, count: y.count)
        assertClose("gelu odd part", y.indices.map { plus[$0] - minus[$0] }, y, relative: 1e-15, absolute: 1e-15)

        // GELU'(0) = Φ(0) = 1/2; GELU'(x) + GELU'(−x) = 1 (the derivative of the identity above).
        var d0 = [0.0]
        Kernels.geluBackward(dinp: &d0, inp: [0], dout: [1], count: 1)
        XCTAssertEqual(d0[0], 0.5)
        var dPlus = [Double](repeating: 0, count: y.count), dMinus = dPlus
        let ones = [Double](repeating: 1, count: y.count)
        Kernels.geluBackward(dinp: &dPlus, inp: y, dout: ones, count: y.count)
        Kernels.geluBackward(dinp: &dMinus, inp: y.map { -$0 }, dout: ones, count: y.count)
        assertClose("gelu' even part", y.indices.map { dPlus[$0] + dMinus[$0] }, ones, relative: 1e-14, absolute: 0)
    }

    // MARK: LayerNorm

    func testLayerNormNormalisesRows() {
        let rows = 4, dim = 16
        var rng = SeededGenerator(seed: 111)
        let x = gaussians(rows * dim, &rng).enumerated().map { $1 * (0.5 + Double($0 / dim)) + 3 }
        let w = gaussians(dim, &rng), b = gaussians(dim, &rng)
        var out = [Double](repeating: .nan, count: rows * dim), mean = [Double](repeating: .nan, count: rows), rstd = mean
        Kernels.layerNormForward(out: &out, mean: &mean, rstd: &rstd, inp: x, weight: nil, bias: nil, rows: rows, dim: dim)
        var affine = out, mean2 = mean, rstd2 = rstd
        Kernels.layerNormForward(out: &affine, mean: &mean2, rstd: &rstd2, inp: x, weight: w, bias: b, rows: rows, dim: dim)
        let eps = 1e-6
        for r in 0..<rows {
            let row = Array(x[r * dim..<(r + 1) * dim])
            let mu = row.reduce(0, +) / Double(dim)
            let variance = row.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(dim)
            XCTAssertEqual(mean[r], mu, accuracy: 1e-14)
            XCTAssertEqual(rstd[r], 1 / (variance + eps).squareRoot(), accuracy: 1e-13 * rstd[r])
            let y = Array(out[r * dim..<(r + 1) * dim])
            let yMean = y.reduce(0, +) / Double(dim)
            let yVariance = y.map { $0 * $0 }.reduce(0, +) / Double(dim)
            // Rounding: O(dim · u) for sums of O(1) terms.
            XCTAssertEqual(yMean, 0, accuracy: 1e-14, "row \(r) mean")
            // Population variance σ²/(σ² + eps): 1 up to eps/σ² (< 1e-5 here).
            XCTAssertEqual(yVariance, variance / (variance + eps), accuracy: 1e-13, "row \(r) variance")
            XCTAssertEqual(yVariance, 1, accuracy: 1e-5)
            for j in 0..<dim {
                XCTAssertEqual(affine[r * dim + j], w[j] * y[j] + b[j], accuracy: 1e-14, "affine = w·x̂ + b")
            }
        }

        // A constant row normalises to 0 with rstd = 1/√eps = 1000: the default eps is VideoMAE's 1e-6.
        var flat = [Double](repeating: .nan, count: 8), m = [Double.nan], s = [Double.nan]
        Kernels.layerNormForward(out: &flat, mean: &m, rstd: &s, inp: [Double](repeating: 2.5, count: 8),
                                 weight: nil, bias: nil, rows: 1, dim: 8)
        XCTAssertEqual(flat, [Double](repeating: 0, count: 8))
        XCTAssertEqual(s[0], 1000, accuracy: 1e-9)
    }

    // MARK: Attention

    /// Attention by plain loops (the textbook definition), as an independent reference.
    private func naiveAttention(_ qkv: [Double], batch: Int, tokens t: Int, heads: Int, headDim: Int)
        -> (out: [Double], att: [Double]) {
        let d = heads * headDim
        var out = [Double](repeating: 0, count: batch * t * d)
        var att = [Double](repeating: 0, count: batch * heads * t * t)
        func at(_ b: Int, _ i: Int, _ part: Int, _ h: Int, _ c: Int) -> Double {
            qkv[(b * t + i) * 3 * d + part * d + h * headDim + c]
        }
        for b in 0..<batch {
            for h in 0..<heads {
                for i in 0..<t {
                    var scores = [Double](repeating: 0, count: t)
                    for j in 0..<t {
                        for c in 0..<headDim { scores[j] += at(b, i, 0, h, c) * at(b, j, 1, h, c) }
                        scores[j] /= Double(headDim).squareRoot()
                    }
                    let exps = scores.map { exp($0) }
                    let total = exps.reduce(0, +)
                    for j in 0..<t {
                        let p = exps[j] / total
                        att[((b * heads + h) * t + i) * t + j] = p
                        for c in 0..<headDim { out[(b * t + i) * d + h * headDim + c] += p * at(b, j, 2, h, c) }
                    }
                }
            }
        }
        return (out, att)
    }

    private func attention(_ qkv: [Double], batch: Int, tokens: Int, heads: Int, headDim: Int)
        -> (out: [Double], att: [Double]) {
        var out = [Double](repeating: .nan, count: batch * tokens * heads * headDim)
        var att = [Double](repeating: .nan, count: batch * heads * tokens * tokens)
        Kernels.attentionForward(out: &out, att: &att, qkv: qkv, batch: batch, tokens: tokens, heads: heads,
                                 headDim: headDim)
        return (out, att)
    }

    func testAttentionMatchesTextbookLoops() {
        let batch = 2, tokens = 5, heads = 2, headDim = 3
        var rng = SeededGenerator(seed: 121)
        let qkv = gaussians(batch * tokens * 3 * heads * headDim, &rng, scale: 1.5)
        let (out, att) = attention(qkv, batch: batch, tokens: tokens, heads: heads, headDim: headDim)
        let reference = naiveAttention(qkv, batch: batch, tokens: tokens, heads: heads, headDim: headDim)
        // Same math in another summation order: rounding only.
        assertClose("attention out", out, reference.out, relative: 1e-13, absolute: 1e-15)
        assertClose("attention probabilities", att, reference.att, relative: 1e-13, absolute: 1e-15)
        for row in 0..<(batch * heads * tokens) {
            XCTAssertEqual(att[row * tokens..<(row + 1) * tokens].reduce(0, +), 1, accuracy: 1e-15)
        }
    }

    /// Products above OpenBLAS's threading threshold (tokens² · headDim > 2¹⁸) take the other path: one
    /// (clip, head) pair per core with single-threaded BLAS. Same answer as the loops.
    func testLargeAttentionProductsMatchTextbookLoops() {
        let batch = 3, tokens = 80, heads = 2, headDim = 48
        XCTAssertGreaterThan(tokens * tokens * headDim, 1 << 18)
        let saved = ThreadSetting.count
        ThreadSetting.set(2)
        defer { ThreadSetting.set(saved) }
        var rng = SeededGenerator(seed: 122)
        let qkv = gaussians(batch * tokens * 3 * heads * headDim, &rng, scale: 0.3)
        let (out, att) = attention(qkv, batch: batch, tokens: tokens, heads: heads, headDim: headDim)
        let reference = naiveAttention(qkv, batch: batch, tokens: tokens, heads: heads, headDim: headDim)
        assertClose("attention out", out, reference.out, relative: 1e-12, absolute: 1e-14)
        assertClose("attention probabilities", att, reference.att, relative: 1e-12, absolute: 1e-14)
    }

    func testAttentionWithEqualScoresAveragesValues() {
        let batch = 2, tokens = 5, heads = 2, headDim = 3
        let d = heads * headDim
        var rng = SeededGenerator(seed: 131)
        var qkv = gaussians(batch * tokens * 3 * d, &rng)
        // Zero every query: all scores are 0, so P = 1/T and each output row is the mean of the head's V rows.
        for row in 0..<(batch * tokens) { for c in 0..<d { qkv[row * 3 * d + c] = 0 } }
        let (out, att) = attention(qkv, batch: batch, tokens: tokens, heads: heads, headDim: headDim)
        XCTAssertEqual(att, [Double](repeating: 1 / Double(tokens), count: att.count))
        for b in 0..<batch {
            for c in 0..<d {
                var mean = 0.0
                for j in 0..<tokens { mean += qkv[(b * tokens + j) * 3 * d + 2 * d + c] }
                mean /= Double(tokens)
                for i in 0..<tokens {
                    XCTAssertEqual(out[(b * tokens + i) * d + c], mean, accuracy: 1e-15, "clip \(b) token \(i) column \(c)")
                }
            }
        }
    }

    // MARK: Linear

    func testLinearMatchesNaiveLoop() {
        let rows = 7, inDim = 5, outDim = 4
        var rng = SeededGenerator(seed: 141)
        let x = gaussians(rows * inDim, &rng), w = gaussians(inDim * outDim, &rng), b = gaussians(outDim, &rng)
        var naive = [Double](repeating: 0, count: rows * outDim)
        for m in 0..<rows {
            for n in 0..<outDim {
                for k in 0..<inDim { naive[m * outDim + n] += x[m * inDim + k] * w[k * outDim + n] }
            }
        }
        var out = [Double](repeating: .nan, count: rows * outDim)
        Kernels.linearForward(out: &out, inp: x, weight: w, bias: nil, rows: rows, inDim: inDim, outDim: outDim)
        assertClose("linear (no bias) vs loop", out, naive, relative: 1e-14, absolute: 1e-15)
        Kernels.linearForward(out: &out, inp: x, weight: w, bias: b, rows: rows, inDim: inDim, outDim: outDim)
        let naiveBiased = naive.indices.map { naive[$0] + b[$0 % outDim] }
        assertClose("linear vs loop", out, naiveBiased, relative: 1e-14, absolute: 1e-15)
    }

    // MARK: Residual and MSE

    func testResidualAddsAndMSEAveragesListedRows() {
        var out = [Double](repeating: .nan, count: 3)
        Kernels.residualForward(out: &out, a: [1, 2, 3], b: [10, 20, 30], count: 3)
        XCTAssertEqual(out, [11, 22, 33])

        // Listed rows are off by exactly 2 (loss 4); unlisted rows are off by 100 and must not count.
        let n = 5, dim = 3
        let target = (0..<(n * dim)).map { Double($0) }
        let rows: [Int32] = [0, 3]
        let pred = target.indices.map { target[$0] + (rows.contains(Int32($0 / dim)) ? 2 : 100) }
        XCTAssertEqual(Kernels.mseForward(pred: pred, target: target, rowIndices: rows, rowCount: 2, dim: dim), 4)
        XCTAssertEqual(Kernels.mseForward(pred: pred, target: target, rowIndices: rows, rowCount: 0, dim: dim), 0)
        // d/dpred of mean((pred − target)²) = 2 · 2 / (2 rows · 3) on the listed rows.
        var dpred = [Double](repeating: 0, count: n * dim)
        Kernels.mseBackward(dpred: &dpred, pred: pred, target: target, rowIndices: rows, rowCount: 2, dim: dim)
        XCTAssertEqual(dpred, target.indices.map { rows.contains(Int32($0 / dim)) ? 4.0 / 6 : 0 })
    }

    // MARK: Float against Double

    /// ‖float − double‖∞ ≤ 1e-5 · ‖double‖∞ for every named tensor.
    ///
    /// Float's unit roundoff is 6e-8; the longest reductions here (64 terms) and the cancellations of the
    /// layernorm and softmax backwards cost ~√64 to 64 of them, well inside 1e-5 ≈ 170 u. A Float-path bug
    /// (a wrong constant, a lost term) is off by O(1).
    private func assertFloatMatchesDouble(
        _ name: String, _ float: [[Double]], _ double: [[Double]], file: StaticString = #filePath, line: UInt = #line
    ) {
        for k in double.indices {
            let scale = maxAbs(double[k])
            XCTAssertGreaterThan(scale, 0, "\(name) tensor \(k) is all zero", file: file, line: line)
            let error = maxAbs(zip(float[k], double[k]).map { $0 - $1 })
            XCTAssertLessThanOrEqual(error, 1e-5 * scale, "\(name) tensor \(k): max error \(error), scale \(scale)",
                                     file: file, line: line)
        }
    }

    private func widened<S: KernelScalar>(_ x: [S]) -> [Double] { x.map { Double($0) } }
    private func narrowed<S: KernelScalar>(_ x: [Double], to: S.Type) -> [S] { x.map { S($0) } }

    /// Runs forward and backward of every kernel in S on the same (Float-representable) inputs;
    /// returns, per kernel, its outputs and gradients widened to Double.
    private func runAllKernels<S: KernelScalar>(_: S.Type, seed: UInt64) -> [String: [[Double]]] {
        var rng = SeededGenerator(seed: seed)
        func draw(_ n: Int, scale: Double = 1) -> [S] {
            narrowed(floatRepresentable(gaussians(n, &rng, scale: scale)), to: S.self)
        }
        func zeros(_ n: Int) -> [S] { [S](repeating: 0, count: n) }
        var results: [String: [[Double]]] = [:]

        do {
            let rows = 32, inDim = 64, outDim = 48
            let x = draw(rows * inDim), w = draw(inDim * outDim, scale: 0.2), b = draw(outDim), g = draw(rows * outDim)
            var out = zeros(rows * outDim), dx = zeros(rows * inDim), dw = zeros(inDim * outDim), db = zeros(outDim)
            Kernels.linearForward(out: &out, inp: x, weight: w, bias: b, rows: rows, inDim: inDim, outDim: outDim)
            Kernels.linearBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: g, inp: x, weight: w,
                                   rows: rows, inDim: inDim, outDim: outDim)
            results["linear"] = [widened(out), widened(dx), widened(dw), widened(db)]
        }
        do {
            let rows = 32, dim = 48
            let x = draw(rows * dim, scale: 2), w = draw(dim), b = draw(dim), g = draw(rows * dim)
            var out = zeros(rows * dim), mean = zeros(rows), rstd = zeros(rows)
            var dx = zeros(rows * dim), dw = zeros(dim), db = zeros(dim)
            Kernels.layerNormForward(out: &out, mean: &mean, rstd: &rstd, inp: x, weight: w, bias: b, rows: rows, dim: dim)
            Kernels.layerNormBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: g, inp: x, weight: w,
                                      mean: mean, rstd: rstd, rows: rows, dim: dim)
            results["layernorm"] = [widened(out), widened(mean), widened(rstd), widened(dx), widened(dw), widened(db)]
        }
        do {
            let count = 1000
            let x = draw(count, scale: 2.5), g = draw(count)
            var out = zeros(count), dx = zeros(count)
            Kernels.geluForward(out: &out, inp: x, count: count)
            Kernels.geluBackward(dinp: &dx, inp: x, dout: g, count: count)
            results["gelu"] = [widened(out), widened(dx)]
        }
        do {
            let batch = 2, tokens = 16, heads = 3, headDim = 16
            let d = heads * headDim
            let qkv = draw(batch * tokens * 3 * d), g = draw(batch * tokens * d)
            var out = zeros(batch * tokens * d), att = zeros(batch * heads * tokens * tokens)
            var dqkv = zeros(qkv.count), datt = zeros(att.count)
            Kernels.attentionForward(out: &out, att: &att, qkv: qkv, batch: batch, tokens: tokens, heads: heads,
                                     headDim: headDim)
            Kernels.attentionBackward(dqkv: &dqkv, datt: &datt, dout: g, qkv: qkv, att: att,
                                      batch: batch, tokens: tokens, heads: heads, headDim: headDim)
            results["attention"] = [widened(out), widened(att), widened(dqkv)]
        }
        do {
            let count = 100
            let a = draw(count), b = draw(count), g = draw(count)
            var out = zeros(count), da = zeros(count), db = zeros(count)
            Kernels.residualForward(out: &out, a: a, b: b, count: count)
            Kernels.residualBackward(da: &da, db: &db, dout: g, count: count)
            results["residual"] = [widened(out), widened(da), widened(db)]
        }
        do {
            let n = 32, dim = 48
            let rows: [Int32] = (0..<20).map { Int32(($0 * 7) % n) }
            let pred = draw(n * dim), target = draw(n * dim)
            var dpred = zeros(n * dim)
            let loss = Kernels.mseForward(pred: pred, target: target, rowIndices: rows, rowCount: rows.count, dim: dim)
            Kernels.mseBackward(dpred: &dpred, pred: pred, target: target, rowIndices: rows, rowCount: rows.count,
                                dim: dim, scale: 0.5)
            results["mse"] = [[Double(loss)], widened(dpred)]
        }
        return results
    }

    func testFloatKernelsAgreeWithDouble() {
        let float = runAllKernels(Float.self, seed: 151)
        let double = runAllKernels(Double.self, seed: 151)
        XCTAssertEqual(float.keys.sorted(), ["attention", "gelu", "layernorm", "linear", "mse", "residual"])
        for name in double.keys.sorted() { assertFloatMatchesDouble(name, float[name]!, double[name]!) }
    }
}
