import Foundation

/// AdamW (Loshchilov & Hutter 2019) over the flat parameter buffer, with decoupled weight decay on
/// weight matrices only, and linear warmup followed by cosine decay.
public final class AdamW {
    public let beta1: Float, beta2: Float, eps: Float = 1e-8
    public let weightDecay: Float
    public let m: Buffer, v: Buffer
    /// Per-tensor (offset, count, decays).
    let segments: [(offset: Int, count: Int, decays: Bool, block: Int)]
    /// Update count per block (bias correction runs per block, so a sequential block starts fresh).
    public var updates: [Int]

    public init(layout: ParameterLayout, config: TrainingConfig) {
        beta1 = Float(config.beta1)
        beta2 = Float(config.beta2)
        weightDecay = Float(config.weightDecay)
        m = Buffer(layout.count)
        v = Buffer(layout.count)
        segments = layout.tensors.map { ($0.offset, $0.count, $0.decays, $0.block) }
        updates = Array(repeating: 0, count: config.blocks)
    }

    /// Learning rate at `step` of a schedule of `total` steps: linear warmup over `warmup` steps from
    /// lr/warmup to lr, then cosine decay to `minLR`.
    public static func learningRate(step: Int, total: Int, warmup: Int, lr: Double, minLR: Double) -> Double {
        if step < warmup { return lr * Double(step + 1) / Double(warmup) }
        let span = max(1, total - warmup)
        let progress = min(1, Double(step - warmup) / Double(span))
        return minLR + 0.5 * (lr - minLR) * (1 + cos(Double.pi * progress))
    }

    /// One update of the parameters of `blocks` with their gradients.
    public func update(params: Buffer, grads: Buffer, learningRate lr: Double, blocks: Set<Int>) {
        for b in blocks { updates[b] += 1 }
        let p = params.p, g = grads.p, mp = m.p, vp = v.p
        let lrF = Float(lr)
        for s in segments where blocks.contains(s.block) {
            let t = Float(updates[s.block])
            let c1 = 1 - pow(beta1, t), c2 = 1 - pow(beta2, t)
            let decay = s.decays ? weightDecay : 0
            for i in s.offset..<(s.offset + s.count) {
                let gi = g[i]
                mp[i] = beta1 * mp[i] + (1 - beta1) * gi
                vp[i] = beta2 * vp[i] + (1 - beta2) * gi * gi
                let mhat = mp[i] / c1, vhat = vp[i] / c2
                p[i] -= lrF * (mhat / (vhat.squareRoot() + eps) + decay * p[i])
            }
        }
    }
}
