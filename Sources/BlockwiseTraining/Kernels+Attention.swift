import LinearAlgebra
import Numerics

extension Kernels {
    /// Multi-head self-attention core (no mask, no projections): out = softmax(Q Kᵀ / √headDim) V per head.
    ///
    /// `qkv` holds, per token, the three projections side by side, (q | k | v), each D = heads · headDim wide,
    /// head h in columns h·headDim ..< (h+1)·headDim of each. For clip b and head h, with Q, K, V the T×headDim
    /// slices: P = softmax_rows(Q Kᵀ / √headDim) (max-subtracted), O = P V, written to columns
    /// h·headDim ..< (h+1)·headDim of `out`. The gemms read `qkv` in place (leading dimension 3·D): per
    /// (b, h) one gemm for the scores and one for P V, the pairs split over the cores (`forEachClipAndHead`).
    /// - Parameters:
    ///   - out: [batch, tokens, D], written.
    ///   - att: [batch, heads, tokens, tokens], written: P, cached for the backward (and dumped by the trainer).
    ///   - qkv: [batch, tokens, 3·D].
    /// - Complexity: O(batch · heads · tokens² · headDim) in BLAS, plus batch · heads · tokens² exps.
    @inlinable
    public static func attentionForward<S: KernelScalar>(
        out: UnsafeMutablePointer<S>, att: UnsafeMutablePointer<S>, qkv: UnsafePointer<S>,
        batch: Int, tokens: Int, heads: Int, headDim: Int
    ) {
        let t = tokens
        let d = heads * headDim
        if t == 0 || d == 0 { return }
        let scale = 1 / S.sqrt(S(headDim))
        forEachClipAndHead(batch: batch, heads: heads, tokens: t, headDim: headDim) { b, h in
            let q = qkv + b * t * 3 * d + h * headDim
            let k = q + d
            let v = q + 2 * d
            let p = att + (b * heads + h) * t * t
            let o = out + b * t * d + h * headDim
            // Scores, then softmax of each row in place.
            S.gemm(false, true, t, t, headDim, scale, q, 3 * d, k, 3 * d, 0, p, t)
            for i in 0..<t { softmaxRow(p + i * t, count: t) }
            S.gemm(false, false, t, headDim, t, 1, p, t, v, 3 * d, 0, o, d)
        }
    }

    /// Gradient of `attentionForward` with respect to `qkv`, accumulated.
    ///
    /// Per (b, h), with dO the head's slice of `dout` and s = 1/√headDim:
    /// dV += Pᵀ dO, dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)) (softmax backward), dQ += s · dS K,
    /// dK += s · dSᵀ Q. Four gemms; the gradient blocks are written in place into `dqkv` (leading dimension 3·D).
    /// - Parameters:
    ///   - dqkv: [batch, tokens, 3·D].
    ///   - datt: [batch, heads, tokens, tokens] workspace, overwritten (it ends holding dS, the gradient of
    ///     the scaled scores).
    ///   - dout: [batch, tokens, D].
    ///   - qkv: [batch, tokens, 3·D], the forward input.
    ///   - att: [batch, heads, tokens, tokens], P from the forward.
    /// - Complexity: O(batch · heads · tokens² · headDim) in BLAS.
    @inlinable
    public static func attentionBackward<S: KernelScalar>(
        dqkv: UnsafeMutablePointer<S>, datt: UnsafeMutablePointer<S>, dout: UnsafePointer<S>,
        qkv: UnsafePointer<S>, att: UnsafePointer<S>,
        batch: Int, tokens: Int, heads: Int, headDim: Int
    ) {
        let t = tokens
        let d = heads * headDim
        if t == 0 || d == 0 { return }
        let scale = 1 / S.sqrt(S(headDim))
        forEachClipAndHead(batch: batch, heads: heads, tokens: t, headDim: headDim) { b, h in
            let q = qkv + b * t * 3 * d + h * headDim
            let k = q + d
            let v = q + 2 * d
            let dq = dqkv + b * t * 3 * d + h * headDim
            let dk = dq + d
            let dv = dq + 2 * d
            let p = att + (b * heads + h) * t * t
            let dp = datt + (b * heads + h) * t * t
            let dO = dout + b * t * d + h * headDim
            S.gemm(true, false, t, headDim, t, 1, p, t, dO, d, 1, dv, 3 * d)
            S.gemm(false, true, t, t, headDim, 1, dO, d, v, 3 * d, 0, dp, t)
            for i in 0..<t { softmaxRowBackward(dp + i * t, probabilities: p + i * t, count: t) }
            S.gemm(false, false, t, headDim, t, scale, dp, t, k, 3 * d, 1, dq, 3 * d)
            S.gemm(true, false, t, headDim, t, scale, dp, t, q, 3 * d, 1, dk, 3 * d)
        }
    }

    /// Calls `body(b, h)` for every clip and head, the pairs split over the cores. Products small enough
    /// for OpenBLAS to run on one thread (m·n·k ≤ 2¹⁸, its threshold for threading a gemm) split in
    /// contiguous ranges; larger ones run one pair per core with OpenBLAS single-threaded
    /// (`ThreadSetting.concurrently`), instead of every small gemm threaded and synchronised. Each pair
    /// writes only its own clip's rows and head's columns.
    @inlinable
    static func forEachClipAndHead(batch: Int, heads: Int, tokens: Int, headDim: Int, _ body: (Int, Int) -> Void) {
        let pairs = batch * heads
        if tokens * tokens * headDim <= 1 << 18 {
            Parallel.forEachRange(pairs, grain: 1) { range in
                for pair in range { body(pair / heads, pair % heads) }
            }
        } else {
            ThreadSetting.concurrently(pairs) { pair in body(pair / heads, pair % heads) }
        }
    }

    /// Numerically stable softmax of one row in place: xᵢ ← exp(xᵢ − max x) / Σⱼ exp(xⱼ − max x).
    @usableFromInline
    static func softmaxRow<S: KernelScalar>(_ x: UnsafeMutablePointer<S>, count: Int) {
        var maximum = -S.infinity
        for j in 0..<count where x[j] > maximum { maximum = x[j] }
        var sum: S = 0
        for j in 0..<count {
            let e = S.exp(x[j] - maximum)
            x[j] = e
            sum += e
        }
        let inverse = 1 / sum
        for j in 0..<count { x[j] *= inverse }
    }

    /// Softmax backward of one row in place: given dP, writes dS = P ⊙ (dP − Σⱼ dPⱼ Pⱼ).
    @usableFromInline
    static func softmaxRowBackward<S: KernelScalar>(
        _ grad: UnsafeMutablePointer<S>, probabilities p: UnsafePointer<S>, count: Int
    ) {
        var dot: S = 0
        for j in 0..<count { dot += grad[j] * p[j] }
        for j in 0..<count { grad[j] = p[j] * (grad[j] - dot) }
    }
}
