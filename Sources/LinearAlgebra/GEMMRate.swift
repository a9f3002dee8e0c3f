/// The machine's measured matrix-product rate, the yardstick benchmarks print their figures beside.
public enum GEMMRate {
    /// Best of `repeats` n×n×n products through BLAS, in GFLOP/s (2n³ flops each).
    public static func measure<S: BLASOps>(_ type: S.Type, n: Int = 2048, repeats: Int = 3) -> Double {
        var g = SeededGenerator(seed: 1)
        let a = Matrix<S>(rows: n, cols: n) { _, _ in S(g.nextUniform()) }
        let b = Matrix<S>(rows: n, cols: n) { _, _ in S(g.nextUniform()) }
        var best = Double.infinity
        for _ in 0..<repeats {
            let took = ContinuousClock().measure { _ = Matrix.product(a, b) }
            best = min(best, took.seconds)
        }
        return 2 * Double(n) * Double(n) * Double(n) / best / 1e9
    }
}
