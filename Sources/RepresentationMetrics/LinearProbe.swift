import Foundation
import LinearAlgebra

/// Settings of the linear probe.
public struct ProbeOptions: Sendable, Codable, Equatable {
    /// Inverse L2 strength in scikit-learn's sense: the penalty is ‖W‖²_F / (2C). Must be finite and > 0.
    public var c: Double = 1
    /// L-BFGS iterations allowed per fit (≥ 1).
    public var maxIterations = 1000
    /// Folds of the stratified cross-validation (≥ 2); also the inner folds of `selectC`.
    public var folds = 3
    /// Seed of the fold shuffle.
    public var seed: UInt64 = 0
    /// L-BFGS stops when max |∂L/∂θ| ≤ `tolerance` (absolute, on the summed loss): scikit-learn 1.2's `tol`
    /// for its `lbfgs` solver, whose default 1e-4 it shares. Must be finite and > 0.
    public var tolerance = ProbeOptions.scikitLearnTolerance
    /// L-BFGS also stops when a step lowers L by at most `functionTolerance` · max(1, |L|): SciPy's
    /// L-BFGS-B default (`factr` 1e7 times ε), which scikit-learn 1.2 leaves in place. Must be finite and ≥ 0.
    public var functionTolerance = ProbeOptions.scipyFunctionTolerance

    /// scikit-learn's default `tol`.
    public static let scikitLearnTolerance = 1e-4
    /// SciPy's L-BFGS-B default relative decrease, `factr` 1e7 times ε (2.2e-9).
    public static let scipyFunctionTolerance = 1e7 * Double.ulpOfOne

    public init(c: Double = 1, maxIterations: Int = 1000, folds: Int = 3, seed: UInt64 = 0,
                tolerance: Double = scikitLearnTolerance, functionTolerance: Double = scipyFunctionTolerance) {
        self.c = c
        self.maxIterations = maxIterations
        self.folds = folds
        self.seed = seed
        self.tolerance = tolerance
        self.functionTolerance = functionTolerance
    }

    private enum CodingKeys: String, CodingKey {
        case c, maxIterations, folds, seed, tolerance, functionTolerance
    }

    /// Options encoded before the tolerances existed decode with the defaults.
    public init(from decoder: any Decoder) throws {
        let k = try decoder.container(keyedBy: CodingKeys.self)
        self.init(c: try k.decode(Double.self, forKey: .c), maxIterations: try k.decode(Int.self, forKey: .maxIterations),
                  folds: try k.decode(Int.self, forKey: .folds), seed: try k.decode(UInt64.self, forKey: .seed),
                  tolerance: try k.decodeIfPresent(Double.self, forKey: .tolerance) ?? Self.scikitLearnTolerance,
                  functionTolerance: try k.decodeIfPresent(Double.self, forKey: .functionTolerance) ?? Self.scipyFunctionTolerance)
    }
}

/// A fitted probe: standardisation plus multinomial logistic regression on the standardised features.
public struct ProbeFit: Sendable {
    /// D×C weights on standardised features.
    public var weights: Matrix<Double>
    /// C intercepts (unpenalised; centred to sum 0, which leaves the softmax unchanged).
    public var bias: [Double]
    /// Per-feature mean of the training data.
    public var mean: [Double]
    /// Per-feature population std of the training data (1 for constant features).
    public var scale: [Double]
    /// L-BFGS iterations used.
    public var iterations: Int
    /// Whether L-BFGS met its stopping criterion within the iteration budget.
    public var converged: Bool
    /// The objective Σᵢ −log softmax(Wᵀxᵢ + b)[yᵢ] + ‖W‖²_F/(2C) at the returned weights (standardised data).
    public var loss: Double

    /// Predicted class per row: argmax over classes of ((x − mean)/scale)·W + b, ties to the lower index.
    ///
    /// - Parameters:
    ///   - x: N×D features in the original (unstandardised) units; D must equal the training D (checked by a
    ///     precondition: a mismatch is a programming error, not a data condition).
    /// - Complexity: O(N·D·C), one gemm.
    public func predict(_ x: Matrix<Double>) -> [Int] {
        precondition(x.cols == mean.count, "probe was fitted on \(mean.count) features, got \(x.cols)")
        let z = Matrix.product(LinearProbe.standardized(x, mean: mean, scale: scale), weights)
        let k = weights.cols
        return (0..<x.rows).map { i in
            var best = 0
            var bestValue = -Double.infinity
            for j in 0..<k {
                let v = z[i, j] + bias[j]
                if v > bestValue { bestValue = v; best = j }
            }
            return best
        }
    }
}

/// Accuracies of a probe over the folds of one evaluation.
public struct ProbeResult: Sendable, Codable, Equatable {
    /// Test accuracy of each fold (one entry for a train/test split).
    public var foldAccuracies: [Double]
    /// Mean of `foldAccuracies`.
    public var mean: Double
    /// Population std (divisor = number of folds) of `foldAccuracies`.
    public var std: Double
    /// True when every fold's fit converged.
    public var converged: Bool
    /// Most L-BFGS iterations used by any fold.
    public var maxIterations: Int
    /// Number of classes (max label + 1).
    public var classes: Int
    /// Number of clips evaluated (all clips for CV; train + test for a split).
    public var samples: Int
    /// The predicted class of every scored clip: for cross-validation the out-of-fold prediction of each
    /// clip in the input's row order (made by the probe fitted without that clip's fold); for a
    /// train/test split the prediction of each test clip. Bootstrap intervals resample these, without refitting.
    public var predictions: [Int] = []
}

/// The linear probe of the paper's evaluation: standardise with the training data's statistics, then
/// multinomial logistic regression with an L2 penalty, fitted by L-BFGS.
///
/// Objective on standardised features x̃ (train-fold mean, population std, ddof 0; a feature whose variance
/// is at rounding level — var ≤ N·ε·var + (N·mean·ε)², scikit-learn's `_is_constant_feature` — gets scale 1):
///
///     L(W, b) = Σᵢ −log softmax(Wᵀx̃ᵢ + b)[yᵢ] + ‖W‖²_F / (2C),   b not penalised,
///
/// exactly the function scikit-learn 1.2's `LogisticRegression(C=C, multi_class='multinomial', solver='lbfgs')`
/// minimises (versions that divide both terms by N have the same minimiser). W and b start at 0.
/// L-BFGS (memory 10, strong Wolfe line search) stops as scikit-learn 1.2's `lbfgs` solver does: when max |∇L| ≤
/// `options.tolerance` (1e-4) or when a step lowers L by at most `options.functionTolerance` (2.2e-9) relative, at
/// most `maxIterations` iterations. Near the optimum the predictions no longer move at that point: on the
/// reference problems of LinearProbeTests the weights are within 2e-4 of the exact optimum, and on a paper-scale
/// file (BENCHMARKS.md) all 52 cross-validated accuracies equal those of a fit to max |∇L| ≤ 1e-9·|L|.
///
/// Two classes follow scikit-learn's default binary model (a sigmoid on one vector w with penalty
/// ‖w‖²/(2C), what `LogisticRegression(C=C)` fits for 2 classes and what the paper's eval code gets).
/// We keep the 2-column softmax and double the penalty: at the optimum the columns satisfy w₁ = −w₀ (the
/// penalty prefers the symmetric split), so w = w₁ − w₀ and ‖W‖²_F = ‖w‖²/2; the penalty ‖W‖²_F/C then
/// equals ‖w‖²/(2C), and the fit is exactly sklearn's binary fit.
///
/// Shift invariance: the softmax is unchanged by adding a constant to all logits, so b is determined
/// only up to a shift; gradients of b sum to 0 over classes, so starting at 0 keeps Σb = 0 (as in sklearn),
/// and the result is centred explicitly. A class index with no training clips is allowed: its intercept is
/// driven down until its gradient is negligible.
public enum LinearProbe {
    // MARK: fitting

    /// Fits the probe on all rows of x (standardised with x's own mean and std).
    ///
    /// Throws `MetricUndefined` when labels.count ≠ rows, there are no rows, a label is negative or
    /// ≥ classes, fewer than 2 distinct classes occur, x holds NaN/Inf, or the options are invalid.
    ///
    /// - Parameters:
    ///   - x: N×D features, one clip per row.
    ///   - labels: class index per row, in 0..<classes.
    ///   - classes: number of classes C ≥ 2 (columns of W).
    ///   - options: `c`, `maxIterations` and the tolerances are used.
    /// - Complexity: O(N·D) for the statistics plus, per L-BFGS evaluation, two gemms of O(N·D·C).
    public static func fit(_ x: Matrix<Double>, labels: [Int], classes: Int, options: ProbeOptions = .init()) throws -> ProbeFit {
        try validate(options, needsFolds: false)
        try validate(x, labels: labels, role: "training data")
        guard classes >= 2 else { throw MetricUndefined("a probe needs at least 2 classes, got classes = \(classes)") }
        if let i = labels.firstIndex(where: { $0 >= classes }) {
            throw MetricUndefined("label of clip \(i) is \(labels[i]), outside 0..<\(classes) classes")
        }
        try requireTwoClasses(labels, role: "training data")

        let (mean, scale) = standardization(of: x)
        let xs = standardized(x, mean: mean, scale: scale)
        let d = x.cols, k = classes
        // Two classes: sklearn's binary parameterisation (see the type's documentation).
        let inverseC = (k == 2 ? 2 : 1) / options.c
        var solver = LBFGS()
        solver.maxIterations = options.maxIterations
        solver.gradientTolerance = options.tolerance
        solver.functionTolerance = options.functionTolerance
        let result = solver.minimize(start: [Double](repeating: 0, count: d * k + k)) { theta, gradient in
            objective(theta: theta, x: xs, labels: labels, classes: k, inverseC: inverseC, gradient: &gradient)
        }
        let weights = Matrix(rows: d, cols: k, storage: Array(result.x[0..<(d * k)]))
        var bias = Array(result.x[(d * k)...])
        let shift = bias.reduce(0, +) / Double(k)
        for j in bias.indices { bias[j] -= shift }
        return ProbeFit(weights: weights, bias: bias, mean: mean, scale: scale, iterations: result.iterations,
                        converged: result.converged, loss: result.value)
    }

    /// The probe objective and its gradient at packed parameters θ = (W row-major D×C, then b).
    ///
    ///     L = Σᵢ [logsumexp(zᵢ) − zᵢ,yᵢ] + (inverseC/2)·‖W‖²_F,  Z = X·W + 1bᵀ,
    ///     ∇_W L = Xᵀ(P − Y) + inverseC·W,  ∇_b L = Σᵢ (Pᵢ − Yᵢ),
    ///
    /// with P the row softmax of Z computed stably (row max subtracted) and Y the one-hot labels. Both
    /// products go to BLAS by panels of X's rows (`Matrix.productByRowPanels`), which spares OpenBLAS
    /// copying X at every evaluation.
    ///
    /// - Complexity: O(N·D·C).
    static func objective(theta: [Double], x: Matrix<Double>, labels: [Int], classes k: Int, inverseC: Double,
                          gradient: inout [Double]) -> Double {
        let n = x.rows, d = x.cols
        let w = Matrix(rows: d, cols: k, storage: Array(theta[0..<(d * k)]))
        var z = Matrix.productByRowPanels(x, w)  // N×C logits without bias, becomes P − Y
        var loss = 0.0
        var biasGradient = [Double](repeating: 0, count: k)
        theta.withUnsafeBufferPointer { t in
            let b = t.baseAddress! + d * k
            z.storage.withUnsafeMutableBufferPointer { p in
                for i in 0..<n {
                    let row = p.baseAddress! + i * k
                    var m = -Double.infinity
                    for j in 0..<k { row[j] += b[j]; m = max(m, row[j]) }
                    let y = labels[i]
                    let labelLogit = row[y] - m
                    var sum = 0.0
                    for j in 0..<k { let e = exp(row[j] - m); row[j] = e; sum += e }
                    loss += log(sum) - labelLogit  // −log pᵧ = log Σⱼ exp(zⱼ − m) − (zᵧ − m)
                    let inv = 1 / sum
                    for j in 0..<k { row[j] *= inv }
                    row[y] -= 1
                    for j in 0..<k { biasGradient[j] += row[j] }
                }
            }
        }
        var gw = w
        gw.addTransposedProductByRowPanels(x, z, alpha: 1, beta: inverseC)  // Xᵀ(P − Y) + W/C
        let penalty = 0.5 * inverseC * Matrix.frobeniusInner(w, w)
        for i in 0..<(d * k) { gradient[i] = gw.storage[i] }
        for j in 0..<k { gradient[d * k + j] = biasGradient[j] }
        return loss + penalty
    }

    // MARK: evaluation

    /// Stratified k-fold cross-validated accuracy of the probe (the paper's protocol: 3 folds, shuffled,
    /// seed 0). Each fold is fitted on the other folds, standardised with their statistics, and scored on
    /// its own clips. Folds come from `stratifiedFolds(labels:folds:seed:)`; classes = max label + 1.
    ///
    /// Throws `MetricUndefined` for labels.count ≠ rows, negative labels, NaN/Inf in x, fewer than 2
    /// distinct classes, folds < 2, or a class with fewer clips than folds.
    ///
    /// - Parameters:
    ///   - x: N×D features.
    ///   - labels: class index per row.
    ///   - options: C, iteration budget, folds and seed.
    /// - Complexity: `folds` fits, each O(iterations · N·D·C).
    public static func crossValidate(_ x: Matrix<Double>, labels: [Int], options: ProbeOptions = .init()) throws -> ProbeResult {
        let cv = try crossValidation(x, labels: labels, options: options)
        return combine(try cv.folds.indices.map { try fold($0, of: cv, x: x) }, of: cv).result
    }

    /// Out-of-fold predictions of cross-validation: for each fold (test indices, ascending), the probe
    /// fitted on the rows of `x` outside it (standardised with their statistics) predicts the fold's rows
    /// of every matrix in `scoring` (the same clips, e.g. `x` itself or occluded versions of them).
    ///
    /// Throws what `fit` throws for a fold's training rows.
    ///
    /// - Parameters:
    ///   - x: N×D features the probes are fitted on.
    ///   - labels: dense class indices in 0..<classes, one per row.
    ///   - folds: disjoint test folds covering 0..<N (`stratifiedFolds`).
    ///   - scoring: matrices of N rows and D columns to predict.
    /// - Returns: per matrix of `scoring`, the predicted class of every row; and the fit of each fold.
    /// - Complexity: `folds.count` fits.
    public static func outOfFold(fitOn x: Matrix<Double>, labels: [Int], classes: Int, folds: [[Int]],
                                 scoring: [Matrix<Double>], options: ProbeOptions) throws -> (predictions: [[Int]], fits: [ProbeFit]) {
        var predictions = scoring.map { _ in [Int](repeating: -1, count: x.rows) }
        var fits: [ProbeFit] = []
        for testIndices in folds {
            let trainIndices = complement(testIndices, count: x.rows)
            let fit = try fit(x.rows(at: trainIndices), labels: trainIndices.map { labels[$0] }, classes: classes,
                              options: options)
            for (m, scored) in scoring.enumerated() {
                let predicted = fit.predict(scored.rows(at: testIndices))
                for (k, i) in testIndices.enumerated() { predictions[m][i] = predicted[k] }
            }
            fits.append(fit)
        }
        return (predictions, fits)
    }

    /// Accuracy of the probe fitted on `train` (standardised with train's statistics) and scored on `test`:
    /// one "fold". Classes are the distinct labels of both sets.
    ///
    /// Throws `MetricUndefined` for mismatched label counts or feature counts, empty sets, negative labels,
    /// NaN/Inf, or fewer than 2 distinct classes in the training set.
    ///
    /// - Parameters:
    ///   - train, trainLabels: training features and labels.
    ///   - test, testLabels: test features and labels (same D).
    ///   - options: `c`, `maxIterations` and the tolerances are used.
    /// - Complexity: one fit, O(iterations · N·D·C).
    public static func trainTest(train: Matrix<Double>, trainLabels: [Int], test: Matrix<Double>, testLabels: [Int],
                                 options: ProbeOptions = .init()) throws -> ProbeResult {
        try validate(options, needsFolds: false)
        try validate(train, labels: trainLabels, role: "training data")
        try validate(test, labels: testLabels, role: "test data")
        guard train.cols == test.cols else {
            throw MetricUndefined("training data has \(train.cols) features but test data has \(test.cols)")
        }
        try requireTwoClasses(trainLabels, role: "training data")
        let (joint, classes) = denseClasses(trainLabels + testLabels)
        let trainLabels = Array(joint[..<trainLabels.count]), testLabels = Array(joint[trainLabels.count...])
        let fit = try fit(train, labels: trainLabels, classes: classes, options: options)
        let (accuracy, predicted) = score(fit, test, testLabels)
        return summary([(accuracy, fit.iterations, fit.converged)], classes: classes, samples: train.rows + test.rows,
                       predictions: predicted)
    }

    /// Nested cross-validation over a grid of C values.
    ///
    /// Outer folds as in `crossValidate`. Inside each outer training set, every C of the grid is scored by
    /// an inner stratified CV (`options.folds` folds, `options.seed`) on that training set alone; the C with
    /// the highest mean inner accuracy wins (ties → the smaller C), the probe is refitted on the whole outer
    /// training set with it and scored on the outer test fold. The returned `result` holds those outer
    /// accuracies; the returned `c` is the value chosen most often across outer folds (ties → the smaller C).
    ///
    /// Throws `MetricUndefined` as `crossValidate`, for an empty grid or a C that is not finite and > 0, and
    /// when a class has too few clips for the inner folds of some outer training set (reason says which).
    ///
    /// - Parameters:
    ///   - x: N×D features.
    ///   - labels: class index per row.
    ///   - grid: candidate C values.
    ///   - options: folds, seed and iteration budget (its `c` is ignored).
    /// - Complexity: folds · (grid.count · folds + 1) fits.
    public static func selectC(_ x: Matrix<Double>, labels: [Int], grid: [Double], options: ProbeOptions) throws -> (c: Double, result: ProbeResult) {
        let cv = try crossValidation(x, labels: labels, options: options, grid: grid)
        let (c, result) = combine(try cv.folds.indices.map { try fold($0, of: cv, x: x) }, of: cv)
        return (c!, result)
    }

    // MARK: standardisation

    /// Column means and population stds (ddof 0) in float64; near-constant columns get scale 1.
    static func standardization(of x: Matrix<Double>) -> (mean: [Double], scale: [Double]) {
        let mean = x.columnMeans()
        let n = x.rows, d = x.cols
        var variance = [Double](repeating: 0, count: d)
        x.storage.withUnsafeBufferPointer { p in
            for i in 0..<n {
                for j in 0..<d { let v = p[i * d + j] - mean[j]; variance[j] += v * v }
            }
        }
        let count = Double(n), eps = Double.ulpOfOne
        let scale = (0..<d).map { j -> Double in
            let v = variance[j] / count
            // scikit-learn's StandardScaler test for a constant feature (variance at rounding level).
            let bound = count * eps * v + (count * mean[j] * eps) * (count * mean[j] * eps)
            return v <= bound ? 1 : v.squareRoot()
        }
        return (mean, scale)
    }

    /// (x − mean) / scale per column, as a new matrix.
    static func standardized(_ x: Matrix<Double>, mean: [Double], scale: [Double]) -> Matrix<Double> {
        var out = x
        let d = x.cols
        let inverse = scale.map { 1 / $0 }
        out.storage.withUnsafeMutableBufferPointer { p in
            for i in 0..<x.rows {
                for j in 0..<d { p[i * d + j] = (p[i * d + j] - mean[j]) * inverse[j] }
            }
        }
        return out
    }

    // MARK: helpers

    static func validate(_ options: ProbeOptions, needsFolds: Bool) throws {
        guard options.c.isFinite && options.c > 0 else {
            throw MetricUndefined("probe C must be finite and > 0, got \(options.c)")
        }
        guard options.maxIterations >= 1 else {
            throw MetricUndefined("probe maxIterations must be ≥ 1, got \(options.maxIterations)")
        }
        guard options.tolerance.isFinite && options.tolerance > 0 else {
            throw MetricUndefined("probe tolerance must be finite and > 0, got \(options.tolerance)")
        }
        guard options.functionTolerance.isFinite && options.functionTolerance >= 0 else {
            throw MetricUndefined("probe functionTolerance must be finite and ≥ 0, got \(options.functionTolerance)")
        }
        if needsFolds && options.folds < 2 {
            throw MetricUndefined("cross-validation needs at least 2 folds, got \(options.folds)")
        }
    }

    static func validate(_ x: Matrix<Double>, labels: [Int], role: String) throws {
        guard labels.count == x.rows else {
            throw MetricUndefined("\(role): \(labels.count) labels for \(x.rows) rows")
        }
        guard x.rows > 0 else { throw MetricUndefined("\(role) has no clips") }
        if let i = labels.firstIndex(where: { $0 < 0 }) {
            throw MetricUndefined("\(role): label of clip \(i) is negative (\(labels[i])); labels must be class indices ≥ 0")
        }
        let bad = x.nonFiniteCount
        guard bad == 0 else { throw MetricUndefined("\(role) holds \(bad) non-finite values (NaN or ±Inf)") }
    }

    static func requireTwoClasses(_ labels: [Int], role: String) throws {
        let distinct = Set(labels)
        guard distinct.count >= 2 else {
            let which = distinct.first.map { " (only class \($0))" } ?? ""
            throw MetricUndefined("\(role) has fewer than 2 classes\(which); a probe needs at least 2")
        }
    }

    /// Indices in 0..<count not in `sortedIndices`, ascending.
    static func complement(_ sortedIndices: [Int], count: Int) -> [Int] {
        var member = [Bool](repeating: false, count: count)
        for i in sortedIndices { member[i] = true }
        return (0..<count).filter { !member[$0] }
    }

    /// Accuracy of the fit on (x, labels) and its predictions.
    static func score(_ fit: ProbeFit, _ x: Matrix<Double>, _ labels: [Int]) -> (accuracy: Double, predictions: [Int]) {
        let predictions = fit.predict(x)
        let correct = zip(predictions, labels).reduce(0) { $0 + ($1.0 == $1.1 ? 1 : 0) }
        return (Double(correct) / Double(labels.count), predictions)
    }

    static func summary(_ fits: [(accuracy: Double, iterations: Int, converged: Bool)], classes: Int,
                                samples: Int, predictions: [Int]) -> ProbeResult {
        let accuracies = fits.map(\.accuracy)
        let mean = accuracies.reduce(0, +) / Double(accuracies.count)
        let variance = accuracies.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(accuracies.count)
        return ProbeResult(foldAccuracies: accuracies, mean: mean, std: variance.squareRoot(),
                           converged: fits.allSatisfy(\.converged), maxIterations: fits.map(\.iterations).max() ?? 0,
                           classes: classes, samples: samples, predictions: predictions)
    }
}

extension LinearProbe {
    /// Maps class ids to 0..<k in ascending order of id, k = the number of distinct ids.
    ///
    /// Class ids may be far above N (e.g. Kinetics ids on a subset of clips), so nothing is ever sized by
    /// an id value; ids that are already 0..<k map to themselves.
    public static func denseClasses(_ labels: [Int]) -> (labels: [Int], classes: Int) {
        let ids = Array(Set(labels)).sorted()
        if ids.isEmpty || (ids.first == 0 && ids.last == ids.count - 1) { return (labels, ids.count) }
        var index: [Int: Int] = [:]
        for (i, id) in ids.enumerated() { index[id] = i }
        return (labels.map { index[$0]! }, ids.count)
    }
}

extension LinearProbe {
    /// `labels` permuted across clips by a seeded Fisher–Yates shuffle (class counts unchanged): the
    /// labels of `Metric.probeAccuracyShuffled`, the measured chance level.
    public static func permuted(_ labels: [Int], seed: UInt64) -> [Int] {
        var g = SeededGenerator(seed: seed)
        var a = labels
        guard a.count > 1 else { return a }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, Int(g.next(below: UInt64(i + 1)))) }
        return a
    }
}

extension Metric {
    /// Linear-probe accuracy (`LinearProbe.crossValidate`, `LinearProbe.trainTest`, `LinearProbe.selectC`).
    static let probeDefinitions: [Metric: MetricDefinition] = {
        let unit = "fraction of clips (0 to 1)"
        let undefined = ["a class with fewer clips than folds", "fewer than 2 classes", "NaN or Inf in the data"]
        return [
            .probeAccuracy: MetricDefinition(unit: unit, convention: "clip vectors standardised with the training fold's mean/std (ddof 0) -> multinomial logistic regression, L2 penalty with C in scikit-learn's sense (loss sum_i CE_i + ||W||^2/(2C), intercept unpenalised), L-BFGS stopped as scikit-learn's lbfgs solver (max |gradient| <= tol, default 1e-4, or relative decrease <= 2.2e-9; <= max iterations); stratified k-fold CV shuffled with seed 0 (per class: seeded shuffle, dealt round-robin into folds) or a given train/test split; value = mean accuracy over folds, std = population std over folds", undefinedWhen: undefined),
            .probeAccuracyMeanOverTargets: MetricDefinition(unit: unit, convention: "mean of \(Metric.probeAccuracy.name) over the probed targets at one depth", undefinedWhen: ["the probe of any target undefined"]),
            .probeAccuracyShuffled: MetricDefinition(unit: unit, convention: "chance level measured: the same probe and CV with the target's labels randomly permuted across clips (one fixed permutation, seed in the parameters), at the last depth; interval by the same bootstrap", undefinedWhen: undefined),
            .probeAccuracyShuffledMeanOverTargets: MetricDefinition(unit: unit, convention: "mean of \(Metric.probeAccuracyShuffled.name) over the probed targets", undefinedWhen: ["the probe of any target undefined"]),
        ]
    }()
}
