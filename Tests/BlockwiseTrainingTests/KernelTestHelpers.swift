import LinearAlgebra
import XCTest

/// `count` standard normal draws times `scale`.
func gaussians(_ count: Int, _ rng: inout SeededGenerator, scale: Double = 1) -> [Double] {
    (0..<count).map { _ in scale * rng.nextGaussian() }
}

/// Every entry rounded to the nearest Float, so Float and Double kernels can be fed the same numbers.
func floatRepresentable(_ x: [Double]) -> [Double] { x.map { Double(Float($0)) } }

/// Σᵢ aᵢ bᵢ (a plain loop: the reference side of a test should not share code with the kernels).
func innerProduct(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    var s = 0.0
    for i in a.indices { s += a[i] * b[i] }
    return s
}

/// Central differences of a scalar function: (f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h for every coordinate i.
///
/// Error: truncation h²/6 · |f'''| (~1e-13 at h = 1e-6 for the O(1) derivatives of these tests) plus
/// rounding u · |f| / h (u = 1.1e-16, so ~1e-10 · |f|, below 1e-8 for the |f| ≲ 100 of these tests).
func centralDifferences(_ x: [Double], step h: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
    var y = x
    var grad = [Double](repeating: 0, count: x.count)
    for i in x.indices {
        y[i] = x[i] + h
        let plus = f(y)
        y[i] = x[i] - h
        let minus = f(y)
        y[i] = x[i]
        grad[i] = (plus - minus) / (2 * h)
    }
    return grad
}

/// Asserts |analytic − numeric| ≤ relative · max(|analytic|, |numeric|) + absolute elementwise; on failure
/// prints the first mismatches as (index, analytic, numeric).
///
/// Defaults: the finite differences are good to ~1e-8 absolute (see `centralDifferences`), so 1e-8 absolute
/// plus 1e-6 relative passes a right gradient, while any formula mistake (a missing term, a wrong scale, a
/// transposed product) is off by O(1) relative.
func assertClose(
    _ name: String, _ analytic: [Double], _ numeric: [Double], relative: Double = 1e-6, absolute: Double = 1e-8,
    file: StaticString = #filePath, line: UInt = #line
) {
    guard analytic.count == numeric.count else {
        XCTFail("\(name): \(analytic.count) analytic vs \(numeric.count) numeric values", file: file, line: line)
        return
    }
    var mismatches: [String] = []
    var count = 0
    for i in analytic.indices {
        let a = analytic[i], n = numeric[i]
        if !(abs(a - n) <= relative * max(abs(a), abs(n)) + absolute) {
            count += 1
            if mismatches.count < 5 { mismatches.append("[\(i)] analytic \(a) numeric \(n)") }
        }
    }
    if count > 0 {
        XCTFail("\(name): \(count) of \(analytic.count) mismatch; first: " + mismatches.joined(separator: ", "),
                file: file, line: line)
    }
}

/// max |xᵢ|.
func maxAbs(_ x: [Double]) -> Double { x.reduce(0) { max($0, abs($1)) } }
