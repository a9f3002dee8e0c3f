import LinearAlgebra
import Numerics

extension Kernels {
    /// LayerNorm over the last dimension of every row (Ba et al. 2016; PyTorch `nn.LayerNorm`).
    ///
    /// μ = Σⱼ xⱼ / dim, σ² = Σⱼ (xⱼ − μ)² / dim (biased, two passes), r = 1 / √(σ² + eps),
    /// out = (x − μ) · r · w + b. Without `weight` and `bias` the output is the normalised row itself
    /// (`elementwise_affine=False`); either may be nil independently. Not VideoMAE's pixel-target
    /// normalisation, which divides by the unbiased standard deviation plus 1e-6.
    /// - Parameters:
    ///   - out: [rows, dim], written.
    ///   - mean: [rows], written: μ per row, cached for the backward.
    ///   - rstd: [rows], written: r per row, cached for the backward.
    ///   - inp: [rows, dim].
    ///   - weight: [dim] scale w, or nil (w = 1).
    ///   - bias: [dim] shift b, or nil (b = 0).
    ///   - eps: added to the variance; 1e-6 is VideoMAE's (PyTorch's default is 1e-5).
    /// - Complexity: O(rows · dim).
    @inlinable
    public static func layerNormForward<S: KernelScalar>(
        out: UnsafeMutablePointer<S>, mean: UnsafeMutablePointer<S>, rstd: UnsafeMutablePointer<S>,
        inp: UnsafePointer<S>, weight: UnsafePointer<S>?, bias: UnsafePointer<S>?,
        rows: Int, dim: Int, eps: S = 1e-6
    ) {
        if dim == 0 { return }
        let n = S(dim)
        Parallel.forEachRange(rows, grain: rowGrain(dim)) { range in
            for r in range {
                let x = inp + r * dim
                let y = out + r * dim
                var sum: S = 0
                for j in 0..<dim { sum += x[j] }
                let mu = sum / n
                var squares: S = 0
                for j in 0..<dim {
                    let d = x[j] - mu
                    squares += d * d
                }
                let s = 1 / S.sqrt(squares / n + eps)
                if let weight, let bias {
                    for j in 0..<dim { y[j] = (x[j] - mu) * s * weight[j] + bias[j] }
                } else {
                    for j in 0..<dim { y[j] = (x[j] - mu) * s * (weight?[j] ?? 1) + (bias?[j] ?? 0) }
                }
                mean[r] = mu
                rstd[r] = s
            }
        }
    }

    /// Rows per thread of the LayerNorm kernels: about `elementGrain` elements.
    @inlinable
    static func rowGrain(_ dim: Int) -> Int { max(1, elementGrain / max(1, dim)) }

    /// Gradients of `layerNormForward`, accumulated.
    ///
    /// With x̂ = (x − μ)·r and g = w ⊙ dout (g = dout without weight):
    /// dinp += r · (g − mean(g) − x̂ · mean(g ⊙ x̂)), dw += dout ⊙ x̂, db += dout (summed over rows).
    /// The formula is the exact derivative, eps included, since r depends on x only through σ².
    /// - Parameters:
    ///   - dinp: [rows, dim].
    ///   - dweight: [dim], or nil (no weight, or a frozen one).
    ///   - dbias: [dim], or nil (no bias, or a frozen one).
    ///   - dout: [rows, dim].
    ///   - inp: [rows, dim], the forward input.
    ///   - weight: [dim], or nil as in the forward.
    ///   - mean: [rows], from the forward.
    ///   - rstd: [rows], from the forward.
    /// - Complexity: O(rows · dim).
    @inlinable
    public static func layerNormBackward<S: KernelScalar>(
        dinp: UnsafeMutablePointer<S>, dweight: UnsafeMutablePointer<S>?, dbias: UnsafeMutablePointer<S>?,
        dout: UnsafePointer<S>, inp: UnsafePointer<S>, weight: UnsafePointer<S>?,
        mean: UnsafePointer<S>, rstd: UnsafePointer<S>, rows: Int, dim: Int
    ) {
        if dim == 0 { return }
        let n = S(dim)
        // Parameter gradients summed over each thread's rows in a temporary, added once at the end (in
        // part order, so the result does not depend on timing).
        let parts = min(Parallel.threads, max(1, rows / rowGrain(dim)))
        withUnsafeTemporaryAllocation(of: S.self, capacity: 2 * dim * parts) { buffer in
            let partials = buffer.baseAddress!
            partials.initialize(repeating: 0, count: 2 * dim * parts)
            Parallel.forEachRange(parts, grain: 1) { partRange in
                for part in partRange {
                    let weightSums = partials + 2 * dim * part
                    let biasSums = weightSums + dim
                    for r in (rows * part / parts)..<(rows * (part + 1) / parts) {
                        let x = inp + r * dim
                        let dy = dout + r * dim
                        let dx = dinp + r * dim
                        let mu = mean[r]
                        let s = rstd[r]
                        // The two row means of the formula.
                        var gSum: S = 0
                        var gNormSum: S = 0
                        for j in 0..<dim {
                            let norm = (x[j] - mu) * s
                            let g = (weight?[j] ?? 1) * dy[j]
                            gSum += g
                            gNormSum += g * norm
                        }
                        let gMean = gSum / n
                        let gNormMean = gNormSum / n
                        for j in 0..<dim {
                            let norm = (x[j] - mu) * s
                            let g = (weight?[j] ?? 1) * dy[j]
                            dx[j] += s * (g - gMean - norm * gNormMean)
                            weightSums[j] += dy[j] * norm
                            biasSums[j] += dy[j]
                        }
                    }
                }
            }
            for part in 1..<max(1, parts) {
                for j in 0..<(2 * dim) { partials[j] += partials[2 * dim * part + j] }
            }
            if let dweight { for j in 0..<dim { dweight[j] += partials[j] } }
            if let dbias { for j in 0..<dim { dbias[j] += partials[dim + j] } }
        }
    }
}
