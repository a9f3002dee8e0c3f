import Foundation
@testable import RepresentationMetrics
import TestSupport
import XCTest

/// Every case of `Metric` has what a newcomer looks for, where `MetricFamily` says it is: a definition
/// (unit, convention, undefined reasons), a pure function, a unit test, an analysis, a CLI command and
/// an entry in docs/metrics.md. Checked against the source tree, the built `bwanalyze` and the docs.
final class MetricCatalogueTests: XCTestCase {
    func read(_ relative: String) throws -> String {
        try String(contentsOf: repositoryRoot.appendingPathComponent(relative), encoding: .utf8)
    }

    /// The definitions table of a family, without the precondition `Metric.definition` applies.
    func definitions(_ f: MetricFamily) -> [Metric: MetricDefinition] {
        switch f {
        case .cka: return Metric.ckaDefinitions
        case .spectrum: return Metric.spectrumDefinitions
        case .pairwiseGeometry: return Metric.pairwiseGeometryDefinitions
        case .retrieval: return Metric.retrievalDefinitions
        case .probe: return Metric.probeDefinitions
        case .patchSimilarity: return Metric.patchSimilarityDefinitions
        case .tokenShift: return Metric.tokenShiftDefinitions
        case .attention: return Metric.attentionDefinitions
        case .occDrop: return Metric.occDropDefinitions
        case .similarity: return Metric.similarityDefinitions
        }
    }

    func testEveryMetricHasADefinitionInItsFamilysFile() throws {
        for f in MetricFamily.allCases {
            XCTAssertEqual(Set(definitions(f).keys), Set(f.metrics), "\(f): the definitions in \(f.sourceFile) and the family's metrics differ")
            let source = try read("Sources/RepresentationMetrics/\(f.sourceFile)")
            XCTAssertTrue(source.contains("static let \(f.rawValue)Definitions"), "\(f.sourceFile) holds no \(f.rawValue)Definitions")
        }
        for m in Metric.allCases {
            let d = try XCTUnwrap(definitions(m.family)[m])
            XCTAssertFalse(d.unit.isEmpty, m.name)
            XCTAssertFalse(d.convention.isEmpty, m.name)
            XCTAssertFalse(d.undefinedWhen.isEmpty, m.name)
        }
    }

    func testNamesAreUniqueAndRoundTrip() {
        XCTAssertEqual(Set(Metric.allCases.map(\.name)).count, Metric.allCases.count)
        for m in Metric.allCases { XCTAssertEqual(Metric(recordName: m.name), m) }
        XCTAssertEqual(Metric.retrievalTop(5), "retrieval_top5")
        XCTAssertEqual(Metric(recordName: "retrieval_top10"), .retrievalTopK)
        XCTAssertNil(Metric(recordName: "retrieval_topx"))
        XCTAssertNil(Metric(recordName: "no_such_metric"))
        // Every kernel and estimator CKA reports is a case, and every CKA case is reachable.
        let reachable = CKAKernel.allCases.flatMap { k in CKAEstimator.allCases.compactMap { Metric.cka(k, $0) } }
        XCTAssertEqual(Set(reachable), Set(MetricFamily.cka.metrics))
    }

    /// The public names are pinned: they are what CSV and JSON consumers read.
    func testPublicNamesArePinned() {
        XCTAssertEqual(Metric.allCases.map(\.name), [
            "cka_linear_biased", "cka_linear_debiased", "cka_linear_minibatch", "cka_rbf_biased", "cka_rbf_debiased",
            "effective_rank", "participation_ratio", "isotropy", "k90", "condition_number", "rankme",
            "uniformity", "mean_norm", "std_norm", "mean_cosine", "std_cosine", "mean_distance", "std_distance",
            "retrieval_top_k", "retrieval_map", "retrieval_map_chance",
            "probe_accuracy", "probe_accuracy_mean_over_targets", "probe_accuracy_shuffled", "probe_accuracy_shuffled_mean_over_targets",
            "patch_similarity", "token_shift_cosine", "token_shift_relative",
            "attention_distance_spatial", "attention_distance_temporal", "attention_entropy",
            "occdrop", "probe_accuracy_full", "probe_accuracy_one_patch",
            "procrustes_distance", "procrustes_angle", "svcca", "pwcca", "rsa", "mutual_knn",
        ])
    }

    func testEveryFamilyHasAPureFunctionAUnitTestAndAnAnalysis() throws {
        for f in MetricFamily.allCases {
            let tests = try read("Tests/RepresentationMetricsTests/\(f.unitTests)")
            for m in f.metrics {
                let (function, file) = m.function
                let source = try read("Sources/RepresentationMetrics/\(file)")
                let parts = function.split(separator: ".").map(String.init)
                if parts.count == 2 {
                    XCTAssertTrue(source.contains("enum \(parts[0])") || source.contains("extension \(parts[0])"),
                                  "\(file) does not declare \(parts[0])")
                    XCTAssertTrue(source.contains("static func \(parts[1])("), "\(file) does not declare \(function)")
                } else {
                    XCTAssertTrue(source.contains("public struct \(function)"), "\(file) does not declare \(function)")
                }
                XCTAssertTrue(tests.contains("\(function)("), "\(f.unitTests) does not call \(function)")
            }

            let analysis = try read("Sources/AnalysisCommands/\(f.analysis).swift")
            XCTAssertTrue(analysis.contains("public struct \(f.analysis)"), "\(f.analysis).swift does not declare \(f.analysis)")
            for m in f.metrics {
                // The analysis names the metric by its case, by its family, or (CKA) by kernel and estimator.
                let named = analysis.contains(".\(m)") || analysis.contains("MetricFamily.\(f)") || analysis.contains("Metric.\(f)(")
                XCTAssertTrue(named, "\(f.analysis).swift does not refer to Metric.\(m)")
            }
        }
    }

    func testEveryFamilyHasACommand() throws {
        let help = try bwanalyze("--help")
        XCTAssertEqual(help.status, 0)
        let commands = Set(help.stdout.split(separator: "\n").compactMap { line -> String? in
            let words = line.split(separator: " ")
            return line.hasPrefix("  ") && !line.hasPrefix("   ") ? words.first.map(String.init) : nil
        })
        for f in MetricFamily.allCases {
            XCTAssertTrue(commands.contains(f.command), "bwanalyze --help lists no '\(f.command)'")
        }
        for command in Set(MetricFamily.allCases.map(\.command)) {
            let r = try bwanalyze(command, "--help")
            XCTAssertEqual(r.status, 0, command)
        }
    }

    func testDocsHaveEveryMetricAndTheCatalogue() throws {
        let docs = try read("docs/metrics.md")
        XCTAssertTrue(docs.contains(Metric.catalogueMarkdown),
                      "docs/metrics.md's section 'Catalogue' differs from Metric.catalogueMarkdown; it should read:\n\(Metric.catalogueMarkdown)")
        for m in Metric.allCases { XCTAssertTrue(docs.contains("`\(m.name)`"), m.name) }
        for f in MetricFamily.allCases { XCTAssertTrue(docs.contains("`bwanalyze \(f.command)"), f.command) }
    }
}
