import Foundation

/// One of the paper's findings checked against measured records (DESIGN.md, "The findings a report must check").
public struct Finding: Codable, Sendable, Equatable {
    /// One measured comparison that enters a finding's verdict.
    public struct Check: Codable, Sendable, Equatable {
        /// What was compared, e.g. `probe gap sim-k4 vs e2e (actions)`.
        public var name: String
        public var measured: Double
        /// The stated criterion, e.g. `<= 0.04`.
        public var criterion: String
        public var passed: Bool
        /// The paper's value for this comparison.
        public var paper: String

        public init(name: String, measured: Double, criterion: String, passed: Bool, paper: String) {
            self.name = name
            self.measured = measured
            self.criterion = criterion
            self.passed = passed
            self.paper = paper
        }
    }

    /// 1…4, as numbered in DESIGN.md.
    public var id: Int
    public var title: String
    /// The paper's claim and numbers.
    public var paper: String
    /// The criterion the verdict applies, stated in full.
    public var criterion: String
    public var checks: [Check]
    /// true/false by the criterion; nil when the runs needed are missing.
    public var reproduced: Bool?
    /// Why the verdict is nil, or remarks on parts not evaluated.
    public var notes: [String]

    public init(id: Int, title: String, paper: String, criterion: String, checks: [Check] = [], reproduced: Bool? = nil, notes: [String] = []) {
        self.id = id
        self.title = title
        self.paper = paper
        self.criterion = criterion
        self.checks = checks
        self.reproduced = reproduced
        self.notes = notes
    }

    /// `reproduced`, `not reproduced` or `not evaluated`.
    public var verdict: String {
        switch reproduced {
        case .some(true): return "reproduced"
        case .some(false): return "not reproduced"
        case .none: return "not evaluated"
        }
    }
}
