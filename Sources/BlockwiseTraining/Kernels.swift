import LinearAlgebra
import Numerics

/// The scalar the kernels run in: Float for training, Double for the gradient checks.
public typealias KernelScalar = BLASOps & Real

/// The transformer layer kernels, forward and backward, over raw row-major buffers (after llm.c).
///
/// Every layer is a pair of plain functions: `xxxForward(out, cache..., inp, params..., sizes)` writes its
/// output (it never reads it) and caches only what the backward needs; `xxxBackward(dinp, dparams...,
/// dout, inp, params, cache..., sizes)` **accumulates** (`+=`) into `dinp` and every parameter gradient, so
/// residual fan-in works and gradients sum over calls. Callers zero gradient buffers once per step.
/// Sums over rows (bias and LayerNorm parameter gradients) are formed in a temporary and added once.
/// Matrix products are cblas gemm calls through `LinearAlgebra`'s `BLASOps`, one per layer over the whole
/// batch (rows = batch·tokens), except attention, which makes one gemm per (clip, head) and product.
/// Element-wise loops, row loops (LayerNorm) and the (clip, head) pairs of attention run split over the
/// cores (`Parallel.forEachRange`), each part writing only its own rows.
/// Buffers of one call must not overlap, except where a function says so.
///
/// The kernels are `@inlinable` so that every caller gets them specialised for its scalar: called
/// unspecialised from another module, the elementwise loops run 7× (GELU) to 40× (LayerNorm) slower.
public enum Kernels {
    /// Fewest elements per thread of the element-wise kernels (below twice this they run on one thread).
    @usableFromInline static let elementGrain = 4096
}

// MARK: - Linear

extension Kernels {
    /// Affine map of every row: out = inp · W + b.
    ///
    /// out[m, n] = Σₖ inp[m, k] · W[k, n] + b[n], with W stored inDim×outDim row-major (PyTorch's
    /// `nn.Linear.weight` transposed). One gemm for all rows.
    /// - Parameters:
    ///   - out: [rows, outDim], written.
    ///   - inp: [rows, inDim].
    ///   - weight: [inDim, outDim].
    ///   - bias: [outDim], or nil for no bias.
    /// - Complexity: O(rows · inDim · outDim) in BLAS.
    @inlinable
    public static func linearForward<S: KernelScalar>(
        out: UnsafeMutablePointer<S>, inp: UnsafePointer<S>, weight: UnsafePointer<S>, bias: UnsafePointer<S>?,
        rows: Int, inDim: Int, outDim: Int
    ) {
        if rows == 0 || outDim == 0 { return }
        if let bias {
            for m in 0..<rows { (out + m * outDim).update(from: bias, count: outDim) }
        } else {
            out.update(repeating: 0, count: rows * outDim)
        }
        if inDim == 0 { return }
        S.gemm(false, false, rows, outDim, inDim, 1, inp, inDim, weight, outDim, 1, out, outDim)
    }

    /// Gradients of `linearForward`, accumulated.
    ///
    /// dinp += dout · Wᵀ, dW += inpᵀ · dout, db[n] += Σₘ dout[m, n]; two gemms (beta = 1) and a row loop.
    /// - Parameters:
    ///   - dinp: [rows, inDim], or nil when the input needs no gradient (e.g. the patch embedding).
    ///   - dweight: [inDim, outDim].
    ///   - dbias: [outDim], or nil when the layer has no bias.
    ///   - dout: [rows, outDim], the gradient of the output.
    ///   - inp: [rows, inDim], the forward input.
    ///   - weight: [inDim, outDim].
    /// - Complexity: O(rows · inDim · outDim) in BLAS.
    @inlinable
    public static func linearBackward<S: KernelScalar>(
        dinp: UnsafeMutablePointer<S>?, dweight: UnsafeMutablePointer<S>, dbias: UnsafeMutablePointer<S>?,
        dout: UnsafePointer<S>, inp: UnsafePointer<S>, weight: UnsafePointer<S>,
        rows: Int, inDim: Int, outDim: Int
    ) {
        if rows == 0 || outDim == 0 { return }
        if inDim > 0 {
            if let dinp {
                S.gemm(false, true, rows, inDim, outDim, 1, dout, outDim, weight, outDim, 1, dinp, inDim)
            }
            S.gemm(true, false, inDim, outDim, rows, 1, inp, inDim, dout, outDim, 1, dweight, outDim)
        }
        if let dbias {
            // Column sums of dout in a temporary, added to dbias once (so each call adds one rounded term).
            withUnsafeTemporaryAllocation(of: S.self, capacity: outDim) { buffer in
                let sums = buffer.baseAddress!
                sums.initialize(repeating: 0, count: outDim)
                for m in 0..<rows {
                    let g = dout + m * outDim
                    for n in 0..<outDim { sums[n] += g[n] }
                }
                for n in 0..<outDim { dbias[n] += sums[n] }
            }
        }
    }
}

// MARK: - GELU

extension Kernels {
    /// Exact GELU of every element (PyTorch's `nn.GELU()` default, not the tanh approximation); in Float,
    /// erf is `fastErf` (within 4.2e-7 of erf).
    ///
    /// out = x · Φ(x) = ½ · x · (1 + erf(x / √2)), Φ the standard normal CDF (Hendrycks & Gimpel 2016).
    /// - Parameters:
    ///   - out: [count], written; may be the same buffer as `inp`.
    ///   - inp: [count].
    /// - Complexity: O(count), one erf per element.
    @inlinable
    public static func geluForward<S: KernelScalar>(out: UnsafeMutablePointer<S>, inp: UnsafePointer<S>, count: Int) {
        let invSqrt2 = 1 / S.sqrt(2)
        Parallel.forEachRange(count, grain: elementGrain) { range in
            for i in range {
                let x = inp[i]
                out[i] = 0.5 * x * (1 + erf(x * invSqrt2))
            }
        }
    }

    /// Gradient of `geluForward`, accumulated.
    ///
    /// dinp += dout · (Φ(x) + x · φ(x)), φ(x) = exp(−x²/2) / √(2π) the standard normal density; in Float,
    /// erf and exp are `fastErf` and `fastExp`.
    /// - Parameters:
    ///   - dinp: [count].
    ///   - inp: [count], the forward input.
    ///   - dout: [count].
    /// - Complexity: O(count), one erf and one exp per element.
    @inlinable
    public static func geluBackward<S: KernelScalar>(
        dinp: UnsafeMutablePointer<S>, inp: UnsafePointer<S>, dout: UnsafePointer<S>, count: Int
    ) {
        let invSqrt2 = 1 / S.sqrt(2)
        let invSqrt2Pi = 1 / S.sqrt(2 * S.pi)
        Parallel.forEachRange(count, grain: elementGrain) { range in
            for i in range {
                let x = inp[i]
                let cdf = 0.5 * (1 + erf(x * invSqrt2))
                let pdf = expNonPositive(-0.5 * x * x) * invSqrt2Pi
                dinp[i] += (cdf + x * pdf) * dout[i]
            }
        }
    }
}

extension Kernels {
    /// The error function as the GELU kernels evaluate it: libm's `erf` for Double (the gradient checks),
    /// `fastErf` for Float.
    @inlinable @inline(__always)
    static func erf<S: KernelScalar>(_ x: S) -> S {
        if S.self == Float.self { return unsafeBitCast(fastErf(unsafeBitCast(x, to: Float.self)), to: S.self) }
        return S.erf(x)
    }

    /// exp(y) for y ≤ 0 as the GELU backward evaluates it: libm's `exp` for Double, `fastExp` for Float.
    @inlinable @inline(__always)
    static func expNonPositive<S: KernelScalar>(_ y: S) -> S {
        if S.self == Float.self { return unsafeBitCast(fastExp(unsafeBitCast(y, to: Float.self)), to: S.self) }
        return S.exp(y)
    }

    /// exp(y) in Float for y ≤ 0 (larger y are not supported), without a libm call so that loops vectorise.
    ///
    /// y is clamped to [−87, 0] (exp(−87) ≈ 1.6e-38, near Float's smallest normal); n = round(y/ln 2),
    /// r = y − n·ln 2 (ln 2 in two parts, |r| ≤ ln 2 / 2), eʳ by its degree-7 Taylor polynomial, times 2ⁿ
    /// built from the exponent bits. Largest relative error 9.3e-8 (1.5 ulps) over [−87, 0].
    @inlinable @inline(__always)
    static func fastExp(_ input: Float) -> Float {
        let y = Swift.max(input, -87)
        let n = (y * 1.4426950408889634).rounded(.toNearestOrEven)
        let r = y - n * 0.693145751953125 - n * 1.428606765330187e-06
        var p: Float = 1.0 / 5040
        p = p * r + 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        // 2ⁿ: adding 1.5·2²³ puts the integer n in the low mantissa bits (no trapping conversion).
        let shifted = (n + 12_582_912).bitPattern &- 0x4B40_0000
        return p * Float(bitPattern: (shifted &+ 127) &<< 23)
    }

    /// erf(x) in Float as a rational function, x·P(x²)/Q(x²) on x clamped to [−4, 4] (Eigen's
    /// `generic_fast_erf_float` coefficients; beyond ±4 erf is ±1 in Float).
    ///
    /// Largest absolute error 4.2e-7 (at |x| ≈ 3.3, about 7 ulps of 1) against Python's `math.erf` over
    /// [−6, 6]; libm's `erff` is within an ulp but is a call per element, while this loop vectorises
    /// (no calls, no branches), which made GELU forward and backward several times faster.
    @inlinable @inline(__always)
    static func fastErf(_ input: Float) -> Float {
        let x = Swift.min(Swift.max(input, -4), 4)
        let x2 = x * x
        var p: Float = -2.72614225801306e-10
        p = p * x2 + 2.77068142495902e-08
        p = p * x2 - 2.10102402082508e-06
        p = p * x2 - 5.69250639462346e-05
        p = p * x2 - 7.34990630326855e-04
        p = p * x2 - 2.95459980854025e-03
        p = p * x2 - 1.60960333262415e-02
        var q: Float = -1.45660718464996e-05
        q = q * x2 - 2.13374055278905e-04
        q = q * x2 - 1.68282697438203e-03
        q = q * x2 - 7.37332916720468e-03
        q = q * x2 - 1.42647390514189e-02
        return x * p / q
    }
}

// MARK: - Residual

extension Kernels {
    /// Elementwise sum of two streams: out = a + b.
    ///
    /// - Parameters:
    ///   - out: [count], written; may be the same buffer as `a` or `b`.
    ///   - a: [count].
    ///   - b: [count].
    /// - Complexity: O(count).
    @inlinable
    public static func residualForward<S: KernelScalar>(
        out: UnsafeMutablePointer<S>, a: UnsafePointer<S>, b: UnsafePointer<S>, count: Int
    ) {
        Parallel.forEachRange(count, grain: 4 * elementGrain) { range in
            for i in range { out[i] = a[i] + b[i] }
        }
    }

    /// Gradient of `residualForward`, accumulated: da += dout, db += dout.
    ///
    /// - Parameters:
    ///   - da: [count].
    ///   - db: [count].
    ///   - dout: [count].
    /// - Complexity: O(count).
    @inlinable
    public static func residualBackward<S: KernelScalar>(
        da: UnsafeMutablePointer<S>, db: UnsafeMutablePointer<S>, dout: UnsafePointer<S>, count: Int
    ) {
        Parallel.forEachRange(count, grain: 4 * elementGrain) { range in
            for i in range {
                let g = dout[i]
                da[i] += g
                db[i] += g
            }
        }
    }
}
