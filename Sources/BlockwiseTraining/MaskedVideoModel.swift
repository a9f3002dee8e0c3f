import LinearAlgebra

/// The VideoMAE-style model: tubelet embedding + fixed 3D sin-cos positions, L pre-LN layers, a final
/// LayerNorm, and one decoder per local loss. Parameters and gradients live in two flat buffers.
///
/// Per decoder: LN → linear (no bias) to the decoder width → visible tokens scattered into the full
/// token grid with a learned mask token elsewhere → + decoder positions → decoder layers → LN and a
/// linear head on the masked tokens only → MSE against the (normalised) masked patches.
public final class MaskedVideoModel {
    /// Whether the simultaneous regime runs its K decoders concurrently (the default); false runs them
    /// in order, for tests that compare the two.
    nonisolated(unsafe) public static var concurrentDecoders = true

    public let config: TrainingConfig
    public let layout: ParameterLayout
    public let params: Buffer
    public let grads: Buffer
    let tokens: VideoTokens
    let encoderPositions: Buffer
    let decoderPositions: Buffer

    public init(config: TrainingConfig, initialValues: [Float]? = nil) throws {
        try config.validate()
        self.config = config
        layout = ParameterLayout(config)
        tokens = VideoTokens(config)
        let values = initialValues ?? layout.initialValues(seed: config.seed)
        guard values.count == layout.count else {
            throw TrainingError("parameter vector has \(values.count) values, the model needs \(layout.count)")
        }
        params = Buffer(values)
        grads = Buffer(layout.count)
        encoderPositions = Buffer(tokens.positionEmbedding(dim: config.dim))
        decoderPositions = Buffer(tokens.positionEmbedding(dim: config.decoderDim))
    }

    /// A replica for one part of a batch: `other`'s parameters (the same buffer, so one optimizer
    /// update serves both) with gradients of its own.
    init(sharingParametersWith other: MaskedVideoModel) {
        config = other.config
        layout = other.layout
        tokens = other.tokens
        params = other.params
        grads = Buffer(other.layout.count)
        encoderPositions = other.encoderPositions
        decoderPositions = other.decoderPositions
    }

    public var parameterCount: Int { layout.count }
}

/// Buffers of one training batch: caches for the encoder on visible tokens and for each decoder.
final class TrainingWorkspace {
    let batch: Int
    let visible: Int, masked: Int
    /// Patches [B, T, P] and normalised targets of the masked tokens [B·M, P].
    let patches: Buffer, targets: Buffer
    let patchesVisible: Buffer
    /// Residual stream at every depth 0…L on visible tokens [B·V, D], and the final LN output.
    let x: [Buffer]
    let xn: Buffer, xnMean: Buffer, xnRstd: Buffer
    let layers: [LayerCache]
    let dx: [Buffer]
    let dxn: Buffer
    let sink: Buffer
    let encoderScratch: LayerScratch
    let decoders: [DecoderWorkspace]
    var visibleIndex: [[Int]] = []
    var maskedIndex: [[Int]] = []

    init(_ c: TrainingConfig, batch: Int) {
        self.batch = batch
        visible = c.visibleTokens
        masked = c.tokens - c.visibleTokens
        let rv = batch * visible
        patches = Buffer(batch * c.tokens * c.patchDim)
        targets = Buffer(batch * masked * c.patchDim)
        patchesVisible = Buffer(rv * c.patchDim)
        x = (0...c.layers).map { _ in Buffer(rv * c.dim) }
        xn = Buffer(rv * c.dim); xnMean = Buffer(rv); xnRstd = Buffer(rv)
        layers = (0..<c.layers).map { _ in LayerCache(batch: batch, tokens: c.visibleTokens, dim: c.dim, heads: c.heads, hidden: c.dim * c.mlpRatio) }
        dx = (0...c.layers).map { _ in Buffer(rv * c.dim) }
        dxn = Buffer(rv * c.dim)
        sink = Buffer(rv * c.dim)
        encoderScratch = LayerScratch(rows: rv, dim: c.dim, hidden: c.dim * c.mlpRatio,
                                      attention: batch * c.heads * c.visibleTokens * c.visibleTokens)
        decoders = (0..<c.decoders).map { _ in DecoderWorkspace(c, batch: batch) }
    }
}

/// Buffers of one decoder for a batch.
final class DecoderWorkspace {
    let u: Buffer, uMean: Buffer, uRstd: Buffer, e: Buffer
    let z: [Buffer]
    let layers: [LayerCache]
    let scratch: LayerScratch
    let zm: Buffer, zn: Buffer, znMean: Buffer, znRstd: Buffer, pred: Buffer
    let dpred: Buffer, dzn: Buffer, dzm: Buffer, dz: [Buffer], de: Buffer, du: Buffer

    init(_ c: TrainingConfig, batch: Int) {
        let rv = batch * c.visibleTokens, rt = batch * c.tokens, rm = batch * (c.tokens - c.visibleTokens)
        let dd = c.decoderDim
        u = Buffer(rv * c.dim); uMean = Buffer(rv); uRstd = Buffer(rv); e = Buffer(rv * dd)
        z = (0...c.decoderDepth).map { _ in Buffer(rt * dd) }
        layers = (0..<c.decoderDepth).map { _ in LayerCache(batch: batch, tokens: c.tokens, dim: dd, heads: c.decoderHeads, hidden: dd * c.mlpRatio) }
        scratch = LayerScratch(rows: rt, dim: dd, hidden: dd * c.mlpRatio, attention: batch * c.decoderHeads * c.tokens * c.tokens)
        zm = Buffer(rm * dd); zn = Buffer(rm * dd); znMean = Buffer(rm); znRstd = Buffer(rm); pred = Buffer(rm * c.patchDim)
        dpred = Buffer(rm * c.patchDim); dzn = Buffer(rm * dd); dzm = Buffer(rm * dd)
        dz = (0...c.decoderDepth).map { _ in Buffer(rt * dd) }
        de = Buffer(rv * dd); du = Buffer(rv * c.dim)
    }
}

extension MaskedVideoModel {
    /// Prepares patches, targets and masks of a batch of clips ([B, F, H, W, C] pixels).
    ///
    /// `skippingClips`: masks drawn first and dropped, for clips that precede this batch in a larger
    /// one (a rank's share of a data-parallel batch gets the masks its clips get in one process).
    func load(_ w: TrainingWorkspace, pixels: UnsafePointer<Float>, rng: inout SeededGenerator, skippingClips: Int = 0) {
        let c = config
        for _ in 0..<skippingClips { _ = tokens.tubeMask(&rng) }
        let clipSize = c.frames * c.height * c.width * c.channels
        let tp = c.tokens * c.patchDim
        w.visibleIndex = []
        w.maskedIndex = []
        for b in 0..<w.batch {
            tokens.patchify(pixels + b * clipSize, into: w.patches.p + b * tp)
            let (vis, mask) = tokens.tubeMask(&rng)
            w.visibleIndex.append(vis)
            w.maskedIndex.append(mask)
            for (i, n) in vis.enumerated() {
                (w.patchesVisible.p + (b * w.visible + i) * c.patchDim).update(from: w.patches.p + b * tp + n * c.patchDim, count: c.patchDim)
            }
            for (i, n) in mask.enumerated() {
                (w.targets.p + (b * w.masked + i) * c.patchDim).update(from: w.patches.p + b * tp + n * c.patchDim, count: c.patchDim)
            }
        }
        if c.normalizeTargets { tokens.normalizeTargets(w.targets.p, tokens: w.batch * w.masked) }
        tokens.standardizeInputs(w.patchesVisible.p, count: w.batch * w.visible * c.patchDim)
    }

    /// Encoder forward on the visible tokens up to layer `upTo` (L by default), then the final LN if reached.
    func encoderForward(_ w: TrainingWorkspace, upTo: Int? = nil) {
        let c = config, p = params.p, last = upTo ?? c.layers
        let rv = w.batch * w.visible
        Kernels.linearForward(out: w.x[0].p, inp: w.patchesVisible.p, weight: p + layout.patchW, bias: p + layout.patchB,
                              rows: rv, inDim: c.patchDim, outDim: c.dim)
        for b in 0..<w.batch {
            for (i, n) in w.visibleIndex[b].enumerated() {
                accumulate(w.x[0].p + (b * w.visible + i) * c.dim, encoderPositions.p + n * c.dim, c.dim)
            }
        }
        for l in 0..<last {
            TransformerLayer.forward(layout.layers[l], params: p, cache: w.layers[l], input: w.x[l].p, output: w.x[l + 1].p)
        }
        if last == c.layers {
            Kernels.layerNormForward(out: w.xn.p, mean: w.xnMean.p, rstd: w.xnRstd.p, inp: w.x[c.layers].p,
                                     weight: p + layout.normW, bias: p + layout.normB, rows: rv, dim: c.dim)
        }
    }

    /// The input of decoder k: the output of its block (after the final LN for the last block).
    func decoderInput(_ w: TrainingWorkspace, decoder k: Int) -> (x: Buffer, dx: Buffer) {
        let c = config
        if c.regime == .e2e || k == c.blocks - 1 { return (w.xn, w.dxn) }
        let end = c.blockEnds[k]
        return (w.x[end], w.dx[end])
    }

    /// Decoder k forward; returns its loss (mean squared error over masked tokens and patch values).
    func decoderForward(_ w: TrainingWorkspace, decoder k: Int) -> Float {
        let c = config, p = params.p, o = layout.decoders[k], dw = w.decoders[k]
        let rv = w.batch * w.visible, dd = c.decoderDim
        let input = decoderInput(w, decoder: k).x
        Kernels.layerNormForward(out: dw.u.p, mean: dw.uMean.p, rstd: dw.uRstd.p, inp: input.p,
                                 weight: p + o.inNormW, bias: p + o.inNormB, rows: rv, dim: c.dim)
        Kernels.linearForward(out: dw.e.p, inp: dw.u.p, weight: p + o.embedW, bias: nil, rows: rv, inDim: c.dim, outDim: dd)
        let z0 = dw.z[0].p
        for b in 0..<w.batch {
            for (i, n) in w.visibleIndex[b].enumerated() {
                (z0 + (b * c.tokens + n) * dd).update(from: dw.e.p + (b * w.visible + i) * dd, count: dd)
            }
            for n in w.maskedIndex[b] { (z0 + (b * c.tokens + n) * dd).update(from: p + o.maskToken, count: dd) }
            for n in 0..<c.tokens { accumulate(z0 + (b * c.tokens + n) * dd, decoderPositions.p + n * dd, dd) }
        }
        for l in 0..<c.decoderDepth {
            TransformerLayer.forward(o.layers[l], params: p, cache: dw.layers[l], input: dw.z[l].p, output: dw.z[l + 1].p)
        }
        let top = dw.z[c.decoderDepth].p
        for b in 0..<w.batch {
            for (i, n) in w.maskedIndex[b].enumerated() {
                (dw.zm.p + (b * w.masked + i) * dd).update(from: top + (b * c.tokens + n) * dd, count: dd)
            }
        }
        let rm = w.batch * w.masked
        Kernels.layerNormForward(out: dw.zn.p, mean: dw.znMean.p, rstd: dw.znRstd.p, inp: dw.zm.p,
                                 weight: p + o.normW, bias: p + o.normB, rows: rm, dim: dd)
        Kernels.linearForward(out: dw.pred.p, inp: dw.zn.p, weight: p + o.headW, bias: p + o.headB, rows: rm, inDim: dd, outDim: c.patchDim)
        var loss = 0.0
        let n = rm * c.patchDim
        for i in 0..<n { let d = Double(dw.pred.p[i] - w.targets.p[i]); loss += d * d }
        return Float(loss / Double(n))
    }

    /// Decoder k backward for its loss (times `scale`); accumulates into the decoder's parameter
    /// gradients and into the gradient of its input (the block output).
    func decoderBackward(_ w: TrainingWorkspace, decoder k: Int, scale: Float = 1) {
        let c = config, p = params.p, g = grads.p, o = layout.decoders[k], dw = w.decoders[k]
        let rv = w.batch * w.visible, rm = w.batch * w.masked, rt = w.batch * c.tokens, dd = c.decoderDim
        let n = rm * c.patchDim
        let factor = 2 * scale / Float(n)
        for i in 0..<n { dw.dpred.p[i] = factor * (dw.pred.p[i] - w.targets.p[i]) }
        dw.dzn.zero(rm * dd)
        Kernels.linearBackward(dinp: dw.dzn.p, dweight: g + o.headW, dbias: g + o.headB, dout: dw.dpred.p, inp: dw.zn.p,
                               weight: p + o.headW, rows: rm, inDim: dd, outDim: c.patchDim)
        dw.dzm.zero(rm * dd)
        Kernels.layerNormBackward(dinp: dw.dzm.p, dweight: g + o.normW, dbias: g + o.normB, dout: dw.dzn.p, inp: dw.zm.p,
                                  weight: p + o.normW, mean: dw.znMean.p, rstd: dw.znRstd.p, rows: rm, dim: dd)
        for buf in dw.dz { buf.zero(rt * dd) }
        let top = dw.dz[c.decoderDepth].p
        for b in 0..<w.batch {
            for (i, t) in w.maskedIndex[b].enumerated() {
                accumulate(top + (b * c.tokens + t) * dd, dw.dzm.p + (b * w.masked + i) * dd, dd)
            }
        }
        for l in stride(from: c.decoderDepth - 1, through: 0, by: -1) {
            TransformerLayer.backward(o.layers[l], params: p, grads: g, cache: dw.layers[l], scratch: dw.scratch,
                                      input: dw.z[l].p, doutput: dw.dz[l + 1].p, dinput: dw.dz[l].p)
        }
        let dz0 = dw.dz[0].p
        for b in 0..<w.batch {
            for (i, t) in w.visibleIndex[b].enumerated() {
                (dw.de.p + (b * w.visible + i) * dd).update(from: dz0 + (b * c.tokens + t) * dd, count: dd)
            }
            for t in w.maskedIndex[b] { accumulate(g + o.maskToken, dz0 + (b * c.tokens + t) * dd, dd) }
        }
        dw.du.zero(rv * c.dim)
        Kernels.linearBackward(dinp: dw.du.p, dweight: g + o.embedW, dbias: nil, dout: dw.de.p, inp: dw.u.p,
                               weight: p + o.embedW, rows: rv, inDim: c.dim, outDim: dd)
        let input = decoderInput(w, decoder: k)
        Kernels.layerNormBackward(dinp: input.dx.p, dweight: g + o.inNormW, dbias: g + o.inNormB, dout: dw.du.p, inp: input.x.p,
                                  weight: p + o.inNormW, mean: dw.uMean.p, rstd: dw.uRstd.p, rows: rv, dim: c.dim)
    }

    /// Encoder backward from the gradients already in `dxn`/`dx[·]`, for layers `from...to` (1-based,
    /// descending). Gradients are not sent below layer `to`'s input when `stopBelow` is true (the block
    /// boundary's stop-gradient); the embedding receives gradients when `to == 1` and `stopBelow` is false.
    func encoderBackward(_ w: TrainingWorkspace, layers range: ClosedRange<Int>, stopBelow: Bool, includeFinalNorm: Bool) {
        let c = config, p = params.p, g = grads.p, rv = w.batch * w.visible
        if includeFinalNorm {
            Kernels.layerNormBackward(dinp: w.dx[c.layers].p, dweight: g + layout.normW, dbias: g + layout.normB, dout: w.dxn.p,
                                      inp: w.x[c.layers].p, weight: p + layout.normW, mean: w.xnMean.p, rstd: w.xnRstd.p,
                                      rows: rv, dim: c.dim)
        }
        for l in stride(from: range.upperBound, through: range.lowerBound, by: -1) {
            let below = (l == range.lowerBound && stopBelow) ? w.sink : w.dx[l - 1]
            if below === w.sink { w.sink.zero(rv * c.dim) }
            TransformerLayer.backward(layout.layers[l - 1], params: p, grads: g, cache: w.layers[l - 1], scratch: w.encoderScratch,
                                      input: w.x[l - 1].p, doutput: w.dx[l].p, dinput: below.p)
        }
        if range.lowerBound == 1 && !stopBelow {
            Kernels.linearBackward(dinp: nil, dweight: g + layout.patchW, dbias: g + layout.patchB, dout: w.dx[0].p,
                                   inp: w.patchesVisible.p, weight: p + layout.patchW, rows: rv, inDim: c.patchDim, outDim: c.dim)
        }
    }

    func zeroActivationGradients(_ w: TrainingWorkspace) {
        for b in w.dx { b.zero() }
        w.dxn.zero()
    }

    /// Forward and backward of one batch for the regime; returns the loss of each decoder (NaN for
    /// decoders not evaluated). Gradients are accumulated into `grads` (zero them first).
    ///
    /// - Parameter activeBlock: for the sequential regime, the block being trained (0-based).
    func step(_ w: TrainingWorkspace, activeBlock: Int? = nil, onlyDecoder: Int? = nil) -> [Float] {
        let c = config
        zeroActivationGradients(w)
        switch c.regime {
        case .e2e:
            encoderForward(w)
            let loss = decoderForward(w, decoder: 0)
            decoderBackward(w, decoder: 0)
            encoderBackward(w, layers: 1...c.layers, stopBelow: false, includeFinalNorm: true)
            return [loss]
        case .simultaneous:
            encoderForward(w)
            // The K decoders are independent (each reads its own block's output and writes its own
            // parameters' gradients and that output's gradient): one per core, BLAS single-threaded.
            var losses = [Float](repeating: .nan, count: c.blocks)
            losses.withUnsafeMutableBufferPointer { out in
                let out = out
                let run = { (k: Int) in
                    out[k] = self.decoderForward(w, decoder: k)
                    if onlyDecoder == nil || onlyDecoder == k { self.decoderBackward(w, decoder: k) }
                }
                if MaskedVideoModel.concurrentDecoders { ThreadSetting.concurrently(c.blocks, run) } else { (0..<c.blocks).forEach(run) }
            }
            for k in stride(from: c.blocks - 1, through: 0, by: -1) {
                let first = k * c.layersPerBlock + 1, last = (k + 1) * c.layersPerBlock
                encoderBackward(w, layers: first...last, stopBelow: k > 0, includeFinalNorm: k == c.blocks - 1)
            }
            return losses
        case .sequential:
            let k = activeBlock ?? 0
            let last = (k + 1) * c.layersPerBlock
            encoderForward(w, upTo: last)
            var losses = [Float](repeating: .nan, count: c.blocks)
            losses[k] = decoderForward(w, decoder: k)
            decoderBackward(w, decoder: k)
            encoderBackward(w, layers: (k * c.layersPerBlock + 1)...last, stopBelow: k > 0, includeFinalNorm: k == c.blocks - 1)
            return losses
        case .external:
            preconditionFailure("TrainingConfig.validate() rejects the external regime: bwtrain does not train it")
        }
    }
}

extension MaskedVideoModel {
    /// The losses of one batch without a backward pass (forward through what the regime evaluates).
    func losses(_ w: TrainingWorkspace, activeBlock: Int? = nil) -> [Float] {
        let c = config
        switch c.regime {
        case .e2e:
            encoderForward(w)
            return [decoderForward(w, decoder: 0)]
        case .simultaneous:
            encoderForward(w)
            return (0..<c.blocks).map { decoderForward(w, decoder: $0) }
        case .sequential:
            let k = activeBlock ?? 0
            encoderForward(w, upTo: (k + 1) * c.layersPerBlock)
            var out = [Float](repeating: .nan, count: c.blocks)
            out[k] = decoderForward(w, decoder: k)
            return out
        case .external:
            preconditionFailure("TrainingConfig.validate() rejects the external regime: bwtrain does not train it")
        }
    }
}
