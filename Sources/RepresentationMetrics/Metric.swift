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
    case retrievalMAPChance = "retrieval_map_chance"
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
    // Similarity.swift
    case procrustesDistance = "procrustes_distance"
    case procrustesAngle = "procrustes_angle"
    case svcca = "svcca"
    case pwcca = "pwcca"
    case rsa = "rsa"
    case mutualKNN = "mutual_knn"

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
        case .retrievalTopK, .retrievalMAP, .retrievalMAPChance: return .retrieval
        case .probeAccuracy, .probeAccuracyMeanOverTargets, .probeAccuracyShuffled, .probeAccuracyShuffledMeanOverTargets: return .probe
        case .patchSimilarity: return .patchSimilarity
        case .tokenShiftCosine, .tokenShiftRelative: return .tokenShift
        case .attentionDistanceSpatial, .attentionDistanceTemporal, .attentionEntropy: return .attention
        case .occDrop, .probeAccuracyFull, .probeAccuracyOnePatch: return .occDrop
        case .procrustesDistance, .procrustesAngle, .svcca, .pwcca, .rsa, .mutualKNN: return .similarity
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
        case .similarity: table = Metric.similarityDefinitions
        }
        guard let d = table[self] else { preconditionFailure("\(name) has no definition in \(family.sourceFile)") }
        return d
    }

    /// The pure function or accumulator that computes this metric, and the file in
    /// Sources/RepresentationMetrics that declares it: the family's (`MetricFamily.home`) except for
    /// the CKA estimators with a function of their own.
    public var function: (name: String, file: String) {
        switch self {
        case .ckaRBFBiased, .ckaRBFDebiased: return ("CKA.rbfGram", "CKA.swift")
        case .ckaLinearMinibatch: return ("MinibatchCKAAccumulator", "LinearCKAAccumulator.swift")
        case .retrievalMAPChance: return ("Retrieval.chanceMeanAveragePrecision", "Retrieval.swift")
        case .svcca: return ("Similarity.svcca", "Similarity.swift")
        case .pwcca: return ("Similarity.pwcca", "Similarity.swift")
        case .rsa: return ("Similarity.rsa", "Similarity.swift")
        case .mutualKNN: return ("Similarity.mutualKNN", "Similarity.swift")
        default: return (family.function, family.sourceFile)
        }
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
    case cka, spectrum, pairwiseGeometry, retrieval, probe, patchSimilarity, tokenShift, attention, occDrop, similarity

    /// The metrics of this family, in catalogue order.
    public var metrics: [Metric] { Metric.allCases.filter { $0.family == self } }

    /// Where the family's pieces are: one row of the catalogue.
    public struct Home: Sendable, Equatable {
        /// The file in Sources/RepresentationMetrics with the pure function and the metrics' definitions.
        public let sourceFile: String
        /// The pure function or accumulator that computes the metrics (declared in `sourceFile`).
        public let function: String
        /// The analysis type in AnalysisCommands (file `<analysis>.swift`).
        public let analysis: String
        /// The `bwanalyze` subcommand.
        public let command: String
        /// The unit-test file in Tests/RepresentationMetricsTests.
        public let unitTests: String
    }

    /// The catalogue.
    public var home: Home {
        switch self {
        case .cka:
            return Home(sourceFile: "CKA.swift", function: "CKA.linear", analysis: "CKAAnalysis", command: "cka", unitTests: "CKATests.swift")
        case .spectrum:
            return Home(sourceFile: "CovarianceSpectrum.swift", function: "CovarianceSpectrum.summary", analysis: "SpectrumAnalysis",
                        command: "spectrum", unitTests: "SpectrumTests.swift")
        case .pairwiseGeometry:
            return Home(sourceFile: "PairwiseGeometry.swift", function: "PairwiseStatistics.compute", analysis: "SpectrumAnalysis",
                        command: "spectrum", unitTests: "PairwiseGeometryTests.swift")
        case .retrieval:
            return Home(sourceFile: "Retrieval.swift", function: "Retrieval.evaluate", analysis: "RetrievalAnalysis",
                        command: "retrieval", unitTests: "RetrievalTests.swift")
        case .probe:
            return Home(sourceFile: "LinearProbe.swift", function: "LinearProbe.crossValidate", analysis: "ProbeAnalysis",
                        command: "probe", unitTests: "LinearProbeTests.swift")
        case .patchSimilarity:
            return Home(sourceFile: "PatchSimilarity.swift", function: "PatchSimilarityAccumulator", analysis: "TokenAnalysis",
                        command: "tokens", unitTests: "TokenMetricsTests.swift")
        case .tokenShift:
            return Home(sourceFile: "TokenShift.swift", function: "TokenShiftAccumulator", analysis: "TokenAnalysis",
                        command: "tokens", unitTests: "TokenMetricsTests.swift")
        case .attention:
            return Home(sourceFile: "AttentionMetrics.swift", function: "AttentionDistanceAccumulator", analysis: "AttentionAnalysis",
                        command: "attention", unitTests: "AttentionMetricsTests.swift")
        case .occDrop:
            // The command is named after its metric.
            return Home(sourceFile: "OccDrop.swift", function: "OccDrop.evaluate", analysis: "OccDropAnalysis",
                        command: Metric.occDrop.name, unitTests: "OccDropTests.swift")
        case .similarity:
            return Home(sourceFile: "Similarity.swift", function: "Similarity.procrustes", analysis: "SimilarityAnalysis",
                        command: "similarity", unitTests: "SimilarityTests.swift")
        }
    }

    public var sourceFile: String { home.sourceFile }
    public var function: String { home.function }
    public var analysis: String { home.analysis }
    public var command: String { home.command }
    public var unitTests: String { home.unitTests }
}

extension Metric {
    /// The catalogue as a Markdown table (the section "Catalogue" of docs/metrics.md).
    public static var catalogueMarkdown: String {
        var s = "| metric | unit | pure function | analysis | command | unit tests | undefined when |\n| --- | --- | --- | --- | --- | --- | --- |\n"
        for m in Metric.allCases {
            let f = m.family
            s += "| `\(m.name)` | \(m.unit) | `\(m.function.name)` (\(m.function.file)) | `\(f.analysis)` | `bwanalyze \(f.command)` | \(f.unitTests) | \(m.undefinedWhen.joined(separator: "; ")) |\n"
        }
        return s
    }
}
