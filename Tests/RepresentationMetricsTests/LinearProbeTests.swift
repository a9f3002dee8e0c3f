import Foundation
import LinearAlgebra
@testable import RepresentationMetrics
import XCTest

/// The deterministic dataset shared with the scikit-learn reference script (same formula on both sides):
/// y[i] = (i² + ⌊i/2⌋) mod k, x[i][j] = sin(1.3i + 0.7j) + 0.6·cos(i·j) + 0.25·[j = y[i]] for j < 6,
/// then column 4 ×10 and column 5 := 2 (a constant feature, scale 1 after standardisation).
private enum ReferenceData {
    static func make(n: Int, classes k: Int) -> (x: Matrix<Double>, y: [Int]) {
        let y = (0..<n).map { (($0 * $0) + $0 / 2) % k }
        var x = Matrix<Double>(rows: n, cols: 6) { i, j in
            sin(1.3 * Double(i) + 0.7 * Double(j)) + 0.6 * cos(Double(i * j)) + (j == y[i] ? 0.25 : 0)
        }
        for i in 0..<n { x[i, 4] *= 10; x[i, 5] = 2 }
        return (x, y)
    }
}

/// Gaussian blobs: class c (of `classes`) centred at `separation`·e_c, unit variance, `perClass` clips each,
/// rows interleaved by class.
private func blobs(perClass: Int, classes: Int, dimensions: Int, separation: Double, seed: UInt64) -> (Matrix<Double>, [Int]) {
    var g = SeededGenerator(seed: seed)
    let n = perClass * classes
    let labels = (0..<n).map { $0 % classes }
    let x = Matrix<Double>(rows: n, cols: dimensions) { i, j in
        (j == labels[i] ? separation : 0) + g.nextGaussian()
    }
    return (x, labels)
}

final class LinearProbeTests: XCTestCase {
    // MARK: objective

    /// The analytic gradient equals central finite differences of the objective.
    /// Step h = 1e-5: truncation error O(h²·|f‴|) ≈ 1e-10 and rounding ≈ ε·|f|/h ≈ 1e-10 for |f| ≈ 50,
    /// so 1e-6 (relative to max(1, |g|)) leaves a wide margin yet catches any wrong term (e.g. a missing
    /// 1/C or bias term is O(0.1–1)).
    func testGradientMatchesCentralFiniteDifferences() {
        var g = SeededGenerator(seed: 7)
        let n = 20, d = 4, k = 3
        let x = Matrix<Double>(rows: n, cols: d) { _, _ in g.nextGaussian() }
        let labels = (0..<n).map { _ in Int(g.next() % UInt64(k)) }
        let theta = (0..<(d * k + k)).map { _ in 0.7 * g.nextGaussian() }
        for inverseC in [1.0, 0.5] {
            var gradient = [Double](repeating: 0, count: theta.count)
            let f = LinearProbe.objective(theta: theta, x: x, labels: labels, classes: k, inverseC: inverseC, gradient: &gradient)
            XCTAssertTrue(f.isFinite && f > 0)
            var scratch = gradient
            let h = 1e-5
            for p in theta.indices {
                var plus = theta, minus = theta
                plus[p] += h; minus[p] -= h
                let fp = LinearProbe.objective(theta: plus, x: x, labels: labels, classes: k, inverseC: inverseC, gradient: &scratch)
                let fm = LinearProbe.objective(theta: minus, x: x, labels: labels, classes: k, inverseC: inverseC, gradient: &scratch)
                let numeric = (fp - fm) / (2 * h)
                XCTAssertEqual(gradient[p], numeric, accuracy: 1e-6 * max(1, abs(numeric)), "parameter \(p), 1/C = \(inverseC)")
            }
        }
    }

    /// The objective at W = 0, b = 0 is N·log C exactly (uniform softmax, no penalty): a closed form.
    func testObjectiveAtZeroIsNLogC() {
        let (x, y) = ReferenceData.make(n: 30, classes: 4)
        var gradient = [Double](repeating: 0, count: 6 * 4 + 4)
        let f = LinearProbe.objective(theta: [Double](repeating: 0, count: 28), x: x, labels: y, classes: 4, inverseC: 1,
                                      gradient: &gradient)
        XCTAssertEqual(f, 30 * log(4.0), accuracy: 1e-12)
    }

    // MARK: planted structure

    /// Blobs 12 std apart along different axes: the Bayes error is ≈ 0 (a clip crosses the midway
    /// hyperplane with probability Φ(−12/√2 ≈ −8.5) ≈ 1e-17), so every fold must score exactly 1.
    func testSeparableBlobsGiveFullAccuracy() throws {
        let (x, labels) = blobs(perClass: 30, classes: 3, dimensions: 5, separation: 12, seed: 1)
        let result = try LinearProbe.crossValidate(x, labels: labels)
        XCTAssertEqual(result.foldAccuracies, [1, 1, 1])
        XCTAssertEqual(result.mean, 1)
        XCTAssertEqual(result.std, 0)
        XCTAssertTrue(result.converged)
        XCTAssertGreaterThan(result.maxIterations, 0)
        XCTAssertEqual(result.classes, 3)
        XCTAssertEqual(result.samples, 90)
    }

    /// Labels drawn independently of the features: the expected test accuracy is 1/3 whatever the fit.
    /// Each fold scores 100 clips, so its accuracy has sd ≈ √(1/3·2/3/100) ≈ 0.047 and the 3-fold mean
    /// sd ≈ 0.027; the ±0.15 band is > 5 sd (and the data are fixed by the seed, so the test is not flaky).
    /// A probe that leaked test labels or evaluated on training clips would score well above the band
    /// (10 features, 100 clips per class: training accuracy is ≈ 0.45–0.5).
    func testRandomLabelsGiveChanceAccuracy() throws {
        var g = SeededGenerator(seed: 11)
        let n = 300
        let x = Matrix<Double>(rows: n, cols: 10) { _, _ in g.nextGaussian() }
        var labels = (0..<n).map { $0 % 3 }
        for i in stride(from: n - 1, to: 0, by: -1) { labels.swapAt(i, Int(g.next() % UInt64(i + 1))) }
        let result = try LinearProbe.crossValidate(x, labels: labels)
        XCTAssertEqual(result.mean, 1.0 / 3.0, accuracy: 0.15)
        XCTAssertTrue(result.converged)
        // Training accuracy on the same data is above chance (the probe does fit), which the CV must not report.
        let fit = try LinearProbe.fit(x, labels: labels, classes: 3)
        let train = zip(fit.predict(x), labels).filter { $0.0 == $0.1 }.count
        XCTAssertGreaterThan(Double(train) / Double(n), result.mean)
    }

    // MARK: scikit-learn

    // Reference values from scikit-learn 1.2.1 / scipy (Debian's /usr/bin/python3), produced by:
    //
    //   import numpy as np
    //   from scipy.optimize import minimize
    //   from sklearn.linear_model import LogisticRegression
    //   from sklearn.preprocessing import StandardScaler
    //   def data(n, k):  # = ReferenceData.make(n:classes:) in Swift
    //       y = np.array([(i * i + i // 2) % k for i in range(n)])
    //       x = np.array([[np.sin(1.3*i + 0.7*j) + 0.6*np.cos(i*j) + 0.25*(j == y[i]) for j in range(6)] for i in range(n)])
    //       x[:, 4] *= 10; x[:, 5] = 2.0
    //       return x, y
    //   def objective(t, X, y, k):  # sum of -log softmax + ||W||^2/2 (C = 1), and its gradient
    //       D = X.shape[1]; W = t[:D*k].reshape(D, k); b = t[D*k:]
    //       Z = X @ W + b; m = Z.max(1, keepdims=True); E = np.exp(Z - m); S = E.sum(1, keepdims=True)
    //       f = (m[:, 0] + np.log(S[:, 0]) - Z[np.arange(len(y)), y]).sum() + 0.5*(W**2).sum()
    //       P = E/S; P[np.arange(len(y)), y] -= 1
    //       return f, np.concatenate([(X.T @ P + W).ravel(), P.sum(0)])
    //   for k in (3, 2):
    //       x, y = data(90, k); X = StandardScaler().fit_transform(x)
    //       lr = LogisticRegression(C=1.0, max_iter=1000, tol=1e-10, multi_class='multinomial').fit(X, y)
    //       W = lr.coef_.T if k > 2 else np.hstack([-lr.coef_.T, lr.coef_.T])
    //       b = lr.intercept_ if k > 2 else np.array([-lr.intercept_[0], lr.intercept_[0]])
    //       print(k, 'sklearn W', W.ravel().tolist(), 'b', b.tolist(), 'f', repr(objective(np.concatenate([W.ravel(), b]), X, y, k)[0]),
    //             'accuracy', lr.score(X, y))
    //       r = minimize(objective, np.zeros(7*k), args=(X, y, k), jac=True, method='L-BFGS-B',
    //                    options=dict(gtol=1e-13, ftol=0, maxiter=10000))
    //       print(k, 'tight W', r.x[:6*k].tolist(), 'b', r.x[6*k:].tolist(), 'f', repr(r.fun), 'max|g|', abs(r.jac).max())
    //   x, y = data(90, 3); s = StandardScaler().fit(x[:60])
    //   lr = LogisticRegression(C=1.0, max_iter=1000, tol=1e-10).fit(s.transform(x[:60]), y[:60])
    //   d = np.sort(lr.decision_function(s.transform(x[60:])), 1)
    //   print('test predictions', lr.predict(s.transform(x[60:])).tolist(), 'accuracy', lr.score(s.transform(x[60:]), y[60:]),
    //         'smallest top-2 margin', (d[:, -1] - d[:, -2]).min())
    //
    // Two references per case: sklearn's own fit, and a tight solve of the same objective (scipy L-BFGS-B,
    // ftol = 0, gtol = 1e-13; it stopped at max|∇| ≈ 2e-7; the Hessian is ⪰ I, so that point is within
    // ≈ ‖∇‖₂ ≈ 5e-7 of the optimum, and its objective within ½‖∇‖² ≈ 1e-13 plus rounding (≈ 1e-14·|f|)).
    // sklearn 1.2 cannot pass ftol, so it stops at scipy's default relative decrease 2.2e-9: its W is 7.1e-5
    // (3 classes) / 4e-6 (2 classes) from the tight optimum and its objective 8.6e-10 relative above it.
    // Hence the tolerances. A default fit stops by sklearn's default rule (max|∇| ≤ 1e-4 or relative
    // decrease ≤ 2.2e-9; the sklearn references above were made with tol=1e-10, so they stopped on the
    // decrease): it is held within 2e-4 of sklearn's W, b and of the optimum, objective within 1e-8
    // relative of sklearn's. A fit with `tightOptions` is held to the tight solve:
    // 1e-6 on W, b and 1e-12 relative on the objective (we measured 1e-7 and 3e-14).
    private static let sklearnW3: [Double] = [
        1.7038413764799463, -1.10300635594482, -0.600835020535127, -1.265688685474059, 0.9855712047421397,
        0.2801174807319204, 0.18620535308092065, -0.3095228545276838, 0.12331750144676357, 0.46675931798274345,
        -0.115445346602596, -0.3513139713801477, 0.521109862591774, -0.4433149183715118, -0.07779494422026222,
        0.0, 0.0, 0.0,
    ]
    private static let sklearnB3: [Double] = [0.4626317927521875, 0.015211183526046694, -0.4778429762782363]
    private static let sklearnF3 = 69.86161340693167
    private static let tightW3: [Double] = [
        1.7039106535070623, -1.1030048714871679, -0.6009057820198942, -1.2657019314527296, 0.985549135886338,
        0.2801527955663919, 0.1861729287312773, -0.30947142536774896, 0.12329849663647123, 0.4668213606108775,
        -0.1155013688049143, -0.3513199918059635, 0.5211183268973245, -0.4433032106153097, -0.07781511628201458,
        0.0, 0.0, 0.0,
    ]
    private static let tightB3: [Double] = [0.46262959029624023, 0.015214314855578542, -0.477843905151821]
    private static let tightF3 = 69.86161334673892

    private static let sklearnW2: [Double] = [
        0.9433447716039673, -0.9433447716039673, -0.6410706197872266, 0.6410706197872266, 0.03830739907691788,
        -0.03830739907691788, 0.24265565561659203, -0.24265565561659203, 0.3475053490819912, -0.3475053490819912,
        0.0, 0.0,
    ]
    private static let sklearnB2: [Double] = [-0.010727788343489355, 0.010727788343489355]
    private static let sklearnF2 = 51.16936073520442
    private static let tightW2: [Double] = [
        0.9433494415224696, -0.9433494415224696, -0.6410742529043703, 0.6410742529043701, 0.03828457745930167,
        -0.038284577459301736, 0.2426947974788882, -0.24269479747888814, 0.34748259488393357, -0.3474825948839334,
        0.0, 0.0,
    ]
    private static let tightB2: [Double] = [-0.010744808109078097, 0.01074480810907824]
    private static let tightF2 = 51.16936069507896

    /// Stopping far inside scikit-learn's: the fit then reaches the tight optimum computed above.
    private static let tightOptions = ProbeOptions(tolerance: 1e-8, functionTolerance: 64 * Double.ulpOfOne)

    /// `fit` (default options, scikit-learn's stopping rule) lies as close to scikit-learn's fit and to the
    /// exact optimum as scikit-learn's own; `tight` (`tightOptions`) reaches the exact optimum.
    private func assertMatches(_ fit: ProbeFit, tight: ProbeFit, sklearnW: [Double], sklearnB: [Double], sklearnF: Double,
                               tightW: [Double], tightB: [Double], tightF: Double, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(fit.converged, file: file, line: line)
        XCTAssertTrue(tight.converged, file: file, line: line)
        XCTAssertEqual(fit.weights.storage.count, sklearnW.count, file: file, line: line)
        XCTAssertEqual(tight.weights.storage.count, tightW.count, file: file, line: line)
        for p in sklearnW.indices {
            XCTAssertEqual(fit.weights.storage[p], sklearnW[p], accuracy: 2e-4, "W[\(p)] vs sklearn", file: file, line: line)
            XCTAssertEqual(fit.weights.storage[p], tightW[p], accuracy: 2e-4, "W[\(p)] vs the optimum", file: file, line: line)
            XCTAssertEqual(tight.weights.storage[p], tightW[p], accuracy: 1e-6, "W[\(p)] of the tight fit", file: file, line: line)
        }
        for j in sklearnB.indices {
            XCTAssertEqual(fit.bias[j], sklearnB[j], accuracy: 2e-4, "b[\(j)] vs sklearn", file: file, line: line)
            XCTAssertEqual(fit.bias[j], tightB[j], accuracy: 2e-4, "b[\(j)] vs the optimum", file: file, line: line)
            XCTAssertEqual(tight.bias[j], tightB[j], accuracy: 1e-6, "b[\(j)] of the tight fit", file: file, line: line)
        }
        XCTAssertEqual(fit.loss, sklearnF, accuracy: 1e-8 * sklearnF, file: file, line: line)
        XCTAssertGreaterThanOrEqual(fit.loss, tightF * (1 - 1e-12), file: file, line: line)
        XCTAssertEqual(tight.loss, tightF, accuracy: 1e-12 * tightF, file: file, line: line)
        XCTAssertLessThan(fit.iterations, tight.iterations, "the default tolerance stops before the tight one", file: file, line: line)
    }

    /// Three classes: W, b and the objective at the optimum agree with scikit-learn's multinomial fit.
    func testMatchesScikitLearnThreeClasses() throws {
        let (x, y) = ReferenceData.make(n: 90, classes: 3)
        let fit = try LinearProbe.fit(x, labels: y, classes: 3)
        let tight = try LinearProbe.fit(x, labels: y, classes: 3, options: Self.tightOptions)
        XCTAssertEqual(fit.scale[5], 1, "a constant feature gets scale 1")
        assertMatches(fit, tight: tight, sklearnW: Self.sklearnW3, sklearnB: Self.sklearnB3, sklearnF: Self.sklearnF3,
                      tightW: Self.tightW3, tightB: Self.tightB3, tightF: Self.tightF3)
    }

    /// Two classes: agrees with scikit-learn's default binary fit `LogisticRegression(C=1)` (one vector w;
    /// in our 2-column form W = [−w/2, w/2], b = [−b₀/2, b₀/2]), references from this script:
    ///
    ///   x, y = data(90, 2); X = StandardScaler().fit_transform(x)
    ///   lr = LogisticRegression(C=1.0, max_iter=1000, tol=1e-10).fit(X, y)
    ///   w = lr.coef_[0]; b0 = lr.intercept_[0]
    ///   W = np.stack([-w/2, w/2], 1); b = np.array([-b0/2, b0/2])    # objective below with inverse C = 2
    ///   print(W.ravel().tolist(), b.tolist(), objective2(np.concatenate([W.ravel(), b]), X, y), lr.score(X, y))
    ///   r = minimize(objective2, np.zeros(14), args=(X, y), jac=True, method='L-BFGS-B',
    ///                options=dict(gtol=1e-13, ftol=0, maxiter=10000))   # tight solve, max|g| 3.8e-9
    ///
    /// where objective2 is `objective` above with the penalty (W**2).sum() (inverse C = 2) and gradient X.T @ P + 2*W.
    func testMatchesScikitLearnTwoClasses() throws {
        let (x, y) = ReferenceData.make(n: 90, classes: 2)
        let fit = try LinearProbe.fit(x, labels: y, classes: 2)
        let tight = try LinearProbe.fit(x, labels: y, classes: 2, options: Self.tightOptions)
        assertMatches(fit, tight: tight, sklearnW: Self.sklearnW2, sklearnB: Self.sklearnB2, sklearnF: Self.sklearnF2,
                      tightW: Self.tightW2, tightB: Self.tightB2, tightF: Self.tightF2)
        // Binary training accuracy: sklearn's lr.score(X, y) is 0.7111111111111111 (= 64/90).
        let correct = zip(fit.predict(x), y).filter { $0.0 == $0.1 }.count
        XCTAssertEqual(correct, 64)
    }

    /// Train on clips 0..<60, test on 60..<90 (standardised with the training statistics): the same 30
    /// predictions as sklearn (smallest top-2 decision margin 0.039, far above our 2e-4 agreement in W).
    func testTrainTestMatchesScikitLearn() throws {
        let (x, y) = ReferenceData.make(n: 90, classes: 3)
        let expected = [0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1]
        let train = x.rows(0..<60), test = x.rows(60..<90)
        let fit = try LinearProbe.fit(train, labels: Array(y[0..<60]), classes: 3)
        XCTAssertEqual(fit.predict(test), expected)
        let result = try LinearProbe.trainTest(train: train, trainLabels: Array(y[0..<60]), test: test,
                                               testLabels: Array(y[60..<90]))
        XCTAssertEqual(result.foldAccuracies.count, 1)
        XCTAssertEqual(result.mean, 0.5666666666666667, accuracy: 1e-15)  // sklearn: 17/30
        XCTAssertEqual(result.std, 0)
        XCTAssertEqual(result.samples, 90)
        XCTAssertEqual(result.classes, 3)
    }

    /// An iteration budget too small to converge is reported as such (the reference fit needs more than 3).
    func testToleranceReachesTheSolver() throws {
        let (x, y) = ReferenceData.make(n: 90, classes: 3)
        // At W = 0, b = 0 the largest gradient component is below 1e3: a tolerance that loose accepts the start.
        let loose = try LinearProbe.fit(x, labels: y, classes: 3, options: ProbeOptions(tolerance: 1e3))
        XCTAssertTrue(loose.converged)
        XCTAssertEqual(loose.iterations, 0)
        XCTAssertEqual(loose.loss, 90 * log(3.0), accuracy: 1e-9, "the objective at zero")
        let result = try LinearProbe.crossValidate(x, labels: y, options: ProbeOptions(tolerance: 1e3))
        XCTAssertEqual(result.maxIterations, 0)
    }

    func testIterationBudgetIsReported() throws {
        let (x, y) = ReferenceData.make(n: 90, classes: 3)
        let fit = try LinearProbe.fit(x, labels: y, classes: 3, options: ProbeOptions(maxIterations: 3))
        XCTAssertFalse(fit.converged)
        XCTAssertEqual(fit.iterations, 3)
        let result = try LinearProbe.crossValidate(x, labels: y, options: ProbeOptions(maxIterations: 3))
        XCTAssertFalse(result.converged)
        XCTAssertEqual(result.maxIterations, 3)
    }

    /// Standardisation uses the population std (ddof 0): closed form on a tiny column.
    func testStandardisationIsPopulationStd() throws {
        let x = Matrix<Double>([[1, 5], [2, 5], [3, 5], [6, 5]])  // mean 3, var = (4+1+0+9)/4 = 3.5
        let fit = try LinearProbe.fit(x, labels: [0, 0, 1, 1], classes: 2)
        XCTAssertEqual(fit.mean, [3, 5])
        XCTAssertEqual(fit.scale[0], 3.5.squareRoot(), accuracy: 1e-15)
        XCTAssertEqual(fit.scale[1], 1)
        XCTAssertEqual(fit.bias.reduce(0, +), 0, accuracy: 1e-12)
    }

    // MARK: folds

    func testStratifiedFoldsArePartitionsBalancedAndDeterministic() throws {
        // Classes of sizes 10, 7, 0 (absent), 5, interleaved irregularly.
        var labels: [Int] = []
        for i in 0..<22 { labels.append(i < 10 ? 0 : i < 17 ? 1 : 3) }
        var g = SeededGenerator(seed: 3)
        for i in stride(from: labels.count - 1, to: 0, by: -1) { labels.swapAt(i, Int(g.next() % UInt64(i + 1))) }

        let folds = try LinearProbe.stratifiedFolds(labels: labels, folds: 3, seed: 0)
        XCTAssertEqual(folds.count, 3)
        XCTAssertEqual(folds.flatMap { $0 }.sorted(), Array(0..<22), "a partition of all indices")
        for fold in folds { XCTAssertEqual(fold, fold.sorted()) }
        for c in [0, 1, 3] {
            let counts = folds.map { fold in fold.filter { labels[$0] == c }.count }
            XCTAssertLessThanOrEqual(counts.max()! - counts.min()!, 1, "class \(c) per fold: \(counts)")
        }
        let sizes = folds.map(\.count)
        XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1, "fold sizes \(sizes)")

        XCTAssertEqual(try LinearProbe.stratifiedFolds(labels: labels, folds: 3, seed: 0), folds, "same seed, same folds")
        XCTAssertNotEqual(try LinearProbe.stratifiedFolds(labels: labels, folds: 3, seed: 1), folds, "the seed shuffles")
    }

    // MARK: undefined cases

    private func assertUndefined(_ mentions: [String], file: StaticString = #filePath, line: UInt = #line,
                                 _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected MetricUndefined mentioning \(mentions)", file: file, line: line)
        } catch let error as MetricUndefined {
            for m in mentions {
                XCTAssertTrue(error.reason.contains(m), "reason '\(error.reason)' should mention '\(m)'", file: file, line: line)
            }
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    func testUndefinedCasesThrowWithReason() {
        let (x, y) = ReferenceData.make(n: 30, classes: 3)
        // Class 2 has only 2 clips, fewer than 3 folds.
        var few = y.map { $0 == 2 ? 0 : $0 }
        few[0] = 2; few[1] = 2
        assertUndefined(["class 2", "2 clips", "3 folds"]) { _ = try LinearProbe.crossValidate(x, labels: few) }
        assertUndefined(["class 2", "2 clips"]) { _ = try LinearProbe.stratifiedFolds(labels: few, folds: 3, seed: 0) }
        // Fewer than 2 classes.
        assertUndefined(["fewer than 2 classes", "class 1"]) {
            _ = try LinearProbe.crossValidate(x, labels: [Int](repeating: 1, count: 30))
        }
        assertUndefined(["at least 2 classes"]) { _ = try LinearProbe.fit(x, labels: y, classes: 1) }
        // Labels count ≠ rows.
        assertUndefined(["29 labels", "30 rows"]) { _ = try LinearProbe.crossValidate(x, labels: Array(y.dropLast())) }
        // Negative label.
        var negative = y
        negative[4] = -1
        assertUndefined(["clip 4", "negative"]) { _ = try LinearProbe.crossValidate(x, labels: negative) }
        assertUndefined(["negative"]) { _ = try LinearProbe.stratifiedFolds(labels: negative, folds: 3, seed: 0) }
        // Label beyond the declared classes.
        assertUndefined(["outside 0..<2"]) { _ = try LinearProbe.fit(x, labels: y, classes: 2) }
        // NaN / Inf.
        var bad = x
        bad[3, 2] = .nan
        bad[5, 1] = .infinity
        assertUndefined(["2 non-finite"]) { _ = try LinearProbe.crossValidate(bad, labels: y) }
        assertUndefined(["test data", "non-finite"]) {
            _ = try LinearProbe.trainTest(train: x, trainLabels: y, test: bad, testLabels: y)
        }
        // Folds < 2.
        assertUndefined(["at least 2 folds", "got 1"]) {
            _ = try LinearProbe.crossValidate(x, labels: y, options: ProbeOptions(folds: 1))
        }
        assertUndefined(["at least 2 folds"]) { _ = try LinearProbe.stratifiedFolds(labels: y, folds: 0, seed: 0) }
        // Invalid C, empty grid, mismatched feature counts.
        assertUndefined(["C must be finite and > 0"]) { _ = try LinearProbe.fit(x, labels: y, classes: 3, options: ProbeOptions(c: 0)) }
        assertUndefined(["tolerance must be finite and > 0", "got 0"]) {
            _ = try LinearProbe.fit(x, labels: y, classes: 3, options: ProbeOptions(tolerance: 0))
        }
        assertUndefined(["functionTolerance", "nan"]) {
            _ = try LinearProbe.crossValidate(x, labels: y, options: ProbeOptions(functionTolerance: .nan))
        }
        assertUndefined(["grid", "empty"]) { _ = try LinearProbe.selectC(x, labels: y, grid: [], options: .init()) }
        assertUndefined(["6 features", "5"]) {
            _ = try LinearProbe.trainTest(train: x, trainLabels: y, test: Matrix(rows: 30, cols: 5), testLabels: y)
        }
        // Enough clips for the outer folds but not for the inner ones (3 clips of class 2: 2 per outer training set).
        var inner = y.map { $0 == 2 ? 0 : $0 }
        inner[0] = 2; inner[1] = 2; inner[2] = 2
        assertUndefined(["inner cross-validation", "class 2"]) {
            _ = try LinearProbe.selectC(x, labels: inner, grid: [1], options: .init())
        }
    }

    /// Class ids need not be contiguous (class 1 absent while class 2 exists, or ids far above N): the
    /// probe counts distinct classes and never sizes anything by an id.
    func testAbsentClassIndexIsAllowed() throws {
        let (x, labels) = blobs(perClass: 20, classes: 2, dimensions: 3, separation: 10, seed: 5)
        let shifted = labels.map { $0 == 1 ? 2 : 0 }
        let result = try LinearProbe.crossValidate(x, labels: shifted)
        XCTAssertEqual(result.classes, 2)
        XCTAssertEqual(result.mean, 1)
        XCTAssertTrue(result.converged)
        let huge = labels.map { $0 == 1 ? Int(Int64.max) : 1 << 40 }
        let far = try LinearProbe.crossValidate(x, labels: huge)
        XCTAssertEqual(far.classes, 2)
        XCTAssertEqual(far.mean, 1)
        let split = try LinearProbe.trainTest(train: x, trainLabels: huge, test: x, testLabels: huge)
        XCTAssertEqual(split.classes, 2)
        XCTAssertEqual(result.mean, 1)
        XCTAssertTrue(result.converged)
    }

    // MARK: choosing C

    /// Classes differ only along x₁ − x₂ (offset 4 per class) while x₁, x₂ share a nuisance of sd 10. A tiny
    /// C shrinks W towards the class-mean differences, which point along the noisy x₁ axis, so accuracy is
    /// near chance (sklearn, same construction with numpy noise: 0.32 at C = 1e-4, ≈ 0.93 at C = 1), while
    /// C = 1 recovers the x₁ − x₂ direction. selectC must pick 1 and report exactly the accuracies of
    /// crossValidate at C = 1 (same outer folds, same refit).
    func testSelectCPicksTheUsefulC() throws {
        var g = SeededGenerator(seed: 21)
        let n = 150
        let labels = (0..<n).map { $0 % 3 }
        var x = Matrix<Double>(rows: n, cols: 2)
        for i in 0..<n {
            let t = 10 * g.nextGaussian()
            x[i, 0] = t + 4 * Double(labels[i] - 1) + 0.1 * g.nextGaussian()
            x[i, 1] = t + 0.1 * g.nextGaussian()
        }
        let (c, result) = try LinearProbe.selectC(x, labels: labels, grid: [1, 1e-4], options: .init())
        XCTAssertEqual(c, 1)
        let direct = try LinearProbe.crossValidate(x, labels: labels, options: ProbeOptions(c: 1))
        XCTAssertEqual(result, direct)
        XCTAssertGreaterThan(result.mean, 0.8)
        let weak = try LinearProbe.crossValidate(x, labels: labels, options: ProbeOptions(c: 1e-4))
        XCTAssertLessThan(weak.mean, 0.5)
    }

    /// When every C scores the same (perfectly separable blobs), the tie goes to the smaller C.
    func testSelectCBreaksTiesTowardsSmallerC() throws {
        let (x, labels) = blobs(perClass: 30, classes: 3, dimensions: 5, separation: 12, seed: 1)
        let (c, result) = try LinearProbe.selectC(x, labels: labels, grid: [2, 0.5, 1], options: .init())
        XCTAssertEqual(c, 0.5)
        XCTAssertEqual(result.mean, 1)
    }
}
