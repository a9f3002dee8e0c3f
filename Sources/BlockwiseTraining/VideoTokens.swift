import Foundation
import LinearAlgebra

/// A float buffer allocated once and reused (llm.c style); freed with the object.
public final class Buffer: @unchecked Sendable {
    public let p: UnsafeMutablePointer<Float>
    public let count: Int

    public init(_ count: Int) {
        self.count = count
        p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count))
        p.initialize(repeating: 0, count: max(1, count))
    }

    public convenience init(_ values: [Float]) {
        self.init(values.count)
        values.withUnsafeBufferPointer { src in if let b = src.baseAddress { p.update(from: b, count: values.count) } }
    }

    public func zero(_ n: Int? = nil) { p.update(repeating: 0, count: n ?? count) }
    public var array: [Float] { Array(UnsafeBufferPointer(start: p, count: count)) }
    deinit { p.deallocate() }
}

/// Tubelets, positions, masks and reconstruction targets of a clip geometry.
public struct VideoTokens: Sendable {
    public let config: TrainingConfig

    public init(_ config: TrainingConfig) { self.config = config }

    /// Token n = (slot, gy, gx) in row-major order; its patch vector is the pixels of the tubelet in
    /// (dt, dy, dx, c) order. `pixels` is one clip [F, H, W, C]; `out` receives [T, P].
    public func patchify(_ pixels: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let c = config
        let (t, p, ch) = (c.tubeletFrames, c.patch, c.channels)
        var q = 0
        for slot in 0..<c.timeSlots {
            for gy in 0..<c.gridHeight {
                for gx in 0..<c.gridWidth {
                    for dt in 0..<t {
                        let f = slot * t + dt
                        for dy in 0..<p {
                            let y = gy * p + dy
                            let rowBase = ((f * c.height + y) * c.width + gx * p) * ch
                            for k in 0..<(p * ch) { out[q] = pixels[rowBase + k]; q += 1 }
                        }
                    }
                }
            }
        }
    }

    /// The encoder's input standardisation in place: x ← (x − inputMean) / inputStd (nothing for (0, 1)).
    public func standardizeInputs(_ values: UnsafeMutablePointer<Float>, count: Int) {
        let c = config
        guard c.inputMean != 0 || c.inputStd != 1 else { return }
        let mean = Float(c.inputMean), scale = Float(1 / c.inputStd)
        for i in 0..<count { values[i] = (values[i] - mean) * scale }
    }

    /// VideoMAE's normalised targets: per token and channel, (x − mean)/(std + 1e-6) over the tubelet's
    /// t·p·p pixels, std unbiased. Works in place on [T, P] patches.
    public func normalizeTargets(_ patches: UnsafeMutablePointer<Float>, tokens: Int) {
        let c = config
        let ch = c.channels, n = c.tubeletFrames * c.patch * c.patch
        for tok in 0..<tokens {
            let base = patches + tok * c.patchDim
            for k in 0..<ch {
                var mean = 0.0
                for i in 0..<n { mean += Double(base[i * ch + k]) }
                mean /= Double(n)
                var v = 0.0
                for i in 0..<n { let d = Double(base[i * ch + k]) - mean; v += d * d }
                let std = (v / Double(max(1, n - 1))).squareRoot()
                for i in 0..<n { base[i * ch + k] = Float((Double(base[i * ch + k]) - mean) / (std + 1e-6)) }
            }
        }
    }

    /// Fixed 3D sin-cos position embedding [T, dim]: the width is split between time, row and column
    /// (even shares, the column axis taking the rest); on each axis channel pairs (sin, cos) of
    /// position·ω_i with ω_i = 10000^(−2i/d_axis), positions in token-grid units.
    public func positionEmbedding(dim: Int) -> [Float] {
        let c = config
        let dt = (dim / 6) * 2, dy = (dim / 6) * 2, dx = ((dim - dt - dy) / 2) * 2
        var e = [Float](repeating: 0, count: c.tokens * dim)
        func fill(_ row: Int, _ start: Int, _ width: Int, _ pos: Double) {
            let half = width / 2
            for i in 0..<half {
                let omega = pow(10000.0, -Double(2 * i) / Double(max(1, width)))
                e[row * dim + start + i] = Float(sin(pos * omega))
                e[row * dim + start + half + i] = Float(cos(pos * omega))
            }
        }
        var n = 0
        for slot in 0..<c.timeSlots {
            for gy in 0..<c.gridHeight {
                for gx in 0..<c.gridWidth {
                    fill(n, 0, dt, Double(slot))
                    fill(n, dt, dy, Double(gy))
                    fill(n, dt + dy, dx, Double(gx))
                    n += 1
                }
            }
        }
        return e
    }

    /// Token centres as (frame, row, col) in input frames and pixels (0-based centres).
    public var positions: [Float] {
        let c = config
        var p: [Float] = []
        for slot in 0..<c.timeSlots {
            for gy in 0..<c.gridHeight {
                for gx in 0..<c.gridWidth {
                    p += [Float(slot * c.tubeletFrames) + Float(c.tubeletFrames - 1) / 2,
                          Float(gy * c.patch) + Float(c.patch - 1) / 2,
                          Float(gx * c.patch) + Float(c.patch - 1) / 2]
                }
            }
        }
        return p
    }

    /// Tube masking: one random set of visible spatial positions per clip, repeated over time.
    /// Returns the visible token indices (sorted, `visibleTokens` of them) and the masked ones.
    public func tubeMask(_ rng: inout SeededGenerator) -> (visible: [Int], masked: [Int]) {
        let c = config
        var spatial = Array(0..<c.spatialTokens)
        for i in 0..<c.visibleSpatial {
            let j = i + Int(rng.next() % UInt64(c.spatialTokens - i))
            spatial.swapAt(i, j)
        }
        let kept = Set(spatial.prefix(c.visibleSpatial))
        var visible: [Int] = [], masked: [Int] = []
        for slot in 0..<c.timeSlots {
            for s in 0..<c.spatialTokens {
                let n = slot * c.spatialTokens + s
                if kept.contains(s) { visible.append(n) } else { masked.append(n) }
            }
        }
        return (visible, masked)
    }
}
