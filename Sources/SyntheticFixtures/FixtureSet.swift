import ActivationStore
import Foundation
import LinearAlgebra

/// The committed test fixtures (`Fixtures/*.h5`): small, deterministic bwact files whose
/// properties are known in closed form. `Fixtures/README.md` lists what each one plants.
public enum FixtureSet {
    /// Every fixture, in a fixed order.
    public static func all() -> [FixtureFile] {
        [geometry(), spectrum(), attention(), runPair().a, runPair().b, precision(.float16), precision(.float64)]
    }

    /// Writes every fixture into `directory` (created if missing); returns the paths written.
    @discardableResult
    public static func write(to directory: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return try all().map { try $0.write(to: directory) }
    }

    static func config(_ pairs: [String: String]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: pairs, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// Token centres for a grid of `slots` tubelet slots × `grid` × `grid` patches.
    public static func gridPositions(slots: Int, grid: Int, tubelet: Int, patch: Int) -> [Float] {
        var p: [Float] = []
        for s in 0..<slots {
            for r in 0..<grid {
                for c in 0..<grid {
                    p += [Float(s * tubelet) + Float(tubelet - 1) / 2,
                          Float(r * patch) + Float(patch - 1) / 2,
                          Float(c * patch) + Float(patch - 1) / 2]
                }
            }
        }
        return p
    }

    // MARK: geometry.h5

    /// Rotation angle of depth 1 relative to depth 0 in `geometry.h5`.
    public static let geometryAngle = Double.pi / 6
    /// Scale of depth 2 relative to depth 0 in `geometry.h5`.
    public static let geometryScale = 2.5

    /// Depths that are exact transforms of depth 0: 1 = plane rotation by π/6, 2 = 2.5·X,
    /// 3 = random orthogonal, 4 = general invertible (anisotropic) map, 5 = independent noise.
    /// Labels: `planted` (3 classes, linearly separable in depths 0–4), `random` (3 classes, independent).
    public static func geometry() -> FixtureFile {
        let n = 96, t = 8, d = 12
        var rng = SeededGenerator(seed: 101)
        let planted = (0..<n).map { $0 % 3 }
        var x = FixtureMath.gaussian(n * t, d, &rng)
        for i in 0..<n { for j in 0..<t { x[(i * t + j) * d + planted[i]] += 6 } }
        let rot = FixtureMath.planeRotation(d, angle: geometryAngle)
        let q = FixtureMath.randomOrthogonal(d, &rng)
        var a = FixtureMath.gaussian(d, d, &rng, scale: 0.3)
        for i in 0..<d { a[i * d + i] += Double(i + 1) }  // diagonally dominant, hence invertible
        let rows = n * t
        let layers = [
            x,
            FixtureMath.multiply(x, rot, m: rows, k: d, n: d),
            x.map { $0 * geometryScale },
            FixtureMath.multiply(x, q, m: rows, k: d, n: d),
            FixtureMath.multiply(x, a, m: rows, k: d, n: d),
            FixtureMath.gaussian(rows, d, &rng),
        ].map(FixtureMath.toFloat)
        let random = (0..<n).map { _ in Int(rng.next() % 3) }
        return FixtureFile(
            name: "geometry.h5",
            metadata: ActivationMetadata(run: "fixture-geometry", regime: Regime.external.rawValue, blockEnds: [1, 3, 5],
                                         probeSet: "planted", step: 0, seed: 101,
                                         config: config(["fixture": "geometry",
                                                         "depth_1": "depth 0 rotated by pi/6 in planes (0,1),(2,3),...",
                                                         "depth_2": "2.5 * depth 0",
                                                         "depth_3": "depth 0 times a random orthogonal matrix",
                                                         "depth_4": "depth 0 times a general invertible matrix",
                                                         "depth_5": "independent Gaussian noise"])),
            clips: n, tokens: t, features: d, layers: layers,
            labels: ["planted": planted, "random": random],
            positions: gridPositions(slots: 2, grid: 2, tubelet: 2, patch: 16))
    }

    // MARK: spectrum.h5

    /// Eigenvalues of the clip-vector covariance at each depth of `spectrum.h5` (depth 3 has zero variance).
    public static let spectrumEigenvalues: [[Double]] = [
        [1, 1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 0, 0, 0, 0, 0],
        [8, 4, 2, 1, 0.5, 0.25, 0.125, 0.0625],
        [0, 0, 0, 0, 0, 0, 0, 0],
    ]

    /// Clip vectors (means over tokens) whose covariance XcᵀXc/(N−1) is exactly diag(λ) for the
    /// λ of `spectrumEigenvalues`; tokens add per-clip deviations that sum to zero over each clip.
    public static func spectrum() -> FixtureFile {
        let n = 64, t = 4, d = 8
        var rng = SeededGenerator(seed: 202)
        let z = FixtureMath.orthonormalColumns(FixtureMath.gaussian(n, d, &rng), m: n, n: d, orthogonalToOnes: true)
        let offset = FixtureMath.gaussian(1, d, &rng, scale: 3)
        var layers: [[Float]] = []
        for lambdas in spectrumEigenvalues {
            var v = [Double](repeating: 0, count: n * d)
            for i in 0..<n { for j in 0..<d { v[i * d + j] = offset[j] + z[i * d + j] * (Double(n - 1) * lambdas[j]).squareRoot() } }
            var tok = [Double](repeating: 0, count: n * t * d)
            for i in 0..<n {
                let dev = FixtureMath.gaussian(t, d, &rng, scale: 0.5)
                for j in 0..<d {
                    var mean = 0.0
                    for k in 0..<t { mean += dev[k * d + j] }
                    mean /= Double(t)
                    for k in 0..<t { tok[(i * t + k) * d + j] = v[i * d + j] + dev[k * d + j] - mean }
                }
            }
            layers.append(FixtureMath.toFloat(tok))
        }
        return FixtureFile(
            name: "spectrum.h5",
            metadata: ActivationMetadata(run: "fixture-spectrum", regime: Regime.external.rawValue, blockEnds: [3],
                                         probeSet: "planted", step: 0, seed: 202,
                                         config: config(["fixture": "spectrum",
                                                         "clip_vector_covariance": "diag of spectrumEigenvalues per depth; depth 3 constant clips"])),
            clips: n, tokens: t, features: d, layers: layers,
            labels: ["group": (0..<n).map { $0 % 4 }],
            positions: gridPositions(slots: 1, grid: 2, tubelet: 2, patch: 16))
    }

    // MARK: attention.h5

    /// Hand-made attention over 8 tokens (2 tubelet slots of 2 frames × 2×2 patches of 16 px):
    /// layer 1 head 0 identity, head 1 uniform; layer 2 head 0 "same patch, other slot",
    /// head 1 "horizontal neighbour, same slot"; layer 3 head 0 half self / half diagonal neighbour,
    /// head 1 uniform over the same slot.
    public static func attention() -> FixtureFile {
        let n = 4, t = 8, d = 4, heads = 2
        var rng = SeededGenerator(seed: 303)
        let layers = (0...3).map { _ in FixtureMath.toFloat(FixtureMath.gaussian(n * t, d, &rng)) }
        func slot(_ i: Int) -> Int { i / 4 }
        func row(_ i: Int) -> Int { (i % 4) / 2 }
        func col(_ i: Int) -> Int { i % 2 }
        func token(_ s: Int, _ r: Int, _ c: Int) -> Int { s * 4 + r * 2 + c }
        typealias Pattern = (Int, Int) -> Float
        let patterns: [Int: [Pattern]] = [
            1: [{ q, k in q == k ? 1 : 0 }, { _, _ in 1.0 / 8 }],
            2: [{ q, k in k == token(1 - slot(q), row(q), col(q)) ? 1 : 0 },
                { q, k in k == token(slot(q), row(q), 1 - col(q)) ? 1 : 0 }],
            3: [{ q, k in (k == q || k == token(slot(q), 1 - row(q), 1 - col(q))) ? 0.5 : 0 },
                { q, k in slot(k) == slot(q) ? 0.25 : 0 }],
        ]
        var attention: [Int: (heads: Int, clips: Int, values: [Float])] = [:]
        for (depth, hs) in patterns {
            var a: [Float] = []
            for _ in 0..<n { for h in 0..<heads { for q in 0..<t { for k in 0..<t { a.append(hs[h](q, k)) } } } }
            attention[depth] = (heads, n, a)
        }
        var file = FixtureFile(
            name: "attention.h5",
            metadata: ActivationMetadata(run: "fixture-attention", regime: Regime.simultaneous.rawValue, blockEnds: [1, 2, 3],
                                         probeSet: "planted", step: 0, seed: 303,
                                         config: config(["fixture": "attention", "tubelet": "2x16x16", "grid": "2x2x2"])),
            clips: n, tokens: t, features: d, layers: layers,
            labels: ["class": (0..<n).map { $0 % 2 }],
            positions: gridPositions(slots: 2, grid: 2, tubelet: 2, patch: 16))
        file.attention = attention
        return file
    }

    // MARK: run-a.h5, run-b.h5

    /// Two runs over the same 80 clips and labels: run B's depth d is run A's depth d times a
    /// random orthogonal matrix plus small noise (cross-run CKA near 1 at matching depths).
    public static func runPair() -> (a: FixtureFile, b: FixtureFile) {
        let n = 80, t = 6, d = 10, depths = 5
        var rng = SeededGenerator(seed: 404)
        let motion = (0..<n).map { $0 % 4 }
        let object = (0..<n).map { ($0 / 4) % 2 }
        var a: [[Double]] = []
        var current = FixtureMath.gaussian(n * t, d, &rng)
        for i in 0..<n { for j in 0..<t { current[(i * t + j) * d + motion[i]] += 2; current[(i * t + j) * d + 4 + object[i]] += 1 } }
        for _ in 0..<depths {
            a.append(current)
            var m = FixtureMath.gaussian(d, d, &rng, scale: 0.4)
            for i in 0..<d { m[i * d + i] += 1 }
            current = FixtureMath.multiply(current, m, m: n * t, k: d, n: d).map { $0 + 0.1 * rng.nextGaussian() }
        }
        let b = a.map { layer -> [Double] in
            let q = FixtureMath.randomOrthogonal(d, &rng)
            return FixtureMath.multiply(layer, q, m: n * t, k: d, n: d).map { $0 + 0.05 * rng.nextGaussian() }
        }
        let labels = ["motion": motion, "object": object]
        let positions = gridPositions(slots: 3, grid: 1, tubelet: 2, patch: 16) + gridPositions(slots: 3, grid: 1, tubelet: 2, patch: 16)
        let steps = [0, 10, 20, 30]
        let curveB = TrainingCurve(steps: steps, loss: [1.0, 1.0, 0.8, 0.9, 0.7, 0.85, 0.65, 0.8], blocks: 2)
        let fa = FixtureFile(
            name: "run-a.h5",
            metadata: ActivationMetadata(run: "fixture-run-a", regime: Regime.e2e.rawValue, blockEnds: [2, 4], probeSet: "pair",
                                         step: 30, seed: 404, config: config(["fixture": "run-a"])),
            clips: n, tokens: t, features: d, layers: a.map(FixtureMath.toFloat), labels: labels,
            positions: Array(positions.prefix(t * 3)))
        var fb = FixtureFile(
            name: "run-b.h5",
            metadata: ActivationMetadata(run: "fixture-run-b", regime: Regime.simultaneous.rawValue, blockEnds: [2, 4], probeSet: "pair",
                                         step: 30, seed: 405, config: config(["fixture": "run-b"])),
            clips: n, tokens: t, features: d, layers: b.map(FixtureMath.toFloat), labels: labels,
            positions: Array(positions.prefix(t * 3)))
        fb.training = curveB
        return (fa, fb)
    }

    // MARK: precision-f16.h5, precision-f64.h5

    /// The same values (multiples of 1/8 in [-4, 4], exact in float16) stored as float16 or float64.
    public static func precision(_ type: ElementType) -> FixtureFile {
        let n = 16, t = 4, d = 4
        var rng = SeededGenerator(seed: 505)
        let layers = (0...1).map { _ in (0..<(n * t * d)).map { _ in Float(Int(rng.next() % 65) - 32) / 8 } }
        var f = FixtureFile(
            name: type == .float16 ? "precision-f16.h5" : "precision-f64.h5",
            metadata: ActivationMetadata(run: "fixture-precision", regime: Regime.external.rawValue, blockEnds: [1], probeSet: "planted",
                                         step: 0, seed: 505, config: config(["fixture": "precision", "dtype": type.rawValue])),
            clips: n, tokens: t, features: d, layers: layers,
            labels: ["class": (0..<n).map { $0 % 2 }],
            positions: gridPositions(slots: 1, grid: 2, tubelet: 2, patch: 16))
        f.tokenType = type
        return f
    }
}
