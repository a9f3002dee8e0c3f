import ActivationStore
import LinearAlgebra
import Numerics

/// Small dense helpers for fixture construction.
///
/// Fixtures are built with plain loops in float64, not BLAS, so that their bytes do not depend on
/// which OpenBLAS kernel a machine selects: regenerating them must give identical content.
enum FixtureMath {
    /// rows×cols standard normal values.
    static func gaussian(_ rows: Int, _ cols: Int, _ rng: inout SeededGenerator, scale: Double = 1) -> [Double] {
        (0..<(rows * cols)).map { _ in rng.nextGaussian() * scale }
    }

    /// C = A·B for row-major A (m×k) and B (k×n), by plain loops.
    static func multiply(_ a: [Double], _ b: [Double], m: Int, k: Int, n: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for p in 0..<k {
                let aip = a[i * k + p]
                if aip == 0 { continue }
                for j in 0..<n { c[i * n + j] += aip * b[p * n + j] }
            }
        }
        return c
    }

    /// Orthonormalises the columns of a row-major m×n matrix (m ≥ n) by modified Gram–Schmidt,
    /// optionally also against the all-ones vector (which makes every column zero-mean).
    static func orthonormalColumns(_ a: [Double], m: Int, n: Int, orthogonalToOnes: Bool = false) -> [Double] {
        var cols = (0..<n).map { j in (0..<m).map { a[$0 * n + j] } }
        var basis: [[Double]] = []
        if orthogonalToOnes { basis.append([Double](repeating: 1 / Double(m).squareRoot(), count: m)) }
        for j in 0..<n {
            var v = cols[j]
            for _ in 0..<2 {  // twice is enough (Kahan's "twice is enough")
                for q in basis {
                    var dot = 0.0
                    for i in 0..<m { dot += q[i] * v[i] }
                    for i in 0..<m { v[i] -= dot * q[i] }
                }
            }
            var norm = 0.0
            for x in v { norm += x * x }
            norm = norm.squareRoot()
            precondition(norm > 1e-8, "columns are not linearly independent")
            v = v.map { $0 / norm }
            basis.append(v)
            cols[j] = v
        }
        var out = [Double](repeating: 0, count: m * n)
        for j in 0..<n { for i in 0..<m { out[i * n + j] = cols[j][i] } }
        return out
    }

    /// A random orthogonal n×n matrix.
    static func randomOrthogonal(_ n: Int, _ rng: inout SeededGenerator) -> [Double] {
        orthonormalColumns(gaussian(n, n, &rng), m: n, n: n)
    }

    /// Block-diagonal rotation by `angle` in the planes (0,1), (2,3), ...; n must be even.
    /// Every vector h satisfies cos(h, hR) = cos(angle) and ‖hR − h‖/‖h‖ = 2 sin(angle/2).
    static func planeRotation(_ n: Int, angle: Double) -> [Double] {
        precondition(n % 2 == 0)
        var r = [Double](repeating: 0, count: n * n)
        let c = Double.cos(angle), s = Double.sin(angle)
        for p in stride(from: 0, to: n, by: 2) {
            r[p * n + p] = c; r[p * n + p + 1] = s
            r[(p + 1) * n + p] = -s; r[(p + 1) * n + p + 1] = c
        }
        return r
    }

    static func toFloat(_ x: [Double]) -> [Float] { x.map { Float($0) } }
}

/// One fixture file in memory: metadata, tokens per depth, labels, optional extras.
public struct FixtureFile: Sendable {
    public var name: String
    public var metadata: ActivationMetadata
    public var clips: Int, tokens: Int, features: Int
    /// Tokens per depth 0...L, row-major [clips, tokens, features].
    public var layers: [[Float]]
    public var labels: [String: [Int]]
    public var positions: [Float]?
    public var attention: [Int: (heads: Int, clips: Int, values: [Float])] = [:]
    public var training: TrainingCurve? = nil
    public var tokenType: ElementType = .float32

    /// Writes the fixture atomically to `directory/name`.
    public func write(to directory: String) throws -> String {
        let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        let w = try ActivationWriter(path: path, metadata: metadata)
        for (depth, values) in layers.enumerated() {
            try w.writeTokens(depth: depth, values: values, clips: clips, tokens: tokens, features: features, type: tokenType)
        }
        for depth in attention.keys.sorted() {
            let a = attention[depth]!
            try w.writeAttention(depth: depth, values: a.values, clips: a.clips, heads: a.heads, tokens: tokens)
        }
        if let positions { try w.writePositions(positions) }
        for target in labels.keys.sorted() { try w.writeLabels(target, labels[target]!) }
        if let training { try w.writeTrainingCurve(training) }
        try w.commit()
        return path
    }
}
