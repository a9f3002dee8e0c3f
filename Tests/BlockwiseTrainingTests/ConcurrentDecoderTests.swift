@testable import BlockwiseTraining
import LinearAlgebra
import XCTest

/// The simultaneous regime runs its K decoders concurrently (one per core, BLAS single-threaded, nested
/// parallel loops running their parts in order). Against the decoders run one after the other:
/// - the losses are identical (the forward of each decoder is the same computation);
/// - every parameter tensor's gradient agrees to float rounding, ≤ 1e-5 relative in norm (single- and
///   multi-threaded OpenBLAS split the gemm sums differently, so the last bits differ; a race or a lost
///   term would show as an error of order 1);
/// - two concurrent steps give bit-identical gradients (the work split does not depend on timing).
final class ConcurrentDecoderTests: XCTestCase {
    func testConcurrentDecodersGiveTheGradientsOfDecodersInOrder() throws {
        var c = try TrainingConfig.preset("default")
        c.regime = .simultaneous
        c.batchSize = 8
        c.dumpSteps = []
        let model = try MaskedVideoModel(config: c)
        let w = TrainingWorkspace(c, batch: c.batchSize)
        var g = SeededGenerator(seed: 3)
        let pixels = (0..<(c.batchSize * c.frames * c.height * c.width * c.channels)).map { _ in Float(g.nextUniform()) }
        func run(concurrent: Bool) -> (losses: [Float], grads: [Float]) {
            var rng = SeededGenerator(seed: 4)
            pixels.withUnsafeBufferPointer { model.load(w, pixels: $0.baseAddress!, rng: &rng) }
            model.grads.zero()
            MaskedVideoModel.concurrentDecoders = concurrent
            defer { MaskedVideoModel.concurrentDecoders = true }
            let losses = model.step(w)
            return (losses, model.grads.array)
        }
        let saved = ThreadSetting.count
        ThreadSetting.set(2)
        defer { ThreadSetting.set(saved) }
        let inOrder = run(concurrent: false), together = run(concurrent: true), togetherAgain = run(concurrent: true)
        XCTAssertEqual(inOrder.losses.count, c.blocks)
        XCTAssertTrue(inOrder.losses.allSatisfy(\.isFinite))
        XCTAssertEqual(together.losses, inOrder.losses)
        XCTAssertTrue(together.grads == togetherAgain.grads, "two concurrent steps differ")
        for t in model.layout.tensors {
            var difference = 0.0, norm = 0.0
            for i in t.offset..<(t.offset + t.count) {
                let a = Double(inOrder.grads[i]), b = Double(together.grads[i])
                difference += (a - b) * (a - b)
                norm += a * a
            }
            XCTAssertGreaterThan(norm, 0, t.name)
            let relative = (difference / max(norm, 1e-300)).squareRoot()
            XCTAssertLessThanOrEqual(relative, 1e-5, "\(t.name): relative difference \(relative)")
        }
    }
}
