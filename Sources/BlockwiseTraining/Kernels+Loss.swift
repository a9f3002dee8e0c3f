import LinearAlgebra
import Numerics

extension Kernels {
    /// Masked reconstruction loss: the mean squared error over the listed rows (VideoMAE's masked tokens).
    ///
    /// loss = Σ_{r ∈ rowIndices} Σⱼ (pred[r, j] − target[r, j])² / (rowCount · dim); a row listed twice
    /// counts twice. `pred` and `target` share one layout and the indices address rows of both. The sum is
    /// accumulated in Double (a Float sum over ~10⁶ terms would lose digits). Returns 0 for no rows.
    /// - Parameters:
    ///   - pred: [N, dim], the decoder output.
    ///   - target: [N, dim], the reconstruction target (e.g. normalised patch pixels).
    ///   - rowIndices: [rowCount] row numbers in 0..<N.
    /// - Complexity: O(rowCount · dim).
    @inlinable
    public static func mseForward<S: KernelScalar>(
        pred: UnsafePointer<S>, target: UnsafePointer<S>, rowIndices: UnsafePointer<Int32>, rowCount: Int, dim: Int
    ) -> S {
        if rowCount == 0 || dim == 0 { return 0 }
        var sum: Double = 0
        for i in 0..<rowCount {
            let r = Int(rowIndices[i])
            let y = pred + r * dim
            let t = target + r * dim
            for j in 0..<dim {
                let e = Double(y[j] - t[j])
                sum += e * e
            }
        }
        return S(sum / Double(rowCount * dim))
    }

    /// Gradient of `mseForward` times `scale`, accumulated into the listed rows of `dpred` only.
    ///
    /// dpred[r, j] += scale · 2 · (pred[r, j] − target[r, j]) / (rowCount · dim) for r in `rowIndices`;
    /// `scale` is the upstream gradient of the loss (e.g. a block's loss weight). Other rows are untouched.
    /// - Parameters:
    ///   - dpred: [N, dim].
    ///   - pred: [N, dim].
    ///   - target: [N, dim].
    ///   - rowIndices: [rowCount] row numbers in 0..<N, as in the forward.
    ///   - scale: dL/dloss.
    /// - Complexity: O(rowCount · dim).
    @inlinable
    public static func mseBackward<S: KernelScalar>(
        dpred: UnsafeMutablePointer<S>, pred: UnsafePointer<S>, target: UnsafePointer<S>,
        rowIndices: UnsafePointer<Int32>, rowCount: Int, dim: Int, scale: S = 1
    ) {
        if rowCount == 0 || dim == 0 { return }
        let factor = 2 * scale / S(rowCount * dim)
        for i in 0..<rowCount {
            let r = Int(rowIndices[i])
            let y = pred + r * dim
            let t = target + r * dim
            let dy = dpred + r * dim
            for j in 0..<dim { dy[j] += factor * (y[j] - t[j]) }
        }
    }
}
