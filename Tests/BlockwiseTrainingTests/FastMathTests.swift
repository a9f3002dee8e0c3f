@testable import BlockwiseTraining
import Foundation
import XCTest

/// The Float GELU's erf and exp approximations against libm in Double, on dense grids.
final class FastMathTests: XCTestCase {
    /// |fastErf(x) − erf(x)| ≤ 5e-7 over [−8, 8] (measured: 4.2e-7 near |x| = 3.3), exactly ±1 beyond ±4
    /// where Float's erf rounds to ±1 anyway, and odd.
    func testFastErfIsWithinItsStatedError() {
        var worst = 0.0
        for i in 0...160_000 {
            let x = Float(-8 + Double(i) * 1e-4)
            let error = abs(Double(Kernels.fastErf(x)) - erf(Double(x)))
            worst = max(worst, error)
            XCTAssertEqual(Kernels.fastErf(-x), -Kernels.fastErf(x))
        }
        XCTAssertLessThanOrEqual(worst, 5e-7)
        XCTAssertEqual(Kernels.fastErf(0), 0)
        XCTAssertEqual(abs(Kernels.fastErf(5) - 1), 0, accuracy: 1e-7)
    }

    /// fastExp(y) within 1.2e-7 relative (2 ulps) of exp(y) over [−87, 0]; 1 at 0; no trap on −∞ or NaN.
    func testFastExpIsWithinItsStatedError() {
        var worst = 0.0
        for i in 0...174_000 {
            let y = Float(-87 + Double(i) * 5e-4)
            let exact = exp(Double(y))
            worst = max(worst, abs(Double(Kernels.fastExp(y)) - exact) / exact)
        }
        XCTAssertLessThanOrEqual(worst, 1.2e-7)
        XCTAssertEqual(Kernels.fastExp(0), 1)
        XCTAssertLessThan(Kernels.fastExp(-Float.infinity), 1e-37)
        _ = Kernels.fastExp(.nan)
    }
}
