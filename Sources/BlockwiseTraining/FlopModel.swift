/// Matrix-product flops of one training step, counted from the shapes.
public enum FlopModel {
    /// Forward flops of one pre-LN layer on batch·tokens rows: the four linear maps
    /// (2·rows·(3D² + D² + 2·D·hidden)) and attention's two products per head (2·2·batch·T²·D).
    public static func layer(batch: Int, tokens: Int, dim: Int, hidden: Int) -> Double {
        let rows = Double(batch * tokens), d = Double(dim)
        return 2 * rows * (3 * d * d + d * d + 2 * d * Double(hidden)) + 4 * Double(batch) * Double(tokens * tokens) * d
    }

    /// Forward + backward flops of one training step (backward counted as twice the forward of what it trains).
    public static func trainingStep(_ c: TrainingConfig, activeBlock: Int? = nil) -> Double {
        let b = c.batchSize, v = c.visibleTokens, t = c.tokens, m = t - v
        let encoderLayer = layer(batch: b, tokens: v, dim: c.dim, hidden: c.dim * c.mlpRatio)
        let embed = 2 * Double(b * v) * Double(c.patchDim * c.dim)
        var decoder = 2 * Double(b * v) * Double(c.dim * c.decoderDim) + 2 * Double(b * m) * Double(c.decoderDim * c.patchDim)
        decoder += Double(c.decoderDepth) * layer(batch: b, tokens: t, dim: c.decoderDim, hidden: c.decoderDim * c.mlpRatio)
        switch c.regime {
        case .e2e:
            let f = embed + Double(c.layers) * encoderLayer + decoder
            return 3 * f
        case .simultaneous:
            let f = embed + Double(c.layers) * encoderLayer + Double(c.blocks) * decoder
            return 3 * f
        case .sequential:
            let k = activeBlock ?? 0
            let f = embed + Double((k + 1) * c.layersPerBlock) * encoderLayer + decoder
            let trained = Double(c.layersPerBlock) * encoderLayer + decoder + (k == 0 ? embed : 0)
            return f + 2 * trained
        case .external:
            preconditionFailure("TrainingConfig.validate() rejects the external regime: bwtrain does not train it")
        }
    }
}
