import LinearAlgebra

/// How OccDrop scores the one-patch clips.
public enum OccDropProtocol: String, Sendable, CaseIterable {
    /// The probe trained on the full clips of each training fold is scored on the one-patch versions of
    /// the test fold's clips.
    case transfer
    /// A probe is trained and scored on the one-patch clips.
    case retrain
}

/// Probe accuracies on full and one-patch clips, pooled over the folds of one cross-validation.
public struct OccDropResult: Sendable, Equatable, Codable {
    /// Out-of-fold accuracy on the full clips (correct predictions over all clips).
    public var accuracyFull: Double
    /// Out-of-fold accuracy on the one-patch clips.
    public var accuracyOnePatch: Double

    public init(accuracyFull: Double, accuracyOnePatch: Double) {
        self.accuracyFull = accuracyFull
        self.accuracyOnePatch = accuracyOnePatch
    }

    /// OccDrop = (acc_all − acc_one_patch) / acc_all.
    ///
    /// - Throws: `MetricUndefined` when the accuracy on full clips is 0.
    public func occDrop() throws -> Double {
        guard accuracyFull > 0 else { throw MetricUndefined("accuracy on full clips is 0") }
        return (accuracyFull - accuracyOnePatch) / accuracyFull
    }
}

/// The paper's OccDrop: how much linear-probe accuracy is lost when a clip is reduced to one patch.
public enum OccDrop {
    /// Cross-validated probe accuracies on the full clips and on their one-patch versions.
    ///
    /// Stratified folds of `labels` (`options.folds`, `options.seed`, as `LinearProbe.crossValidate`).
    /// acc_all: each fold's clips predicted by the probe fitted on the full clips of the other folds.
    /// acc_one: with `.transfer` the same probes predict the one-patch versions of the fold's clips; with
    /// `.retrain` probes fitted on the one-patch clips of the other folds do. Both accuracies are pooled
    /// over folds (correct predictions over N).
    ///
    /// - Parameters:
    ///   - full: N×D clip vectors of the full clips.
    ///   - onePatch: N×D clip vectors of the same clips, in the same order, with one patch visible.
    ///   - labels: class per clip (any non-negative integers; made dense here).
    ///   - kind: the protocol.
    ///   - options: C, iteration limit, tolerances, folds and seed of the probes.
    /// - Throws: `MetricUndefined` as `LinearProbe.stratifiedFolds` and `LinearProbe.fit` do (too few clips
    ///   of a class for the folds, fewer than 2 classes, NaN/Inf), or when the shapes differ.
    /// - Complexity: `folds` fits (2·`folds` with `.retrain`).
    public static func evaluate(full: Matrix<Double>, onePatch: Matrix<Double>, labels: [Int], protocol kind: OccDropProtocol,
                                options: ProbeOptions = .init()) throws -> OccDropResult {
        guard full.rows == onePatch.rows, full.cols == onePatch.cols else {
            throw MetricUndefined("full clips are \(full.rows)x\(full.cols) but one-patch clips \(onePatch.rows)x\(onePatch.cols)")
        }
        guard labels.count == full.rows else { throw MetricUndefined("\(labels.count) labels for \(full.rows) clips") }
        let (labels, classes) = LinearProbe.denseClasses(labels)
        let folds = try LinearProbe.stratifiedFolds(labels: labels, folds: options.folds, seed: options.seed)
        let predictions: (all: [Int], one: [Int])
        switch kind {
        case .transfer:
            let p = try LinearProbe.outOfFold(fitOn: full, labels: labels, classes: classes, folds: folds, scoring: [full, onePatch], options: options)
            predictions = (p.predictions[0], p.predictions[1])
        case .retrain:
            let all = try LinearProbe.outOfFold(fitOn: full, labels: labels, classes: classes, folds: folds, scoring: [full], options: options)
            let one = try LinearProbe.outOfFold(fitOn: onePatch, labels: labels, classes: classes, folds: folds, scoring: [onePatch], options: options)
            predictions = (all.predictions[0], one.predictions[0])
        }
        let total = folds.reduce(0) { $0 + $1.count }
        func accuracy(_ p: [Int]) -> Double {
            Double(folds.joined().reduce(0) { $0 + (p[$1] == labels[$1] ? 1 : 0) }) / Double(total)
        }
        return OccDropResult(accuracyFull: accuracy(predictions.all), accuracyOnePatch: accuracy(predictions.one))
    }
}

extension Metric {
    /// OccDrop and the two accuracies behind it (`OccDrop.evaluate`).
    static let occDropDefinitions: [Metric: MetricDefinition] = {
        let undefined = ["a class with fewer clips than folds", "fewer than 2 classes", "NaN or Inf in the data"]
        return [
            .occDrop: MetricDefinition(unit: "fraction of the full-clip accuracy", convention: "(acc_all - acc_one_patch) / acc_all; accuracies pooled over the stratified CV folds", undefinedWhen: undefined + ["accuracy on full clips is 0"]),
            .probeAccuracyFull: MetricDefinition(unit: "fraction of clips (0 to 1)", convention: "acc_all of OccDrop: out-of-fold probe accuracy on the full clips, pooled over the stratified CV folds", undefinedWhen: undefined),
            .probeAccuracyOnePatch: MetricDefinition(unit: "fraction of clips (0 to 1)", convention: "acc_one_patch of OccDrop: out-of-fold accuracy on the one-patch clips (protocol transfer or retrain), pooled over the folds", undefinedWhen: undefined),
        ]
    }()
}
