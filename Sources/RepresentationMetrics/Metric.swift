/// Every metric `bwanalyze` reports, by the name it has in CSV and JSON (`rawValue`).
///
/// This is the one place a metric's CSV name is written. Its unit, convention text and the reasons it
/// can be undefined (`definition`) sit beside its pure function, in the file of its family
/// (`MetricFamily.sourceFile`); the analysis, CLI command and unit tests are named by `MetricFamily`.
/// Analyses, findings, figures and pages refer to these cases, never to the names as strings.
public enum Metric: String, CaseIterable, Sendable, Codable {
    // CKA.swift
    case ckaLinearBiased = "cka_linear_biased"
    case ckaLinearDebiased = "cka_linear_debiased"
    case ckaLinearMinibatch = "cka_linear_minibatch"
    case ckaRBFBiased = "cka_rbf_biased"
    case ckaRBFDebiased = "cka_rbf_debiased"
    // CovarianceSpectrum.swift
    case effectiveRank = "effective_rank"
    case participationRatio = "participation_ratio"
    case isotropy = "isotropy"
    case k90 = "k90"
    case conditionNumber = "condition_number"
    case rankMe = "rankme"
    // PairwiseGeometry.swift
    case uniformity = "uniformity"
    case meanNorm = "mean_norm"
    case stdNorm = "std_norm"
    case meanCosine = "mean_cosine"
    case stdCosine = "std_cosine"
    case meanDistance = "mean_distance"
    case stdDistance = "std_distance"
    // Retrieval.swift
    /// `retrieval_top<k>` in records (one per k, `retrievalTop(_:)`); this name keys its convention.
    case retrievalTopK = "retrieval_top_k"
    case retrievalMAP = "retrieval_map"
    // LinearProbe.swift
    case probeAccuracy = "probe_accuracy"
    case probeAccuracyMeanOverTargets = "probe_accuracy_mean_over_targets"
    case probeAccuracyShuffled = "probe_accuracy_shuffled"
    case probeAccuracyShuffledMeanOverTargets = "probe_accuracy_shuffled_mean_over_targets"
    // PatchSimilarity.swift
    case patchSimilarity = "patch_similarity"
    // TokenShift.swift
    case tokenShiftCosine = "token_shift_cosine"
    case tokenShiftRelative = "token_shift_relative"
    // AttentionMetrics.swift
    case attentionDistanceSpatial = "attention_distance_spatial"
    case attentionDistanceTemporal = "attention_distance_temporal"
    case attentionEntropy = "attention_entropy"
    // OccDrop.swift
    case occDrop = "occdrop"
    case probeAccuracyFull = "probe_accuracy_full"
    case probeAccuracyOnePatch = "probe_accuracy_one_patch"

    /// The name in CSV and JSON records.
    public var name: String { rawValue }

    /// The record name of top-k retrieval for one k, e.g. `retrieval_top5`.
    public static func retrievalTop(_ k: Int) -> String {
        String(Metric.retrievalTopK.name.dropLast(Metric.topKSuffix.count)) + "\(k)"
    }

    private static let topKSuffix = "_k"

    /// The metric a record name belongs to (`retrieval_top5` is `.retrievalTopK`); nil for a name not in the catalogue.
    public init?(recordName: String) {
        if let m = Metric(rawValue: recordName) {
            self = m
            return
        }
        let prefix = Metric.retrievalTopK.name.dropLast(Metric.topKSuffix.count)
        guard recordName.hasPrefix(prefix), Int(recordName.dropFirst(prefix.count)) != nil else { return nil }
        self = .retrievalTopK
    }

    /// The linear or RBF CKA estimator of a kernel and an estimator; nil for RBF minibatch (not implemented).
    public static func cka(_ kernel: CKAKernel, _ estimator: CKAEstimator) -> Metric? {
        switch (kernel, estimator) {
        case (.linear, .biased): return .ckaLinearBiased
        case (.linear, .debiased): return .ckaLinearDebiased
        case (.linear, .minibatch): return .ckaLinearMinibatch
        case (.rbf, .biased): return .ckaRBFBiased
        case (.rbf, .debiased): return .ckaRBFDebiased
        case (.rbf, .minibatch): return nil
        }
    }

    /// The family: the pure function's file, the analysis, the command and the unit tests.
    public var family: MetricFamily {
        switch self {
        case .ckaLinearBiased, .ckaLinearDebiased, .ckaLinearMinibatch, .ckaRBFBiased, .ckaRBFDebiased: return .cka
        case .effectiveRank, .participationRatio, .isotropy, .k90, .conditionNumber, .rankMe: return .spectrum
        case .uniformity, .meanNorm, .stdNorm, .meanCosine, .stdCosine, .meanDistance, .stdDistance: return .pairwiseGeometry
        case .retrievalTopK, .retrievalMAP: return .retrieval
        case .probeAccuracy, .probeAccuracyMeanOverTargets, .probeAccuracyShuffled, .probeAccuracyShuffledMeanOverTargets: return .probe
        case .patchSimilarity: return .patchSimilarity
        case .tokenShiftCosine, .tokenShiftRelative: return .tokenShift
        case .attentionDistanceSpatial, .attentionDistanceTemporal, .attentionEntropy: return .attention
        case .occDrop, .probeAccuracyFull, .probeAccuracyOnePatch: return .occDrop
        }
    }

    /// Unit, convention and undefined reasons, from the family's file.
    public var definition: MetricDefinition {
        let table: [Metric: MetricDefinition]
        switch family {
        case .cka: table = Metric.ckaDefinitions
        case .spectrum: table = Metric.spectrumDefinitions
        case .pairwiseGeometry: table = Metric.pairwiseGeometryDefinitions
        case .retrieval: table = Metric.retrievalDefinitions
        case .probe: table = Metric.probeDefinitions
        case .patchSimilarity: table = Metric.patchSimilarityDefinitions
        case .tokenShift: table = Metric.tokenShiftDefinitions
        case .attention: table = Metric.attentionDefinitions
        case .occDrop: table = Metric.occDropDefinitions
        }
        guard let d = table[self] else { preconditionFailure("\(name) has no definition in \(family.sourceFile)") }
        return d
    }

    /// The unit of a value, e.g. `fraction of clips (0 to 1)`.
    public var unit: String { definition.unit }

    /// The exact convention (the text JSON output gives under `conventions`).
    public var convention: String { definition.convention }

    /// When the value is reported undefined instead.
    public var undefinedWhen: [String] { definition.undefinedWhen }
}

/// What a metric's value means: unit, convention and the cases in which it is undefined.
public struct MetricDefinition: Sendable, Equatable {
    public var unit: String
    public var convention: String
    public var undefinedWhen: [String]

    public init(unit: String, convention: String, undefinedWhen: [String]) {
        self.unit = unit
        self.convention = convention
        self.undefinedWhen = undefinedWhen
    }
}

/// Where a newcomer finds each metric: one family per pure function (file in RepresentationMetrics),
/// analysis (AnalysisCommands/<analysis>.swift), `bwanalyze` subcommand, unit tests and section of
/// docs/metrics.md. A test checks every entry against the source tree, the CLI and the docs.
public enum MetricFamily: String, CaseIterable, Sendable {
    case cka, spectrum, pairwiseGeometry, retrieval, probe, patchSimilarity, tokenShift, attention, occDrop

    /// The metrics of this family, in catalogue order.
    public var metrics: [Metric] { Metric.allCases.filter { $0.family == self } }

    /// The file in Sources/RepresentationMetrics with the pure function and the metrics' definitions.
    public var sourceFile: String {
        switch self {
        case .cka: return "CKA.swift"
        case .spectrum: return "CovarianceSpectrum.swift"
        case .pairwiseGeometry: return "PairwiseGeometry.swift"
        case .retrieval: return "Retrieval.swift"
        case .probe: return "LinearProbe.swift"
        case .patchSimilarity: return "PatchSimilarity.swift"
        case .tokenShift: return "TokenShift.swift"
        case .attention: return "AttentionMetrics.swift"
        case .occDrop: return "OccDrop.swift"
        }
    }

    /// The pure function or accumulator that computes the metrics (declared in `sourceFile`).
    public var function: String {
        switch self {
        case .cka: return "CKA.linear"
        case .spectrum: return "CovarianceSpectrum.summary"
        case .pairwiseGeometry: return "PairwiseStatistics.compute"
        case .retrieval: return "Retrieval.evaluate"
        case .probe: return "LinearProbe.crossValidate"
        case .patchSimilarity: return "PatchSimilarityAccumulator"
        case .tokenShift: return "TokenShiftAccumulator"
        case .attention: return "AttentionDistanceAccumulator"
        case .occDrop: return "OccDrop.evaluate"
        }
    }

    /// The analysis type in AnalysisCommands (file `<analysis>.swift`).
    public var analysis: String {
        switch self {
        case .cka: return "CKAAnalysis"
        case .spectrum, .pairwiseGeometry: return "SpectrumAnalysis"
        case .retrieval: return "RetrievalAnalysis"
        case .probe: return "ProbeAnalysis"
        case .patchSimilarity, .tokenShift: return "TokenAnalysis"
        case .attention: return "AttentionAnalysis"
        case .occDrop: return "OccDropAnalysis"
        }
    }

    /// The `bwanalyze` subcommand.
    public var command: String {
        switch self {
        case .cka: return "cka"
        case .spectrum, .pairwiseGeometry: return "spectrum"
        case .retrieval: return "retrieval"
        case .probe: return "probe"
        case .patchSimilarity, .tokenShift: return "tokens"
        case .attention: return "attention"
        case .occDrop: return Metric.occDrop.name  // the command is named after its metric
        }
    }

    /// The unit-test file in Tests/RepresentationMetricsTests.
    public var unitTests: String {
        switch self {
        case .cka: return "CKATests.swift"
        case .spectrum: return "SpectrumTests.swift"
        case .pairwiseGeometry: return "PairwiseGeometryTests.swift"
        case .retrieval: return "RetrievalTests.swift"
        case .probe: return "LinearProbeTests.swift"
        case .patchSimilarity, .tokenShift: return "TokenMetricsTests.swift"
        case .attention: return "AttentionMetricsTests.swift"
        case .occDrop: return "OccDropTests.swift"
        }
    }
}

extension Metric {
    /// The catalogue as a Markdown table (the section "Catalogue" of docs/metrics.md).
    public static var catalogueMarkdown: String {
        var s = "| metric | unit | pure function | analysis | command | unit tests | undefined when |\n| --- | --- | --- | --- | --- | --- | --- |\n"
        for m in Metric.allCases {
            let f = m.family
            s += "| `\(m.name)` | \(m.unit) | `\(f.function)` (\(f.sourceFile)) | `\(f.analysis)` | `bwanalyze \(f.command)` | \(f.unitTests) | \(m.undefinedWhen.joined(separator: "; ")) |\n"
        }
        return s
    }
}
