import Foundation
import LinearAlgebra

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
    ///
    /// Per element: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p − lr·(m̂/(√v̂ + eps) + decay·p), with
    /// m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ) and t the block's update count. The tensors being updated are laid
    /// end to end and the elements split evenly over the cores (`Parallel.forEachRange`).
    public func update(params: Buffer, grads: Buffer, learningRate lr: Double, blocks: Set<Int>) {
        for b in blocks { updates[b] += 1 }
        let p = params.p, g = grads.p, mp = m.p, vp = v.p
        let lrF = Float(lr), beta1 = beta1, beta2 = beta2, eps = eps
        // (offset, count, 1−β₁ᵗ, 1−β₂ᵗ, decay) of each tensor to update, and where each starts in
        // the concatenation.
        var active: [(offset: Int, count: Int, c1: Float, c2: Float, decay: Float)] = []
        var starts: [Int] = []
        var total = 0
        for s in segments where blocks.contains(s.block) {
            let t = Float(updates[s.block])
            active.append((s.offset, s.count, 1 - pow(beta1, t), 1 - pow(beta2, t), s.decays ? weightDecay : 0))
            starts.append(total)
            total += s.count
        }
        Parallel.forEachRange(total, grain: 1 << 14) { range in
            // The first tensor overlapping the range, then tensor by tensor to its end.
            var k = max(0, (starts.lastIndex { $0 <= range.lowerBound }) ?? 0)
            while k < active.count && starts[k] < range.upperBound {
                let s = active[k]
                let lo = s.offset + max(0, range.lowerBound - starts[k])
                let hi = s.offset + min(s.count, range.upperBound - starts[k])
                let c1 = s.c1, c2 = s.c2, decay = s.decay
                for i in lo..<hi {
                    let gi = g[i]
                    let mi = beta1 * mp[i] + (1 - beta1) * gi
                    let vi = beta2 * vp[i] + (1 - beta2) * gi * gi
                    mp[i] = mi
                    vp[i] = vi
                    p[i] -= lrF * ((mi / c1) / ((vi / c2).squareRoot() + eps) + decay * p[i])
                }
                k += 1
            }
        }
    }
}
