import AnalysisCommands
import Foundation
import TestSupport
import XCTest

/// `mpirun -n R bwanalyze …` against one process of the same build: every analysis command and the
/// report give the numbers of one process (≤ 1e-12 relative on CKA, spectrum and token metrics, with
/// the smallest eigenvalue relative to the largest; identical probe, retrieval, OccDrop and attention
/// values), on R = 2 and 3 ranks, for an N that no R divides (37) and an N smaller than R (2 clips on
/// 3 ranks: a rank with no clips). A failing rank ends the job with its rank and message; a rank killed
/// mid-job leaves no output under the final name.
///
/// Needs the MPI build of bwanalyze (`swift build --traits MPI`), which the test command makes and names
/// in BWSSL_MPI_BWANALYZE; with BWSSL_REQUIRE_MPI=1 (set by the test command) its absence is a failure.
final class DistributedAnalysisTests: XCTestCase {
    var binary = ""
    var mpirun = ""
    let files = TemporaryDirectory()
    /// The largest relative difference seen per metric family, printed at the end of each test.
    var worst: [String: Double] = [:]

    override func setUpWithError() throws {
        let env = ProcessInfo.processInfo.environment
        let candidates = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"]
        guard let bin = env["BWSSL_MPI_BWANALYZE"], FileManager.default.isExecutableFile(atPath: bin),
              let run = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            if env["BWSSL_REQUIRE_MPI"] == "1" { XCTFail("BWSSL_REQUIRE_MPI=1 but BWSSL_MPI_BWANALYZE or mpirun is missing"); return }
            throw XCTSkip("no MPI build of bwanalyze (BWSSL_MPI_BWANALYZE) or no mpirun")
        }
        binary = bin
        mpirun = run
        // 37 clips (no R divides it; D = 30, so mean-pooled linear CKA takes the clip-Gram form) and 2
        // clips (fewer than 3 ranks; D = 10 > N, the Gram-matrix form), T = 6, depths 0...3.
        for (name, clips, features, seed) in [("odd.h5", 37, "30", "0"), ("two.h5", 2, "10", "3")] {
            let r = try runProcess(binary, ["synth", "--out", files.file(name), "--clips", String(clips), "--tokens", "6",
                                            "--features", features, "--layers", "3", "--seed", seed, "--quiet"])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
    }

    override func tearDown() {
        for (family, d) in worst.sorted(by: { $0.key < $1.key }) {
            print("distributed agreement: \(family): largest relative difference \(d)")
        }
    }

    var odd: String { files.file("odd.h5") }
    var two: String { files.file("two.h5") }

    func launch(_ ranks: Int, _ arguments: [String]) throws -> ProcessResult {
        try runProcess(mpirun, ["-n", String(ranks), "--oversubscribe", binary] + arguments, environment: mpiEnvironment)
    }

    let mpiEnvironment = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                          "OMPI_MCA_rmaps_base_oversubscribe": "1"]

    /// Metrics whose values must be identical (they are computed from the gathered, bit-identical clip
    /// vectors, or from sums of exactly representable counts).
    static func mustBeIdentical(_ metric: String) -> Bool {
        ["probe_accuracy", "retrieval", "occdrop", "attention", "cka_rbf"].contains { metric.hasPrefix($0) }
    }

    /// Compares one value of R ranks with one process's, under the stated tolerance.
    func check(_ metric: String, _ field: String, _ one: Double?, _ many: Double?, _ context: String,
               file: StaticString = #filePath, line: UInt = #line) {
        guard let one, let many else {
            XCTAssertEqual(one == nil, many == nil, "\(context): \(metric) \(field) defined in one run only", file: file, line: line)
            return
        }
        if Self.mustBeIdentical(metric) {
            XCTAssertEqual(one, many, "\(context): \(metric) \(field)", file: file, line: line)
            worst[metric, default: 0] = max(worst[metric, default: 0], one == many ? 0 : .infinity)
            return
        }
        // The condition number is λmax/λmin: its error is that of λmin relative to λmax, times itself.
        let difference = metric == "condition_number" ? abs(1 / one - 1 / many) : abs(one - many) / max(abs(one), 1e-300)
        XCTAssertLessThanOrEqual(difference, 1e-12, "\(context): \(metric) \(field): \(one) vs \(many)", file: file, line: line)
        let family = metric == "condition_number" ? "condition_number (1/cond absolute)" : metric
        worst[family, default: 0] = max(worst[family, default: 0], difference)
    }

    /// Runs `arguments` (an analysis command) as one process and on 2 and 3 ranks and compares the records.
    func assertSameRecords(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let one = try runProcess(binary, arguments + ["--format", "json"])
        XCTAssertEqual(one.status, 0, one.stderr, file: file, line: line)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let reference = try decoder.decode(MetricReport.self, from: Data(one.stdout.utf8))
        XCTAssertFalse(reference.records.isEmpty, file: file, line: line)
        for ranks in [2, 3] {
            let context = "\(arguments.joined(separator: " ")) on \(ranks) ranks"
            let many = try launch(ranks, arguments + ["--format", "json"])
            XCTAssertEqual(many.status, 0, "\(context): \(many.stderr)", file: file, line: line)
            let report = try decoder.decode(MetricReport.self, from: Data(many.stdout.utf8))
            XCTAssertEqual(report.records.count, reference.records.count, context, file: file, line: line)
            for (a, b) in zip(reference.records, report.records) {
                XCTAssertEqual([a.metric, a.target, a.depth.map(String.init), a.depthB.map(String.init), a.head.map(String.init)],
                               [b.metric, b.target, b.depth.map(String.init), b.depthB.map(String.init), b.head.map(String.init)],
                               context, file: file, line: line)
                XCTAssertEqual(a.undefined, b.undefined, "\(context): \(a.metric)", file: file, line: line)
                check(a.metric, "value", a.value, b.value, context, file: file, line: line)
                check(a.metric, "std", a.std, b.std, context, file: file, line: line)
                // Permutation p-values: the same permutations on every rank count.
                XCTAssertEqual(a.pValue, b.pValue, "\(context): \(a.metric) p-value", file: file, line: line)
            }
        }
    }

    func testCKAMatchesOneProcess() throws {
        try assertSameRecords(["cka", odd, "--pool", "tokens", "--pairs", "all", "--depth", "layers"])
        try assertSameRecords(["cka", odd, "--pool", "tokens", "--estimator", "debiased", "--depth", "layers"])
        try assertSameRecords(["cka", odd, "--pool", "tokens", "--estimator", "minibatch", "--batch-size", "5", "--depth", "layers"])
        try assertSameRecords(["cka", odd, "--pairs", "all", "--depth", "layers"])
        try assertSameRecords(["cka", odd, "--kernel", "rbf", "--depth", "layers"])
        // Two clips on three ranks: one rank streams nothing; D > N takes the Gram-matrix path.
        try assertSameRecords(["cka", two, "--depth", "layers"])
        // N = 80 against D = 10: the feature-space sums.
        try assertSameRecords(["cka", fixturePath("run-a.h5"), fixturePath("run-b.h5"), "--depth", "layers"])
    }

    func testSpectrumAndTokenMetricsMatchOneProcess() throws {
        try assertSameRecords(["spectrum", odd, "--pool", "tokens", "--depth", "layers", "--pairwise-rows", "50"])
        try assertSameRecords(["spectrum", odd, "--depth", "layers"])
        try assertSameRecords(["spectrum", two, "--depth", "layers"])
        try assertSameRecords(["tokens", odd, "--depth", "layers"])
        try assertSameRecords(["tokens", two, "--depth", "layers"])
        try assertSameRecords(["attention", fixturePath("attention.h5")])
    }

    func testSimilarityMatchesOneProcess() throws {
        try assertSameRecords(["similarity", odd, "--pairs", "all", "--depth", "layers"])
        try assertSameRecords(["similarity", fixturePath("run-a.h5"), fixturePath("run-b.h5"), "--pairs", "matching", "--depth", "layers",
                               "--measure", "procrustes_angle,rsa,mutual_knn,cka_linear_biased", "--permutations", "200"])
    }

    func testProbesRetrievalAndOccDropAreIdentical() throws {
        try assertSameRecords(["probe", fixturePath("run-a.h5"), "--depth", "layers"])
        try assertSameRecords(["probe", odd, "--depth", "layers", "--c-grid", "0.1,1"])
        try assertSameRecords(["probe", "--train", fixturePath("run-a.h5"), "--test", fixturePath("run-b.h5")])
        try assertSameRecords(["retrieval", fixturePath("run-a.h5"), "--depth", "layers"])
        try assertSameRecords(["retrieval", odd, "--depth", "layers"])
        try assertSameRecords(["occdrop", fixturePath("run-a.h5"), fixturePath("run-b.h5"), "--depth", "layers"])
    }

    /// The report's metrics.csv (every analysis, with bootstrap intervals) on 3 ranks against one process.
    func testReportMatchesOneProcess() throws {
        let runs = TemporaryDirectory(), out = TemporaryDirectory()
        for name in ["run-a.h5", "run-b.h5", "attention.h5"] {
            try FileManager.default.copyItem(atPath: fixturePath(name), toPath: runs.file(name))
        }
        try FileManager.default.copyItem(atPath: odd, toPath: runs.file("odd.h5"))
        let one = try runProcess(binary, ["report", runs.path, "--out", out.file("one"), "--resamples", "50", "--quiet"])
        XCTAssertEqual(one.status, 0, one.stderr)
        let many = try launch(3, ["report", runs.path, "--out", out.file("three"), "--resamples", "50", "--quiet"])
        XCTAssertEqual(many.status, 0, many.stderr)
        let a = try csvRows(out.file("one/metrics.csv")), b = try csvRows(out.file("three/metrics.csv"))
        XCTAssertGreaterThan(a.count, 100)
        XCTAssertEqual(a.count, b.count)
        for (x, y) in zip(a, b) {
            for (key, value) in x where !["value", "std", "ci_low", "ci_high"].contains(key) {
                XCTAssertEqual(value, y[key], "\(key) of \(x["metric"] ?? "")")
            }
            for key in ["value", "std", "ci_low", "ci_high"] {
                check(x["metric"]!, key, Double(x[key] ?? ""), Double(y[key] ?? ""), "report on 3 ranks, \(x["file"] ?? "")")
            }
        }
        // The findings: the same verdicts and texts; their measured numbers (differences of the values
        // above) within 1e-12 of the larger of 1 and their size.
        let findings = try ["one", "three"].map {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out.file("\($0)/findings.json"))))
        }
        assertSameJSON(findings[0], findings[1], path: "findings")
    }

    func assertSameJSON(_ a: Any, _ b: Any, path: String) {
        switch (a, b) {
        case let (x as [String: Any], y as [String: Any]):
            XCTAssertEqual(Set(x.keys), Set(y.keys), path)
            for (k, v) in x { if let w = y[k] { assertSameJSON(v, w, path: path + "." + k) } }
        case let (x as [Any], y as [Any]):
            XCTAssertEqual(x.count, y.count, path)
            for (i, (v, w)) in zip(x, y).enumerated() { assertSameJSON(v, w, path: path + "[\(i)]") }
        case let (x as NSNumber, y as NSNumber) where !(a is Bool):
            XCTAssertLessThanOrEqual(abs(x.doubleValue - y.doubleValue), 1e-12 * max(1, abs(x.doubleValue)), path)
        default:
            XCTAssertEqual("\(a)", "\(b)", path)
        }
    }

    /// The rows of a CSV file (RFC 4180 quoting) as column → text.
    func csvRows(_ path: String) throws -> [[String: String]] {
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
        var chars = try String(contentsOfFile: path, encoding: .utf8).makeIterator()
        while let c = chars.next() {
            if quoted {
                if c == "\"" {
                    if let next = chars.next() {
                        if next == "\"" { field.append("\"") } else {
                            quoted = false
                            if next == "," { row.append(field); field = "" } else if next == "\n" { row.append(field); rows.append(row); row = []; field = "" }
                        }
                    } else { quoted = false }
                } else { field.append(c) }
            } else if c == "\"" { quoted = true } else if c == "," { row.append(field); field = "" } else if c == "\n" {
                row.append(field); rows.append(row); row = []; field = ""
            } else { field.append(c) }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        guard let header = rows.first else { return [] }
        return rows.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
    }

    /// A rank that cannot read its clips ends the job: nonzero status, one line naming the rank and the
    /// file, and no output file.
    func testAFailingRankEndsTheJobWithItsRankAndMessage() throws {
        let out = TemporaryDirectory()
        let damaged = repositoryRoot.appendingPathComponent("Tests/HostileCorpus/gzip-damaged-chunk.h5").path
        let r = try launch(2, ["cka", damaged, "-o", out.file("cka.csv")])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("bwanalyze: error: rank "), r.stderr)
        XCTAssertTrue(r.stderr.contains("gzip-damaged-chunk.h5"), r.stderr)
        XCTAssertEqual(out.contents, [])
    }

    /// A command that is not distributed would run once per rank: it refuses to start.
    func testCommandsThatAreNotDistributedRefuseSeveralProcesses() throws {
        let r = try launch(2, ["inspect", odd])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("bwanalyze: error: inspect runs as one process"), r.stderr)
        XCTAssertFalse(r.stdout.contains("odd.h5"), r.stdout)
    }

    /// A rank killed while the report runs: the job ends with a nonzero status and the report folder
    /// holds nothing under its final name. The ranks are stopped as soon as rank 0 has listed its inputs
    /// (the analyses are under way), so the kill cannot come after the report was written.
    func testKillingARankMidJobLeavesNoOutput() throws {
        let runs = TemporaryDirectory(), out = TemporaryDirectory()
        try FileManager.default.copyItem(atPath: fixturePath("run-a.h5"), toPath: runs.file("run-a.h5"))
        let target = out.file("report-\(UUID().uuidString)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        p.arguments = ["-n", "2", "--oversubscribe", binary, "report", runs.path, "--out", target, "--resamples", "50"]
        p.environment = ProcessInfo.processInfo.environment.merging(mpiEnvironment) { $1 }
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        let started = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var seen = ""
        err.fileHandleForReading.readabilityHandler = { h in
            let data = h.availableData
            if data.isEmpty { h.readabilityHandler = nil; return }
            seen += String(decoding: data, as: UTF8.self)
            if seen.contains("activation file") { started.signal() }
        }
        try p.run()
        XCTAssertEqual(started.wait(timeout: .now() + 120), .success, "rank 0 never listed its inputs")
        let ranks = rankProcesses(marker: target)
        XCTAssertEqual(ranks.count, 2, "rank processes: \(ranks)")
        for pid in ranks.values { kill(pid, SIGSTOP) }
        if let victim = ranks[1] { kill(victim, SIGKILL) }
        for pid in ranks.values { kill(pid, SIGCONT) }
        p.waitUntilExit()
        XCTAssertNotEqual(p.terminationStatus, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: target + "/summary.json"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: target + "/metrics.csv"))
    }

    /// The processes of the job (rank → pid), found by a unique argument on their command lines.
    func rankProcesses(marker: String) -> [Int: pid_t] {
        var found: [Int: pid_t] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry),
                  let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                  String(decoding: cmdline, as: UTF8.self).contains(binary + "\u{0}"),
                  String(decoding: cmdline, as: UTF8.self).contains(marker),
                  let environ = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { continue }
            for variable in String(decoding: environ, as: UTF8.self).split(separator: "\u{0}")
            where variable.hasPrefix("OMPI_COMM_WORLD_RANK=") {
                if let rank = Int(variable.dropFirst("OMPI_COMM_WORLD_RANK=".count)) { found[rank] = pid }
            }
        }
        return found
    }
}
