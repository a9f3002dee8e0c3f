import BlockwiseTraining
import LinearAlgebra
import XCTest

/// Every kernel's backward against central finite differences in Double, and the accumulation contract.
///
/// Each test draws inputs, parameters and an upstream gradient g, defines L = Σ g ⊙ forward(...), and
/// compares the analytic gradient of every input and parameter (backward into zeroed buffers) with central
/// differences of L (`centralDifferences`, tolerance in `assertClose`). It then calls the backward a second
/// time into the same buffers and requires exactly twice the values: the kernels accumulate (+=).
final class KernelGradientTests: XCTestCase {
    /// Calls `backward` twice into zeroed buffers of the given sizes; returns the first-call gradients after
    /// asserting that the second call exactly doubled them.
    private func accumulatedTwice(
        _ name: String, sizes: [Int], file: StaticString = #filePath, line: UInt = #line,
        _ backward: ([UnsafeMutablePointer<Double>]) -> Void
    ) -> [[Double]] {
        let buffers = sizes.map { UnsafeMutableBufferPointer<Double>.allocate(capacity: $0) }
        defer { buffers.forEach { $0.deallocate() } }
        for buffer in buffers { buffer.initialize(repeating: 0) }
        let pointers = buffers.map { $0.baseAddress! }
        backward(pointers)
        let once = buffers.map { Array($0) }
        backward(pointers)
        for (k, buffer) in buffers.enumerated() {
            XCTAssertEqual(Array(buffer), once[k].map { 2 * $0 }, "\(name): gradient \(k) is not accumulated",
                           file: file, line: line)
        }
        XCTAssertTrue(once.contains { maxAbs($0) > 0 }, "\(name): all gradients are zero", file: file, line: line)
        return once
    }

    // MARK: Linear

    private func checkLinear(withBias: Bool) {
        let rows = 4, inDim = 3, outDim = 5
        var rng = SeededGenerator(seed: withBias ? 11 : 12)
        let x = gaussians(rows * inDim, &rng)
        let w = gaussians(inDim * outDim, &rng)
        let b = gaussians(outDim, &rng)
        let g = gaussians(rows * outDim, &rng)

        func loss(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
            var out = [Double](repeating: .nan, count: rows * outDim)
            b.withUnsafeBufferPointer { bp in
                Kernels.linearForward(out: &out, inp: x, weight: w, bias: withBias ? bp.baseAddress : nil,
                                      rows: rows, inDim: inDim, outDim: outDim)
            }
            return innerProduct(g, out)
        }
        let name = withBias ? "linear" : "linear (no bias)"
        let grads = accumulatedTwice(name, sizes: [rows * inDim, inDim * outDim, outDim]) { grad in
            Kernels.linearBackward(dinp: grad[0], dweight: grad[1], dbias: withBias ? grad[2] : nil,
                                   dout: g, inp: x, weight: w, rows: rows, inDim: inDim, outDim: outDim)
        }
        assertClose("\(name) dinp", grads[0], centralDifferences(x) { loss($0, w, b) })
        assertClose("\(name) dweight", grads[1], centralDifferences(w) { loss(x, $0, b) })
        if withBias {
            assertClose("\(name) dbias", grads[2], centralDifferences(b) { loss(x, w, $0) })
        } else {
            XCTAssertEqual(grads[2], [Double](repeating: 0, count: outDim), "dbias is nil: nothing written")
        }

        // dinp = nil (first layer) still gives the same weight gradient.
        var dw = [Double](repeating: 0, count: inDim * outDim)
        Kernels.linearBackward(dinp: nil, dweight: &dw, dbias: nil, dout: g, inp: x, weight: w,
                               rows: rows, inDim: inDim, outDim: outDim)
        XCTAssertEqual(dw, grads[1])
    }

    func testLinearWithBias() { checkLinear(withBias: true) }
    func testLinearWithoutBias() { checkLinear(withBias: false) }

    // MARK: LayerNorm

    private func checkLayerNorm(weighted: Bool, biased: Bool) {
        let rows = 3, dim = 7
        var rng = SeededGenerator(seed: 21 + (weighted ? 1 : 0) + (biased ? 2 : 0))
        // Rows with a nonzero offset and unequal spreads, so mean and variance both matter.
        let x = gaussians(rows * dim, &rng).enumerated().map { $1 * Double(1 + $0 / dim) + 0.5 }
        let w = gaussians(dim, &rng).map { 1 + 0.5 * $0 }
        let b = gaussians(dim, &rng)
        let g = gaussians(rows * dim, &rng)

        func forward(_ x: [Double], _ w: [Double], _ b: [Double]) -> (out: [Double], mean: [Double], rstd: [Double]) {
            var out = [Double](repeating: .nan, count: rows * dim)
            var mean = [Double](repeating: .nan, count: rows), rstd = mean
            w.withUnsafeBufferPointer { wp in
                b.withUnsafeBufferPointer { bp in
                    Kernels.layerNormForward(out: &out, mean: &mean, rstd: &rstd, inp: x,
                                             weight: weighted ? wp.baseAddress : nil, bias: biased ? bp.baseAddress : nil,
                                             rows: rows, dim: dim)
                }
            }
            return (out, mean, rstd)
        }
        func loss(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double { innerProduct(g, forward(x, w, b).out) }
        let (_, mean, rstd) = forward(x, w, b)
        let name = "layernorm (weight \(weighted), bias \(biased))"
        let grads = accumulatedTwice(name, sizes: [rows * dim, dim, dim]) { grad in
            w.withUnsafeBufferPointer { wp in
                Kernels.layerNormBackward(dinp: grad[0], dweight: weighted ? grad[1] : nil,
                                          dbias: biased ? grad[2] : nil, dout: g, inp: x,
                                          weight: weighted ? wp.baseAddress : nil, mean: mean, rstd: rstd,
                                          rows: rows, dim: dim)
            }
        }
        assertClose("\(name) dinp", grads[0], centralDifferences(x) { loss($0, w, b) })
        if weighted { assertClose("\(name) dweight", grads[1], centralDifferences(w) { loss(x, $0, b) }) }
        if biased { assertClose("\(name) dbias", grads[2], centralDifferences(b) { loss(x, w, $0) }) }
    }

    func testLayerNormAffine() { checkLayerNorm(weighted: true, biased: true) }
    func testLayerNormWithoutAffine() { checkLayerNorm(weighted: false, biased: false) }
    func testLayerNormWeightOnly() { checkLayerNorm(weighted: true, biased: false) }

    // MARK: GELU

    func testGELU() {
        var rng = SeededGenerator(seed: 31)
        // Spread over [−4, 4] (both tails and the curved middle) plus 0 itself.
        let x = gaussians(40, &rng, scale: 2).map { min(4, max(-4, $0)) } + [0]
        let g = gaussians(x.count, &rng)
        func loss(_ x: [Double]) -> Double {
            var out = [Double](repeating: .nan, count: x.count)
            Kernels.geluForward(out: &out, inp: x, count: x.count)
            return innerProduct(g, out)
        }
        let grads = accumulatedTwice("gelu", sizes: [x.count]) { grad in
            Kernels.geluBackward(dinp: grad[0], inp: x, dout: g, count: x.count)
        }
        assertClose("gelu dinp", grads[0], centralDifferences(x, loss))
    }

    // MARK: Attention

    func testAttention() {
        let batch = 2, tokens = 5, heads = 2, headDim = 3
        let d = heads * headDim
        var rng = SeededGenerator(seed: 41)
        let qkv = gaussians(batch * tokens * 3 * d, &rng)
        let g = gaussians(batch * tokens * d, &rng)
        func forward(_ qkv: [Double]) -> (out: [Double], att: [Double]) {
            var out = [Double](repeating: .nan, count: batch * tokens * d)
            var att = [Double](repeating: .nan, count: batch * heads * tokens * tokens)
            Kernels.attentionForward(out: &out, att: &att, qkv: qkv, batch: batch, tokens: tokens, heads: heads,
                                     headDim: headDim)
            return (out, att)
        }
        let att = forward(qkv).att
        var datt = [Double](repeating: .nan, count: att.count)
        let grads = accumulatedTwice("attention", sizes: [qkv.count]) { grad in
            Kernels.attentionBackward(dqkv: grad[0], datt: &datt, dout: g, qkv: qkv, att: att,
                                      batch: batch, tokens: tokens, heads: heads, headDim: headDim)
        }
        assertClose("attention dqkv", grads[0], centralDifferences(qkv) { innerProduct(g, forward($0).out) })
    }

    // MARK: Residual

    func testResidual() {
        var rng = SeededGenerator(seed: 51)
        let a = gaussians(12, &rng), b = gaussians(12, &rng), g = gaussians(12, &rng)
        func loss(_ a: [Double], _ b: [Double]) -> Double {
            var out = [Double](repeating: .nan, count: a.count)
            Kernels.residualForward(out: &out, a: a, b: b, count: a.count)
            return innerProduct(g, out)
        }
        let grads = accumulatedTwice("residual", sizes: [a.count, b.count]) { grad in
            Kernels.residualBackward(da: grad[0], db: grad[1], dout: g, count: a.count)
        }
        assertClose("residual da", grads[0], centralDifferences(a) { loss($0, b) })
        assertClose("residual db", grads[1], centralDifferences(b) { loss(a, $0) })
    }

    // MARK: Masked MSE

    func testMaskedMSE() {
        let n = 6, dim = 4
        let rows: [Int32] = [4, 1, 3]   // a subset, out of order
        var rng = SeededGenerator(seed: 61)
        let pred = gaussians(n * dim, &rng), target = gaussians(n * dim, &rng)
        let g = 0.7   // upstream gradient of the scalar loss, passed as `scale`
        func loss(_ pred: [Double]) -> Double {
            g * Kernels.mseForward(pred: pred, target: target, rowIndices: rows, rowCount: rows.count, dim: dim)
        }
        let grads = accumulatedTwice("mse", sizes: [n * dim]) { grad in
            Kernels.mseBackward(dpred: grad[0], pred: pred, target: target, rowIndices: rows,
                                rowCount: rows.count, dim: dim, scale: g)
        }
        assertClose("mse dpred", grads[0], centralDifferences(pred, loss))
        for r in 0..<n where !rows.contains(Int32(r)) {
            XCTAssertEqual(Array(grads[0][r * dim..<(r + 1) * dim]), [0, 0, 0, 0], "row \(r) is not listed")
        }
    }
}
