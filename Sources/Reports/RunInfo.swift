import ActivationStore
import Foundation

/// What a report knows about one training run: its regime, block partition and the steps dumped.
public struct RunInfo: Codable, Sendable, Equatable {
    public var run: String
    /// A `Regime`'s raw value (`e2e`, `simultaneous`, `sequential` or `external`), as the files record it.
    public var regime: String
    /// Last layer of each block.
    public var blockEnds: [Int]
    /// Every step with a dump, ascending.
    public var steps: [Int]
    public var probeSets: [String]
    /// SHA-256 of each distinct `config` attribute seen in the run's files.
    public var configSHA256: [String]
    /// The training seed the files record (`/` attr `seed`); nil when unknown. Runs of one regime and K
    /// with different seeds are replicates, and comparisons between regimes pair runs by seed.
    public var seed: Int?

    public init(run: String, regime: String, blockEnds: [Int], steps: [Int], probeSets: [String] = [], configSHA256: [String] = [],
                seed: Int? = nil) {
        self.run = run
        self.regime = regime
        self.blockEnds = blockEnds
        self.steps = steps
        self.probeSets = probeSets
        self.configSHA256 = configSHA256
        self.seed = seed
    }

    /// The regime and block count: runs with equal conditions are replicates of one training regime.
    public var condition: String { "\(regime) K=\(blockEnds.count)" }

    /// The latest dumped step (the one the per-depth analyses and the findings use).
    public var latestStep: Int { steps.max() ?? 0 }

    /// Trained blockwise (simultaneous or sequential).
    public var isBlockwise: Bool { knownRegime?.isBlockwise ?? false }

    public var isEndToEnd: Bool { knownRegime == .e2e }

    /// `regime` as a `Regime`; nil for a string the reader does not know.
    public var knownRegime: Regime? { Regime(rawValue: regime) }

    /// Depths of `--depth blocks`: the embedding (0) and each block's last layer.
    public var blockDepths: Set<Int> { Set([0] + blockEnds) }
}
