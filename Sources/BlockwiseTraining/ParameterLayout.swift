import LinearAlgebra

/// One parameter tensor: a view into the flat parameter buffer.
public struct TensorSpec: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case weight, bias, normWeight, normBias, maskToken }
    public var name: String
    public var shape: [Int]
    public var offset: Int
    public var count: Int
    /// The block whose loss trains it (0-based); decoders belong to their block.
    public var block: Int
    public var kind: Kind
    /// AdamW weight decay applies to weight matrices only.
    public var decays: Bool { kind == .weight }
}

/// Offsets of one transformer layer's tensors.
public struct LayerOffsets: Sendable {
    public var ln1w = 0, ln1b = 0, qkvw = 0, qkvb = 0, projw = 0, projb = 0
    public var ln2w = 0, ln2b = 0, fc1w = 0, fc1b = 0, fc2w = 0, fc2b = 0
}

/// Offsets of one decoder's tensors.
public struct DecoderOffsets: Sendable {
    public var inNormW = 0, inNormB = 0, embedW = 0, maskToken = 0
    public var layers: [LayerOffsets] = []
    public var normW = 0, normB = 0, headW = 0, headB = 0
}

/// The flat layout of every parameter (llm.c style: one allocation; gradients and AdamW moments share it).
///
/// Order: patch embedding, encoder layers 1…L, final LayerNorm, then the decoders. Linear weights are
/// stored [in, out] row-major, so a layer is out = in · W + b.
public struct ParameterLayout: Sendable {
    public private(set) var tensors: [TensorSpec] = []
    public private(set) var count = 0
    public var patchW = 0, patchB = 0
    public var layers: [LayerOffsets] = []
    public var normW = 0, normB = 0
    public var decoders: [DecoderOffsets] = []

    public init(_ c: TrainingConfig) {
        patchW = add("embed.patch.weight", [c.patchDim, c.dim], block: 0, .weight)
        patchB = add("embed.patch.bias", [c.dim], block: 0, .bias)
        for l in 0..<c.layers {
            layers.append(addLayer("encoder.\(l + 1)", dim: c.dim, mlp: c.dim * c.mlpRatio, block: l / c.layersPerBlock))
        }
        normW = add("encoder.norm.weight", [c.dim], block: c.blocks - 1, .normWeight)
        normB = add("encoder.norm.bias", [c.dim], block: c.blocks - 1, .normBias)
        for k in 0..<c.decoders {
            let block = c.regime == .e2e ? c.blocks - 1 : k
            var d = DecoderOffsets()
            let p = "decoder.\(k + 1)"
            d.inNormW = add("\(p).in_norm.weight", [c.dim], block: block, .normWeight)
            d.inNormB = add("\(p).in_norm.bias", [c.dim], block: block, .normBias)
            d.embedW = add("\(p).embed.weight", [c.dim, c.decoderDim], block: block, .weight)
            d.maskToken = add("\(p).mask_token", [c.decoderDim], block: block, .maskToken)
            for l in 0..<c.decoderDepth {
                d.layers.append(addLayer("\(p).\(l + 1)", dim: c.decoderDim, mlp: c.decoderDim * c.mlpRatio, block: block))
            }
            d.normW = add("\(p).norm.weight", [c.decoderDim], block: block, .normWeight)
            d.normB = add("\(p).norm.bias", [c.decoderDim], block: block, .normBias)
            d.headW = add("\(p).head.weight", [c.decoderDim, c.patchDim], block: block, .weight)
            d.headB = add("\(p).head.bias", [c.patchDim], block: block, .bias)
            decoders.append(d)
        }
    }

    private mutating func add(_ name: String, _ shape: [Int], block: Int, _ kind: TensorSpec.Kind) -> Int {
        let n = shape.reduce(1, *)
        tensors.append(TensorSpec(name: name, shape: shape, offset: count, count: n, block: block, kind: kind))
        count += n
        return count - n
    }

    private mutating func addLayer(_ p: String, dim: Int, mlp: Int, block: Int) -> LayerOffsets {
        var o = LayerOffsets()
        o.ln1w = add("\(p).norm1.weight", [dim], block: block, .normWeight)
        o.ln1b = add("\(p).norm1.bias", [dim], block: block, .normBias)
        o.qkvw = add("\(p).attn.qkv.weight", [dim, 3 * dim], block: block, .weight)
        o.qkvb = add("\(p).attn.qkv.bias", [3 * dim], block: block, .bias)
        o.projw = add("\(p).attn.proj.weight", [dim, dim], block: block, .weight)
        o.projb = add("\(p).attn.proj.bias", [dim], block: block, .bias)
        o.ln2w = add("\(p).norm2.weight", [dim], block: block, .normWeight)
        o.ln2b = add("\(p).norm2.bias", [dim], block: block, .normBias)
        o.fc1w = add("\(p).mlp.fc1.weight", [dim, mlp], block: block, .weight)
        o.fc1b = add("\(p).mlp.fc1.bias", [mlp], block: block, .bias)
        o.fc2w = add("\(p).mlp.fc2.weight", [mlp, dim], block: block, .weight)
        o.fc2b = add("\(p).mlp.fc2.bias", [dim], block: block, .bias)
        return o
    }

    /// Initial values: Xavier-uniform weights (bound √(6/(fan_in+fan_out))), zero biases, unit LayerNorm
    /// weights, mask tokens N(0, 0.02²) — VideoMAE's initialisation — drawn from `seed`.
    public func initialValues(seed: UInt64) -> [Float] {
        var v = [Float](repeating: 0, count: count)
        var g = SeededGenerator(seed: seed &* 0x9E37_79B9 &+ 17)
        for t in tensors {
            switch t.kind {
            case .weight:
                let bound = (6.0 / Double(t.shape[0] + t.shape[1])).squareRoot()
                for i in 0..<t.count { v[t.offset + i] = Float((2 * g.nextUniform() - 1) * bound) }
            case .bias, .normBias: break
            case .normWeight: for i in 0..<t.count { v[t.offset + i] = 1 }
            case .maskToken: for i in 0..<t.count { v[t.offset + i] = Float(0.02 * g.nextGaussian()) }
            }
        }
        return v
    }

    /// [lower, upper) ranges of the flat buffer owned by each block.
    public func ranges(ofBlock block: Int) -> [Range<Int>] {
        tensors.filter { $0.block == block }.map { $0.offset..<($0.offset + $0.count) }
    }
}
