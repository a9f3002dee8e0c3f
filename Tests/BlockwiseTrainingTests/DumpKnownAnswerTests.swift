@testable import BlockwiseTraining
import ActivationStore
import Foundation
import LinearAlgebra
import TestSupport
import XCTest

/// Known answers for the dump path: a hand-set one-layer model whose depth-0 tokens, depth-1 tokens
/// and attention maps are computed here from first principles (pixel indexing, the sin-cos formula,
/// LayerNorm and softmax written out in Double) and compared with what `dump` writes to the file.
///
/// The model: 1 frame pair of 8×8 single-channel pixels, tubelets 2×4×4 (T = 4 tokens on a 2×2 grid,
/// 32 values each), width D = 6 with 2 heads of 3.
/// - Embedding: W picks standardised patch value j, (x − 0.5)/0.25, into feature j (j < 6), plus a bias,
///   plus the fixed positions.
///   With 2 features per axis the sin-cos pair of each axis is (sin p, cos p) at ω = 1.
/// - Layer 1: LayerNorm with unit weight and zero bias; q = s·LN(x), k = LN(x), v = LN(x) (so head h's
///   scores are s·⟨LN(xᵢ)_h, LN(xⱼ)_h⟩/√3, different for every query); identity output projection;
///   the MLP's weights are zero, so its output is its second bias c (GELU(0) = 0).
///   Hence depth 1 = x₀ + (Σⱼ Aₕ[i,j] LN(xⱼ)_h over heads h) + c.
final class DumpKnownAnswerTests: XCTestCase {
    static let scoreScale = 2.5
    static let patchBias: [Double] = [0.1, -0.2, 0.3, 0, 0, 0.05]
    static let mlpBias: [Double] = [0.01, -0.02, 0.03, -0.04, 0.05, -0.06]

    func config() -> TrainingConfig {
        var c = TrainingConfig()
        c.frames = 2; c.height = 8; c.width = 8; c.channels = 1
        c.tubeletFrames = 2; c.patch = 4
        c.dim = 6; c.heads = 2; c.layers = 1; c.blocks = 1; c.mlpRatio = 4
        c.decoderDim = 4; c.decoderHeads = 1
        c.regime = .e2e
        c.run = "known-answer"
        c.inputMean = 0.5; c.inputStd = 0.25  // pixels enter the embedding as (x − 0.5)/0.25
        c.positionBase = 16  // with two features per axis only ω = 1 occurs, whatever the base
        return c
    }

    func handSetParameters(_ c: TrainingConfig) -> [Float] {
        let layout = ParameterLayout(c)
        var v = [Float](repeating: 0, count: layout.count)
        for j in 0..<c.dim { v[layout.patchW + j * c.dim + j] = 1 }  // [in, out]: patch value j → feature j
        for j in 0..<c.dim { v[layout.patchB + j] = Float(Self.patchBias[j]) }
        let o = layout.layers[0]
        for j in 0..<c.dim {
            v[o.ln1w + j] = 1; v[o.ln2w + j] = 1
            v[o.qkvw + j * 3 * c.dim + j] = Float(Self.scoreScale)     // q
            v[o.qkvw + j * 3 * c.dim + c.dim + j] = 1                 // k
            v[o.qkvw + j * 3 * c.dim + 2 * c.dim + j] = 1             // v
            v[o.projw + j * c.dim + j] = 1
            v[o.fc2b + j] = Float(Self.mlpBias[j])
        }
        return v
    }

    /// LayerNorm without affine, eps 1e-6, biased variance (the kernel's definition).
    func layerNorm(_ x: [Double]) -> [Double] {
        let mean = x.reduce(0, +) / Double(x.count)
        let variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count)
        return x.map { ($0 - mean) / (variance + 1e-6).squareRoot() }
    }

    func testDumpedTokensAndAttentionMatchHandComputation() throws {
        let c = config()
        let n = 5  // with batch 2: two full batches and a padded one
        var g = SeededGenerator(seed: 7)
        let pixels = (0..<(n * 2 * 8 * 8)).map { _ in Float(g.nextUniform()) }
        let clips = VideoClipSet(name: "known", count: n, frames: 2, height: 8, width: 8, channels: 1, pixels: pixels,
                                 labels: ["k": [0, 1, 0, 1, 0]], classCounts: ["k": 2])
        let model = try MaskedVideoModel(config: c, initialValues: handSetParameters(c))
        let dir = TemporaryDirectory()
        let path = dir.file("known.h5")
        try model.dump(clips, to: path, step: 3, curve: nil, attentionClips: 3, batch: 2)

        let file = try ActivationFile(path: path)
        XCTAssertEqual(file.tokenCount, 4)
        XCTAssertEqual(file.featureCount, 6)
        XCTAssertEqual(file.layerCount, 1)
        XCTAssertEqual(try file.labels("k"), [0, 1, 0, 1, 0])
        // Token centres: tubelet frames 0-1 → 0.5; cells rows/cols 0-3 and 4-7 → 1.5 and 5.5.
        XCTAssertEqual(try file.positions(), [0.5, 1.5, 1.5, 0.5, 1.5, 5.5, 0.5, 5.5, 1.5, 0.5, 5.5, 5.5])

        let depth0 = try file.tokens(depth: 0, clips: 0..<n, as: Double.self)
        let depth1 = try file.tokens(depth: 1, clips: 0..<n, as: Double.self)
        let attention = try file.attention(depth: 1)
        XCTAssertEqual(attention.count, 3 * 2 * 4 * 4)
        for clip in 0..<n {
            // Depth 0 by hand: token (gy, gx) takes pixels of frame 0, row gy·4 + j/4, column gx·4 + j%4 for
            // features j < 6 (the patch is ordered (frame, row, column) within the tubelet).
            var x0 = [[Double]]()
            for gy in 0..<2 {
                for gx in 0..<2 {
                    var row = [Double]()
                    for j in 0..<6 {
                        let pixel = (Double(pixels[clip * 128 + (gy * 4 + j / 4) * 8 + gx * 4 + j % 4]) - 0.5) / 0.25
                        let position = [0.0, 1.0, sin(Double(gy)), cos(Double(gy)), sin(Double(gx)), cos(Double(gx))][j]
                        row.append(pixel + Self.patchBias[j] + position)
                    }
                    x0.append(row)
                }
            }
            for t in 0..<4 {
                for j in 0..<6 {
                    XCTAssertEqual(depth0[(clip * 4 + t) * 6 + j], x0[t][j], accuracy: 1e-6, "depth 0 clip \(clip) token \(t) feature \(j)")
                }
            }
            // Depth 1 and attention by hand.
            let ln = x0.map(layerNorm)
            var mixed = [[Double]](repeating: [Double](repeating: 0, count: 6), count: 4)
            for h in 0..<2 {
                let cols = (h * 3)..<(h * 3 + 3)
                for i in 0..<4 {
                    let scores = (0..<4).map { jt in
                        cols.map { Self.scoreScale * ln[i][$0] * ln[jt][$0] }.reduce(0, +) / 3.0.squareRoot()
                    }
                    let top = scores.max()!
                    let e = scores.map { exp($0 - top) }
                    let a = e.map { $0 / e.reduce(0, +) }
                    XCTAssertEqual(a.reduce(0, +), 1, accuracy: 1e-12)
                    for jt in 0..<4 {
                        for col in cols { mixed[i][col] += a[jt] * ln[jt][col] }
                        if clip < 3 {
                            XCTAssertEqual(Double(attention[((clip * 2 + h) * 4 + i) * 4 + jt]), a[jt], accuracy: 1e-5,
                                           "attention clip \(clip) head \(h) query \(i) key \(jt)")
                        }
                    }
                }
            }
            for t in 0..<4 {
                for j in 0..<6 {
                    let expected = x0[t][j] + mixed[t][j] + Self.mlpBias[j]
                    XCTAssertEqual(depth1[(clip * 4 + t) * 6 + j], expected, accuracy: 1e-5, "depth 1 clip \(clip) token \(t) feature \(j)")
                }
            }
        }
        // The hand-set attention is far from uniform, so a transposed or misplaced map could not pass.
        XCTAssertGreaterThan(attention.max()!, 0.5)
        XCTAssertLessThan(attention.min()!, 0.1)
    }
}
