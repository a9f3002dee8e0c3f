/// The root attributes of a bwact/1 file (docs/activation-format.md, "Root attributes").
public struct ActivationMetadata: Codable, Sendable, Equatable {
    /// The training regimes a file may record.
    public static let regimes = Regime.allCases.map(\.rawValue)
    public static let formatName = "bwact"
    public static let formatVersion = 1

    /// Run name, e.g. `tiny-sim-k4-s0`.
    public var run: String
    /// A `Regime`'s raw value: `e2e`, `simultaneous`, `sequential` or `external` (a file with another
    /// string is read with a warning; `knownRegime` is then nil).
    public var regime: String
    /// Last layer of each block, strictly increasing, ending at L.
    public var blockEnds: [Int]
    /// Which clips the activations were taken on.
    public var probeSet: String
    /// Training step of the weights.
    public var step: Int
    public var seed: Int
    /// JSON of the full model/training configuration.
    public var config: String

    public init(run: String, regime: String, blockEnds: [Int], probeSet: String, step: Int = 0, seed: Int = 0,
                config: String = "{}") {
        self.run = run
        self.regime = regime
        self.blockEnds = blockEnds
        self.probeSet = probeSet
        self.step = step
        self.seed = seed
        self.config = config
    }

    /// `regime` as a `Regime`; nil for a string this reader does not know.
    public var knownRegime: Regime? { Regime(rawValue: regime) }
}

/// Shape of one layer's attention dataset: [clips, heads, tokens, tokens].
public struct AttentionShape: Codable, Sendable, Equatable {
    public var clips: Int
    public var heads: Int
    public var tokens: Int

    public init(clips: Int, heads: Int, tokens: Int) {
        self.clips = clips
        self.heads = heads
        self.tokens = tokens
    }
}

/// Local loss per block per logged step (`/training/step`, `/training/loss`).
public struct TrainingCurve: Sendable, Equatable {
    public var steps: [Int]
    /// Row-major [steps.count, blocks].
    public var loss: [Float]
    public var blocks: Int

    public init(steps: [Int], loss: [Float], blocks: Int) {
        self.steps = steps
        self.loss = loss
        self.blocks = blocks
    }
}

/// Paths inside a bwact/1 file.
public enum ActivationPaths {
    public static func depthName(_ depth: Int) -> String {
        depth < 10 ? "0\(depth)" : "\(depth)"
    }
    public static func tokens(_ depth: Int) -> String { "/layers/\(depthName(depth))/tokens" }
    public static func attention(_ depth: Int) -> String { "/layers/\(depthName(depth))/attention" }
    public static func labels(_ target: String) -> String { "/labels/\(target)" }
    public static let positions = "/positions"
    public static let trainingStep = "/training/step"
    public static let trainingLoss = "/training/loss"
}
