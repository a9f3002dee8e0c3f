import LinearAlgebra

/// Cross-validation one outer fold at a time: `crossValidate` and `selectC` are `crossValidation`,
/// `fold` for each outer fold and `combine`. The folds of one probe are independent fits, so a caller
/// may run them as jobs of their own (on several threads, or on the ranks of an MPI job) and combine
/// their outcomes into the result one call gives.
extension LinearProbe {
    /// What the outer folds of one cross-validated probe share.
    public struct CrossValidation: Sendable {
        /// Dense class indices of the rows (`denseClasses`).
        public let labels: [Int]
        public let classes: Int
        /// The outer folds' test rows, each ascending (`stratifiedFolds`).
        public let folds: [[Int]]
        /// The distinct C values to choose from by inner cross-validation, ascending; nil: `options.c`.
        public let grid: [Double]?
        public let options: ProbeOptions
    }

    /// The outcome of one outer fold.
    public struct FoldOutcome: Sendable, Codable, Equatable {
        /// Accuracy on the fold's rows.
        public var accuracy: Double
        public var iterations: Int
        public var converged: Bool
        /// The predicted class of each of the fold's rows, in the fold's order.
        public var predictions: [Int]
        /// The C the fold's probe was fitted with.
        public var c: Double
    }

    /// Checks the inputs and draws the stratified folds, as `crossValidate` (no grid) and `selectC`
    /// (with a grid) do before fitting; throws the same errors.
    public static func crossValidation(_ x: Matrix<Double>, labels: [Int], options: ProbeOptions,
                                       grid: [Double]? = nil) throws -> CrossValidation {
        var candidates: [Double]? = nil
        if let grid {
            guard !grid.isEmpty else { throw MetricUndefined("the grid of C values is empty") }
            if let bad = grid.first(where: { !($0.isFinite && $0 > 0) }) {
                throw MetricUndefined("C must be finite and > 0, the grid holds \(bad)")
            }
            candidates = Array(Set(grid)).sorted()
        }
        try validate(options, needsFolds: true)
        try validate(x, labels: labels, role: "data")
        try requireTwoClasses(labels, role: "data")
        let (dense, classes) = denseClasses(labels)
        let folds = try stratifiedFolds(labels: dense, folds: options.folds, seed: options.seed)
        return CrossValidation(labels: dense, classes: classes, folds: folds, grid: candidates, options: options)
    }

    /// Outer fold `k`: the probe fitted on the rows of `x` outside the fold (standardised with their
    /// statistics; with a grid, C is the candidate of best mean inner-CV accuracy on those rows, ties
    /// to the smaller C) predicts the fold's rows.
    ///
    /// - Complexity: one fit, or with a grid `grid.count · folds + 1` fits.
    public static func fold(_ k: Int, of cv: CrossValidation, x: Matrix<Double>) throws -> FoldOutcome {
        let testIndices = cv.folds[k]
        let trainIndices = complement(testIndices, count: x.rows)
        let trainX = x.rows(at: trainIndices)
        let trainY = trainIndices.map { cv.labels[$0] }
        var options = cv.options
        if let candidates = cv.grid {
            let inner: [[Int]]
            do {
                inner = try stratifiedFolds(labels: trainY, folds: options.folds, seed: options.seed)
            } catch let e as MetricUndefined {
                throw MetricUndefined("inner cross-validation in the training set of outer fold \(k): \(e.reason)")
            }
            var bestC = candidates[0], bestAccuracy = -1.0
            for c in candidates {
                var innerOptions = options
                innerOptions.c = c
                var total = 0.0
                for innerTest in inner {
                    let innerTrain = complement(innerTest, count: trainIndices.count)
                    let fit = try fit(trainX.rows(at: innerTrain), labels: innerTrain.map { trainY[$0] },
                                      classes: cv.classes, options: innerOptions)
                    total += score(fit, trainX.rows(at: innerTest), innerTest.map { trainY[$0] }).accuracy
                }
                let accuracy = total / Double(inner.count)
                if accuracy > bestAccuracy { bestAccuracy = accuracy; bestC = c }  // strict: ties keep the smaller C
            }
            options.c = bestC
        }
        let fit = try fit(trainX, labels: trainY, classes: cv.classes, options: options)
        let (accuracy, predicted) = score(fit, x.rows(at: testIndices), testIndices.map { cv.labels[$0] })
        return FoldOutcome(accuracy: accuracy, iterations: fit.iterations, converged: fit.converged, predictions: predicted, c: options.c)
    }

    /// The result of every outer fold's outcome (in fold order): accuracies, out-of-fold predictions of
    /// all rows, and with a grid the C chosen by most folds (ties to the smaller C).
    public static func combine(_ outcomes: [FoldOutcome], of cv: CrossValidation) -> (c: Double?, result: ProbeResult) {
        let samples = cv.labels.count
        var predictions = [Int](repeating: -1, count: samples)
        for (fold, outcome) in zip(cv.folds, outcomes) {
            for (k, i) in fold.enumerated() { predictions[i] = outcome.predictions[k] }
        }
        let result = summary(outcomes.map { ($0.accuracy, $0.iterations, $0.converged) }, classes: cv.classes,
                             samples: samples, predictions: predictions)
        guard let candidates = cv.grid else { return (nil, result) }
        var bestC = candidates[0], bestCount = 0
        for c in candidates {
            let count = outcomes.filter { $0.c == c }.count
            if count > bestCount { bestCount = count; bestC = c }
        }
        return (bestC, result)
    }
}
