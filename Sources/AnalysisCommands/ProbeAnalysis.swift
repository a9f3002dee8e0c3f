import ActivationStore
import Collective
import Foundation
import LinearAlgebra
import RepresentationMetrics

/// `bwanalyze probe`: linear-probe accuracy of clip vectors per depth and target.
public struct ProbeAnalysis: Sendable {
    public var depthSelection: DepthSelection = .blocks
    /// Targets to probe; nil = every target in the file.
    public var targets: [String]? = nil
    public var options = ProbeOptions()
    /// When set, C is chosen per outer fold by inner CV over this grid.
    public var cGrid: [Double]? = nil
    public var maxBatchBytes = 64 << 20
    /// When set, every accuracy gets a bootstrap interval from its out-of-fold predictions (no refitting).
    public var bootstrap: Bootstrap? = nil
    /// When true, the probe is also cross-validated with each target's labels shuffled (seed
    /// `shuffleSeed`) at the last selected depth: the measured chance level.
    public var shuffledChance = false
    public var shuffleSeed: UInt64 = 1
    /// The job this analysis is part of: each rank pools its share of the clips, the clip vectors are
    /// gathered (every rank then holds the matrices one process holds), and the (depth, target) fits are
    /// spread over the ranks and their results gathered, so the accuracies are those of one process.
    public var communicator: any Communicator = SingleProcess()

    public init() {}

    public static let conventions = MetricReport.conventions(MetricFamily.probe.metrics).merging([
        "probe_accuracy_interval": "ci_low, ci_high of every probe accuracy: bootstrap interval over clips of the out-of-fold correctness (each clip predicted by the probe fitted without its fold; the probes are not refitted); its centre is the pooled out-of-fold accuracy, which differs from the mean over folds only through unequal fold sizes",
    ]) { a, _ in a }

    func parameters(_ split: String) -> [String: String] {
        var p = ["c": cGrid == nil ? "\(options.c)" : "selected by inner CV from \(cGrid!.map { "\($0)" }.joined(separator: ","))",
                 "split": split, "seed": "\(options.seed)",
                 "features": "clip vectors (mean over tokens)", "precision": "float64"].merging(options.stoppingParameters) { a, _ in a }
        if split == "cv" { p["folds"] = "\(options.folds)" }
        return p
    }

    /// Cross-validated probes on one file.
    public func run(_ f: ActivationFile, progress: ((Int, Int) -> Void)? = nil) throws -> MetricReport {
        let depths = try depthSelection.depths(in: f)
        let chosen = try resolveTargets(f)
        let labels = try chosen.map { try f.labels($0) }
        let fits: [Result<Fitted, Error>]
        let lastVectors: Matrix<Double>?
        // Reading inside the fitting jobs needs enough depths to keep every core busy; with few, the
        // (depth, target, fold) jobs of crossValidateEach spread better.
        if communicator.size == 1 && depths.count >= 4 * Parallel.threads {
            (fits, lastVectors) = try readAndCrossValidate(f, depths: depths, labels: labels, grid: cGrid, progress: progress)
        } else {
            let vectors = try collectClipVectors(f, depths: depths, maxBatchBytes: maxBatchBytes, communicator: communicator)
            fits = try crossValidateEach(vectors, labels: labels, grid: cGrid, progress: progress)
            lastVectors = vectors.last
        }
        var warnings: [String] = []
        var extra: [String: String] = [:]
        let results = evaluate(fits, depths: depths, targets: chosen, warnings: &warnings, chosenC: &extra)
        var params = parameters("cv")
        params.merge(extra) { $1 }
        var out = try report(f, depths: depths, targets: chosen, results: results, parameters: params, warnings: warnings,
                             inputs: [f], labels: labels, scored: f)
        if shuffledChance, let last = depths.last, let lastVectors {
            let shuffled = labels.map { LinearProbe.permuted($0, seed: shuffleSeed) }
            var chanceWarnings: [String] = []
            var ignored: [String: String] = [:]
            let chanceFits = try crossValidateEach([lastVectors], labels: shuffled, grid: nil, progress: nil)
            let chance = evaluate(chanceFits, depths: [last], targets: chosen, warnings: &chanceWarnings, chosenC: &ignored)
            let extraReport = try report(f, depths: [last], targets: chosen, results: chance, parameters: [:], warnings: [],
                                         inputs: [f], labels: shuffled, scored: f, metric: .probeAccuracyShuffled)
            out.records += extraReport.records
            out.warnings += chanceWarnings.map { "shuffled labels: \($0)" }
            out.parameters["shuffle_seed"] = "\(shuffleSeed)"
        }
        if let bootstrap { out.parameters["bootstrap"] = bootstrap.description }
        return out
    }

    /// Probes trained on `train` and scored on `test` (two files of the same run on different clips).
    public func run(train: ActivationFile, test: ActivationFile, progress: ((Int, Int) -> Void)? = nil) throws -> MetricReport {
        guard train.featureCount == test.featureCount, train.layerCount == test.layerCount else {
            throw AnalysisError("\(train.path) and \(test.path) differ in shape (L = \(train.layerCount) vs \(test.layerCount), D = \(train.featureCount) vs \(test.featureCount)); train and test must come from the same model")
        }
        let depths = try depthSelection.depths(in: train)
        let chosen = try resolveTargets(train)
        for t in chosen where !test.targets.contains(t) {
            throw AnalysisError("\(test.path): no target '\(t)' (it has: \(test.targets.joined(separator: ", ")))")
        }
        let trainLabels = try chosen.map { try train.labels($0) }
        let testLabels = try chosen.map { try test.labels($0) }
        let trainVectors = try collectClipVectors(train, depths: depths, maxBatchBytes: maxBatchBytes, communicator: communicator)
        let testVectors = try collectClipVectors(test, depths: depths, maxBatchBytes: maxBatchBytes, communicator: communicator)
        var warnings: [String] = []
        var extra: [String: String] = [:]
        let options = self.options
        let fits = try fitEach(depths: depths.count, targets: chosen.count, progress: progress) { i, t in
            try LinearProbe.trainTest(train: trainVectors[i], trainLabels: trainLabels[t], test: testVectors[i],
                                      testLabels: testLabels[t], options: options)
        }
        let results = evaluate(fits, depths: depths, targets: chosen, warnings: &warnings, chosenC: &extra)
        var params = parameters("train/test")
        params.merge(extra) { $1 }
        return try report(train, depths: depths, targets: chosen, results: results, parameters: params,
                          warnings: warnings, inputs: [train, test], labels: testLabels, scored: test)
    }

    func resolveTargets(_ f: ActivationFile) throws -> [String] {
        let chosen = targets ?? f.targets
        guard !chosen.isEmpty else { throw AnalysisError("\(f.path): the file has no labels; probes need /labels/<target>") }
        for t in chosen { _ = try f.labels(t) }
        return chosen
    }

    /// One fit's result as it travels between ranks: the probe and the C chosen by inner CV.
    struct Fitted: Codable {
        var result: ProbeResult
        var c: Double?

        init(result: ProbeResult, c: Double?) {
            self.result = result
            self.c = c
        }

        /// A probe's outer folds combined (`LinearProbe.combine`).
        init(_ folds: [LinearProbe.FoldOutcome], of cv: LinearProbe.CrossValidation) {
            (c, result) = LinearProbe.combine(folds, of: cv)
        }
    }

    /// Cross-validated probes of `vectors[i]` against `labels[t]` for every (i, t), in that order: one job
    /// per (representation, target, outer fold), spread over the ranks and each rank's cores, and each
    /// probe's folds combined as `LinearProbe.crossValidate` (no grid) or `selectC` combine them, so the
    /// results are theirs on every rank.
    func crossValidateEach(_ vectors: [Matrix<Double>], labels: [[Int]], grid: [Double]?,
                           progress: ((Int, Int) -> Void)?) throws -> [Result<Fitted, Error>] {
        let options = self.options
        let probes = vectors.indices.flatMap { i in labels.indices.map { (i, $0) } }
        let plans = probes.map { i, t in Result { try LinearProbe.crossValidation(vectors[i], labels: labels[t], options: options, grid: grid) } }
        let planned = plans.map { try? $0.get() }
        let jobs = planned.enumerated().flatMap { p, cv in (cv?.folds.indices ?? 0..<0).map { (p, $0) } }
        let outcomes = try communicator.distributedMap(jobs.count) { mine -> [Result<LinearProbe.FoldOutcome, any Error>] in
            Parallel.map(mine.count, { n in
                let (p, k) = jobs[mine[n]]
                return Result { try LinearProbe.fold(k, of: planned[p]!, x: vectors[probes[p].0]) }
            }, finished: { _, _, done in progress?(done, mine.count) })
        }
        var first = 0
        return plans.map { plan in
            Result {
                let cv = try plan.get()
                defer { first += cv.folds.count }
                // The first failing fold's error, as one call would throw it.
                return Fitted(try (first..<(first + cv.folds.count)).map { try outcomes[$0].get() }, of: cv)
            }
        }
    }

    /// `crossValidateEach` of every depth's clip vectors on one process, each depth read inside the job
    /// that runs the folds of all its probes (`DepthStream.readEach`). Same vectors, same folds, same
    /// results, in (depth, target) order; also returns the last depth's vectors. A depth that cannot be
    /// read fails the call with the reader's error.
    func readAndCrossValidate(_ f: ActivationFile, depths: [Int], labels: [[Int]], grid: [Double]?,
                              progress: ((Int, Int) -> Void)?) throws -> (fits: [Result<Fitted, Error>], last: Matrix<Double>?) {
        let options = self.options
        let outcomes = try DepthStream.readEach(depths.map { (file: f, depth: $0) }, progress: progress) { i, x in
            let fits = labels.map { y in
                Result { () throws -> Fitted in
                    let cv = try LinearProbe.crossValidation(x, labels: y, options: options, grid: grid)
                    return Fitted(try cv.folds.indices.map { try LinearProbe.fold($0, of: cv, x: x) }, of: cv)
                }
            }
            // Only the last depth's vectors are kept (for the shuffled-label chance).
            return (fits: fits, vectors: i == depths.count - 1 ? x : nil)
        }
        return (outcomes.flatMap(\.fits), outcomes.last?.vectors)
    }

    /// Runs `body` for every (depth, target) as one job, spread over the ranks and each rank's cores;
    /// the results in (depth, target) order on every rank.
    func fitEach(depths: Int, targets: Int, progress: ((Int, Int) -> Void)?,
                 _ body: @escaping @Sendable (Int, Int) throws -> ProbeResult) throws -> [Result<Fitted, Error>] {
        let jobs = (0..<depths).flatMap { i in (0..<targets).map { (i, $0) } }
        return try communicator.distributedMap(jobs.count) { mine -> [Result<Fitted, any Error>] in
            Parallel.map(mine.count, { k in
                Result { Fitted(result: try body(jobs[mine[k]].0, jobs[mine[k]].1), c: nil) }
            }, finished: { _, _, done in progress?(done, mine.count) })
        }
    }

    /// The probes' results per depth and target from the fits in (depth, target) order, with the
    /// warnings and parameters about convergence and the chosen C.
    func evaluate(_ results: [Result<Fitted, Error>], depths: [Int], targets: [String], warnings: inout [String],
                  chosenC: inout [String: String]) -> [[Result<ProbeResult, Error>]] {
        let jobs = depths.indices.flatMap { i in targets.indices.map { (i, $0) } }
        var out = depths.map { _ in targets.map { _ in Result<ProbeResult, Error>.failure(MetricUndefined("not run")) } }
        var allConverged = true
        var mostIterations = 0
        for (j, (i, t)) in jobs.enumerated() {
            switch results[j] {
            case .success(let fitted):
                let (r, c) = (fitted.result, fitted.c)
                out[i][t] = .success(r)
                allConverged = allConverged && r.converged
                mostIterations = max(mostIterations, r.maxIterations)
                if !r.converged {
                    warnings.append("depth \(depths[i]), target \(targets[t]): L-BFGS did not converge within \(options.maxIterations) iterations")
                }
                if let c { chosenC["chosen_c_depth\(depths[i])_\(targets[t])"] = "\(c)" }
            case .failure(let e):
                out[i][t] = .failure(e)
            }
        }
        chosenC["all_converged"] = "\(allConverged)"
        chosenC["most_lbfgs_iterations"] = "\(mostIterations)"
        return out
    }

    /// Records of one evaluation; `labels` are the scored clips' labels per target and `scored` their file (for the bootstrap).
    func report(_ f: ActivationFile, depths: [Int], targets: [String], results: [[Result<ProbeResult, Error>]],
                parameters: [String: String], warnings: [String], inputs: [ActivationFile], labels: [[Int]],
                scored: ActivationFile, metric: Metric = .probeAccuracy) throws -> MetricReport {
        var records: [MetricRecord] = []
        let base = MetricRecord(metric: metric.name, run: f.metadata.run, file: f.path, probeSet: f.metadata.probeSet, step: f.metadata.step)
        let weights = try bootstrap.map { try $0.weights(for: scored) }
        for (i, depth) in depths.enumerated() {
            var means: [Double] = []
            var failures: [String] = []
            // Out-of-fold correctness per target (rows) and clip (columns), then the mean over targets.
            let n = labels.first?.count ?? 0
            var correct = Matrix<Double>(rows: targets.count + 1, cols: n)
            for (t, target) in targets.enumerated() {
                var r = base
                r.depth = depth
                r.target = target
                switch results[i][t] {
                case .success(let p):
                    r.value = p.mean
                    r.std = p.std
                    means.append(p.mean)
                    if p.predictions.count == n {
                        for k in 0..<n where p.predictions[k] == labels[t][k] {
                            correct[t, k] = 1
                            correct[targets.count, k] += 1 / Double(targets.count)
                        }
                    }
                case .failure(let e):
                    r.undefined = "\(e)"
                    failures.append(target)
                }
                records.append(r)
            }
            var m = base
            m.metric = (metric == .probeAccuracyShuffled ? Metric.probeAccuracyShuffledMeanOverTargets : .probeAccuracyMeanOverTargets).name
            m.depth = depth
            if failures.isEmpty, !means.isEmpty { m.value = means.reduce(0, +) / Double(means.count) } else {
                m.undefined = "probe undefined for target\(failures.count == 1 ? "" : "s") \(failures.joined(separator: ", "))"
            }
            records.append(m)
            if let bootstrap, let weights, n > 0, weights.weights.rows == n {
                let replicates = Bootstrap.replicateMeans(correct, weights: weights.weights)
                let first = records.count - targets.count - 1
                for row in 0...targets.count {
                    let values = (0..<replicates.cols).map { Optional(replicates[row, $0]) }
                    records[first + row].setBootstrap(values, clips: n, clipSet: weights.clipSet, bootstrap: bootstrap)
                }
            }
        }
        return MetricReport(command: MetricFamily.probe.command, parameters: parameters, conventions: ProbeAnalysis.conventions,
                            inputs: inputs.map(InputDescription.init), records: records, warnings: warnings)
    }

    public static func table(_ report: MetricReport) -> String {
        let targets = Array(Set(report.records.compactMap(\.target))).sorted()
        var t = TextTable(header: ["depth"] + targets + ["mean"])
        for d in Array(Set(report.records.compactMap(\.depth))).sorted() {
            var row = ["\(d)"]
            for target in targets {
                row.append(report.records.first { $0.metric == Metric.probeAccuracy.name && $0.depth == d && $0.target == target }.map { cell($0, digits: 3) } ?? "")
            }
            row.append(report.records.first { $0.metric == Metric.probeAccuracyMeanOverTargets.name && $0.depth == d }.map { cell($0, digits: 3) } ?? "")
            t.rows.append(row)
        }
        var out = "linear probe accuracy (\(report.parameters["split"] == "cv" ? "\(report.parameters["folds"] ?? "3")-fold CV, mean ± std" : "train/test"), C = \(report.parameters["c"] ?? "1"))\n"
        out += t.render(leftColumns: 0)
        for r in report.records where r.undefined != nil && r.metric == Metric.probeAccuracy.name {
            out += "  n/a at depth \(r.depth!), target \(r.target!): \(r.undefined!)\n"
        }
        for w in report.warnings { out += "warning: \(w)\n" }
        return out
    }
}

extension ProbeOptions {
    /// How the probes' L-BFGS stops, as recorded in the parameters of every report that fits probes.
    var stoppingParameters: [String: String] {
        ["max_iterations": "\(maxIterations)", "tolerance": "\(tolerance)", "function_tolerance": "\(functionTolerance)"]
    }
}
