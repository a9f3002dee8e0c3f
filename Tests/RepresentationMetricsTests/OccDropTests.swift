import LinearAlgebra
import RepresentationMetrics
import XCTest

/// OccDrop against hand computations on data where every probe's predictions are known.
final class OccDropTests: XCTestCase {
    /// Six clips, one feature: class 0 near −1, class 1 near +1. Every training fold of the 3 stratified
    /// folds holds two clips of each class, so its mean lies within 0.1 of 0 and the fitted probe
    /// predicts the sign of the feature: every full clip is classified correctly.
    let labels = [0, 0, 0, 1, 1, 1]
    let full = Matrix(rows: 6, cols: 1, storage: [-1.0, -1.1, -0.9, 1.0, 1.1, 0.9])

    func testTransferCountsTheOnePatchClipsThatCrossTheBoundary() throws {
        // One-patch versions: clips 0 and 3 land on the other side, the rest stay (scaled by 0.5).
        let onePatch = Matrix(rows: 6, cols: 1, storage: [0.5, -0.55, -0.45, -0.5, 0.55, 0.45])
        let r = try OccDrop.evaluate(full: full, onePatch: onePatch, labels: labels, protocol: .transfer)
        // acc_all = 6/6; acc_one = 4/6 (clips 0 and 3 wrong); OccDrop = (1 − 4/6) / 1 = 1/3.
        XCTAssertEqual(r.accuracyFull, 1)
        XCTAssertEqual(r.accuracyOnePatch, 4.0 / 6.0, accuracy: 1e-15)
        XCTAssertEqual(try r.occDrop(), 1.0 / 3.0, accuracy: 1e-15)
    }

    func testRetrainOnAScaledCopyLosesNothing() throws {
        // Standardisation removes the scale: the retrained probes predict exactly as the full ones.
        let onePatch = Matrix(rows: 6, cols: 1, storage: full.storage.map { 3 * $0 })
        let r = try OccDrop.evaluate(full: full, onePatch: onePatch, labels: labels, protocol: .retrain)
        XCTAssertEqual(r.accuracyFull, 1)
        XCTAssertEqual(r.accuracyOnePatch, 1)
        XCTAssertEqual(try r.occDrop(), 0)
    }

    func testRetrainOnAMirroredCopyLearnsTheMirror() throws {
        // Every one-patch clip negated: transfer gets all of them wrong, retraining learns the flipped sign.
        let onePatch = Matrix(rows: 6, cols: 1, storage: full.storage.map { -$0 })
        let transfer = try OccDrop.evaluate(full: full, onePatch: onePatch, labels: labels, protocol: .transfer)
        XCTAssertEqual(transfer.accuracyOnePatch, 0)
        XCTAssertEqual(try transfer.occDrop(), 1)
        let retrain = try OccDrop.evaluate(full: full, onePatch: onePatch, labels: labels, protocol: .retrain)
        XCTAssertEqual(retrain.accuracyOnePatch, 1)
    }

    func testLabelsNeedNotBeDense() throws {
        let onePatch = Matrix(rows: 6, cols: 1, storage: [0.5, -0.55, -0.45, -0.5, 0.55, 0.45])
        let dense = try OccDrop.evaluate(full: full, onePatch: onePatch, labels: labels, protocol: .transfer)
        let sparse = try OccDrop.evaluate(full: full, onePatch: onePatch, labels: labels.map { $0 * 7 + 2 }, protocol: .transfer)
        XCTAssertEqual(dense, sparse)
    }

    func testFullAccuracyAgreesWithThePooledCrossValidation() throws {
        // acc_all is the pooled out-of-fold accuracy of LinearProbe.crossValidate on the same folds.
        var g = SeededGenerator(seed: 3)
        let n = 30, d = 4
        let y = (0..<n).map { $0 % 3 }
        let x = Matrix(rows: n, cols: d, storage: (0..<(n * d)).map { i in Double(y[i / d]) * (i % d == 0 ? 1 : 0) + g.nextGaussian() })
        let cv = try LinearProbe.crossValidate(x, labels: y)
        let pooled = Double(zip(cv.predictions, y).filter { $0 == $1 }.count) / Double(n)
        let r = try OccDrop.evaluate(full: x, onePatch: x, labels: y, protocol: .transfer)
        XCTAssertEqual(r.accuracyFull, pooled)
        XCTAssertEqual(r.accuracyOnePatch, pooled)
    }

    func testUndefinedCases() {
        XCTAssertThrowsError(try OccDropResult(accuracyFull: 0, accuracyOnePatch: 0).occDrop()) { e in
            XCTAssertEqual("\(e)", "accuracy on full clips is 0")
        }
        // Two clips of a class cannot fill 3 folds.
        let x = Matrix(rows: 4, cols: 1, storage: [-1, -1.1, 1, 1.1])
        XCTAssertThrowsError(try OccDrop.evaluate(full: x, onePatch: x, labels: [0, 0, 1, 1], protocol: .transfer))
        XCTAssertThrowsError(try OccDrop.evaluate(full: x, onePatch: Matrix(rows: 3, cols: 1), labels: [0, 0, 1, 1], protocol: .transfer))
    }
}
