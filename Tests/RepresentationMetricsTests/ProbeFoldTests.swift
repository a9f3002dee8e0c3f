import LinearAlgebra
import RepresentationMetrics
import XCTest

/// Cross-validation one outer fold at a time (`LinearProbe.crossValidation`, `fold`, `combine`), the
/// form in which `bwanalyze probe` spreads fits over threads and ranks.
final class ProbeFoldTests: XCTestCase {
    /// Noisy classes, so that folds differ in accuracy and C matters.
    func data() -> (Matrix<Double>, [Int]) {
        var g = SeededGenerator(seed: 21)
        let labels = (0..<45).map { $0 % 3 }
        let x = Matrix<Double>(rows: 45, cols: 6) { i, j in g.nextGaussian() + (j == labels[i] ? 1.0 : 0) }
        return (x, labels.map { $0 * 7 + 2 })   // sparse class ids, made dense by the plan
    }

    /// Folds fitted in any order, each on its own, combine to what one call returns.
    func testFoldsInAnyOrderCombineToOneCall() throws {
        let (x, labels) = data()
        let options = ProbeOptions(c: 0.3, maxIterations: 500, folds: 3, seed: 4)
        let cv = try LinearProbe.crossValidation(x, labels: labels, options: options)
        var outcomes = [LinearProbe.FoldOutcome?](repeating: nil, count: cv.folds.count)
        for k in cv.folds.indices.reversed() { outcomes[k] = try LinearProbe.fold(k, of: cv, x: x) }
        let (c, combined) = LinearProbe.combine(outcomes.map { $0! }, of: cv)
        XCTAssertNil(c)
        XCTAssertEqual(combined, try LinearProbe.crossValidate(x, labels: labels, options: options))
        XCTAssertTrue(combined.predictions.allSatisfy { (0..<3).contains($0) })

        let grid = [10, 0.01, 1]
        let withGrid = try LinearProbe.crossValidation(x, labels: labels, options: options, grid: grid)
        XCTAssertEqual(withGrid.grid, [0.01, 1, 10])
        let folds = try withGrid.folds.indices.reversed().map { try LinearProbe.fold($0, of: withGrid, x: x) }.reversed()
        let (chosen, result) = LinearProbe.combine(Array(folds), of: withGrid)
        let one = try LinearProbe.selectC(x, labels: labels, grid: grid, options: options)
        XCTAssertEqual(chosen, one.c)
        XCTAssertEqual(result, one.result)
    }

    /// The plan makes the checks one call makes, with the same errors.
    func testThePlanRefusesWhatOneCallRefuses() {
        let (x, labels) = data()
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return "\(error)" }
        }
        for bad in [[Double](), [1, -2]] {
            let planned = message { _ = try LinearProbe.crossValidation(x, labels: labels, options: ProbeOptions(), grid: bad) }
            XCTAssertNotEqual(planned, "no error")
            XCTAssertEqual(planned, message { _ = try LinearProbe.selectC(x, labels: labels, grid: bad, options: ProbeOptions()) })
        }
        let one = [Int](repeating: 5, count: 45)
        XCTAssertThrowsError(try LinearProbe.crossValidation(x, labels: one, options: ProbeOptions())) { e in
            XCTAssertTrue("\(e)".contains("fewer than 2 classes"), "\(e)")
        }
    }
}
