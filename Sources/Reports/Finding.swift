import Foundation

/// One of the paper's findings checked against measured records (docs/report.md, "Findings criteria"; docs/design.md gives the map).
public struct Finding: Codable, Sendable, Equatable {
    /// One measured comparison that enters a finding's verdict.
    public struct Check: Codable, Sendable, Equatable {
        /// What was compared, e.g. `probe gap sim-k4 vs e2e (actions)`.
        public var name: String
        /// The kind of comparison, shared by the checks of one criterion (e.g. `probe gap BW - E2E`);
        /// the findings table summarises the checks of each kind.
        public var kind: String
        /// The point value of the compared quantity.
        public var measured: Double
        /// Its 95% interval over trainings and clips (`SeedReplicates`; with one training, the clip
        /// bootstrap's); nil when the records behind it give none.
        public var ciLow: Double?
        public var ciHigh: Double?
        /// The stated criterion, e.g. `<= 0.04`.
        public var criterion: String
        /// Whether the point value meets the criterion (shown for reference; the verdict uses the interval).
        public var passed: Bool
        /// `reproduced` (the interval lies on the paper's side of the threshold), `not reproduced` (it
        /// lies wholly on the other side) or `inconclusive` (it straddles the threshold, or no interval).
        public var verdict: String
        /// The paper's value for this comparison.
        public var paper: String
        /// S, the trainings (seeds) the point averages; nil for checks built without replicates.
        public var seeds: Int?
        /// The value of each training, in seed order.
        public var perSeed: [SeedPoint]?
        /// What the interval covers: `seeds and clips` (S ≥ 2) or `clips only` (one training).
        public var interval: String?
        /// Context for a reader (e.g. the accuracies a difference is taken between), not part of the name.
        public var detail: String?

        /// One training's value of a check.
        public struct SeedPoint: Codable, Sendable, Equatable {
            /// The seed (or, for runs without a recorded seed, the runs' names).
            public var seed: String
            /// The run or runs the value comes from (` - ` between the runs of a comparison).
            public var runs: String
            public var value: Double
        }

        public init(name: String, kind: String = "", measured: Double, ciLow: Double? = nil, ciHigh: Double? = nil, criterion: String,
                    passed: Bool, verdict: String? = nil, paper: String) {
            self.name = name
            self.kind = kind
            self.measured = measured
            self.ciLow = ciLow
            self.ciHigh = ciHigh
            self.criterion = criterion
            self.passed = passed
            self.verdict = verdict ?? (passed ? Finding.reproducedVerdict : Finding.notReproducedVerdict)
            self.paper = paper
        }

        /// `0.0123 [0.0050, 0.0190]`, or the point alone without an interval.
        public var measuredText: String {
            let p = String(format: "%.4f", measured)
            guard let lo = ciLow, let hi = ciHigh else { return p + " (no interval)" }
            return p + String(format: " [%.4f, %.4f]", lo, hi)
        }
    }

    public static let reproducedVerdict = "reproduced"
    public static let notReproducedVerdict = "not reproduced"
    public static let inconclusiveVerdict = "inconclusive"
    public static let notEvaluatedVerdict = "not evaluated"

    /// 1…4, as numbered in docs/report.md ("Findings criteria"); 0 for the end-to-end baseline (`Findings.baseline`).
    public var id: Int
    public var title: String
    /// The paper's claim and numbers.
    public var paper: String
    /// The criterion the verdict applies, stated in full.
    public var criterion: String
    public var checks: [Check]
    /// true when the verdict is `reproduced`, false when `not reproduced`; nil when inconclusive or
    /// not evaluated.
    public var reproduced: Bool?
    /// `reproduced` (every check's interval on the paper's side), `not reproduced` (some check's interval
    /// wholly on the other side), `inconclusive` (otherwise) or `not evaluated` (the runs are missing).
    public var verdict: String
    /// Why: the checks that decide the verdict, with their intervals and thresholds.
    public var reasons: [String]
    /// Why the finding was not evaluated, or remarks on parts not evaluated.
    public var notes: [String]

    public init(id: Int, title: String, paper: String, criterion: String, checks: [Check] = [], notes: [String] = []) {
        self.id = id
        self.title = title
        self.paper = paper
        self.criterion = criterion
        self.checks = checks
        self.reproduced = nil
        self.verdict = Finding.notEvaluatedVerdict
        self.reasons = []
        self.notes = notes
    }

    /// Sets `verdict`, `reproduced` and `reasons` from the checks' verdicts: reproduced when every check
    /// is, not reproduced when any check is, inconclusive otherwise; not evaluated without checks.
    public mutating func decide() {
        func line(_ c: Check) -> String { "\(c.name): \(c.measuredText), criterion \(c.criterion) -> \(c.verdict)" }
        if checks.isEmpty {
            verdict = Finding.notEvaluatedVerdict
            reproduced = nil
            reasons = notes
        } else if checks.contains(where: { $0.verdict == Finding.notReproducedVerdict }) {
            verdict = Finding.notReproducedVerdict
            reproduced = false
            reasons = checks.filter { $0.verdict == Finding.notReproducedVerdict }.map { "interval wholly on the other side: " + line($0) }
        } else if checks.allSatisfy({ $0.verdict == Finding.reproducedVerdict }) {
            verdict = Finding.reproducedVerdict
            reproduced = true
            reasons = ["every check's interval lies on the paper's side of its threshold (\(checks.count) checks)"]
        } else {
            verdict = Finding.inconclusiveVerdict
            reproduced = nil
            reasons = checks.filter { $0.verdict == Finding.inconclusiveVerdict }.map { "interval not decisive: " + line($0) }
        }
    }
}
