import ActivationStore
import Foundation

/// Buffers to run the encoder on every token of unmasked clips.
final class EncoderWorkspace {
    let batch: Int
    let patches: Buffer
    let x: [Buffer]
    let layers: [LayerCache]

    init(_ c: TrainingConfig, batch: Int) {
        self.batch = batch
        let rt = batch * c.tokens
        patches = Buffer(rt * c.patchDim)
        x = (0...c.layers).map { _ in Buffer(rt * c.dim) }
        layers = (0..<c.layers).map { _ in LayerCache(batch: batch, tokens: c.tokens, dim: c.dim, heads: c.heads, hidden: c.dim * c.mlpRatio) }
    }
}

extension MaskedVideoModel {
    /// Runs the encoder on `count` ≤ batch unmasked clips; afterwards `w.x[d]` holds depth d's tokens
    /// [count, T, D] (depth 0 = embedding output, d = output of layer d before the final LayerNorm) and
    /// each layer cache's `att` holds its softmax attention [count, H, T, T].
    func encodeUnmasked(_ w: EncoderWorkspace, pixels: UnsafePointer<Float>, count: Int) {
        let c = config, p = params.p
        let clipSize = c.frames * c.height * c.width * c.channels
        let tp = c.tokens * c.patchDim
        for b in 0..<count { tokens.patchify(pixels + b * clipSize, into: w.patches.p + b * tp) }
        tokens.standardizeInputs(w.patches.p, count: count * tp)
        // Pad a short last batch with zeros; its rows are computed but never written.
        if count < w.batch { (w.patches.p + count * tp).update(repeating: 0, count: (w.batch - count) * tp) }
        let rt = w.batch * c.tokens
        Kernels.linearForward(out: w.x[0].p, inp: w.patches.p, weight: p + layout.patchW, bias: p + layout.patchB,
                              rows: rt, inDim: c.patchDim, outDim: c.dim)
        for b in 0..<w.batch {
            accumulate(w.x[0].p + b * c.tokens * c.dim, encoderPositions.p, c.tokens * c.dim)
        }
        for l in 0..<c.layers {
            TransformerLayer.forward(layout.layers[l], params: p, cache: w.layers[l], input: w.x[l].p, output: w.x[l + 1].p)
        }
    }

    /// Writes one bwact/1 file of the encoder's activations on `clips` (unmasked).
    ///
    /// - Parameters:
    ///   - step: training step of the current weights.
    ///   - curve: local losses logged so far.
    public func dump(_ clips: VideoClipSet, to path: String, step: Int, curve: TrainingCurve?, attentionClips: Int,
                     batch: Int = 32) throws {
        let c = config
        let w = EncoderWorkspace(c, batch: batch)
        let meta = ActivationMetadata(run: c.run, regime: c.regime.rawValue, blockEnds: c.blockEnds, probeSet: clips.name,
                                      step: step, seed: Int(c.seed), config: c.json)
        let writer = try ActivationWriter(path: path, metadata: meta)
        for d in 0...c.layers { try writer.createTokens(depth: d, clips: clips.count, tokens: c.tokens, features: c.dim) }
        let m = min(attentionClips, clips.count)
        var attention = (0..<c.layers).map { _ in [Float]() }
        let clipSize = c.frames * c.height * c.width * c.channels
        try clips.pixels.withUnsafeBufferPointer { px in
            var start = 0
            while start < clips.count {
                let n = min(batch, clips.count - start)
                encodeUnmasked(w, pixels: px.baseAddress! + start * clipSize, count: n)
                for d in 0...c.layers {
                    try writer.writeTokens(depth: d, firstClip: start,
                                           values: Array(UnsafeBufferPointer(start: w.x[d].p, count: n * c.tokens * c.dim)))
                }
                if start < m {
                    let take = min(n, m - start)
                    for l in 0..<c.layers {
                        attention[l] += UnsafeBufferPointer(start: w.layers[l].att.p, count: take * c.heads * c.tokens * c.tokens)
                    }
                }
                start += n
            }
        }
        if m > 0 {
            for l in 0..<c.layers {
                try writer.writeAttention(depth: l + 1, values: attention[l], clips: m, heads: c.heads, tokens: c.tokens)
            }
        }
        try writer.writePositions(tokens.positions)
        for (target, values) in clips.labels.sorted(by: { $0.key < $1.key }) { try writer.writeLabels(target, values) }
        if let curve, !curve.steps.isEmpty { try writer.writeTrainingCurve(curve) }
        try writer.commit()
    }
}
