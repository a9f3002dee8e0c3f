import ActivationStore
import Foundation
import LinearAlgebra

/// The settings of a run as given on `bwtrain`'s command line: a preset, and each setting given
/// explicitly replacing the preset's value.
public struct TrainingOverrides: Sendable {
    public var preset: Preset = .default
    public var regime: Regime = .simultaneous
    /// Run name; nil for `runName(preset:regime:blocks:seed:)`.
    public var run: String?
    public var seed: UInt64 = 0
    public var layers: Int?
    public var blocks: Int?
    public var dim: Int?
    public var heads: Int?
    public var decoderDepth: Int?
    public var decoderDim: Int?
    public var decoderHeads: Int?
    public var maskRatio: Double?
    /// Training steps; the preset's dump steps, checkpoint interval and warm-up follow (`withSteps`).
    public var steps: Int?
    public var batchSize: Int?
    public var learningRate: Double?
    public var weightDecay: Double?
    public var frames: Int?
    /// Frame height and width.
    public var size: Int?
    public var tubeletFrames: Int?
    public var patch: Int?
    /// A synthetic set's name or an HDF5 file of clips.
    public var trainingSet: String?
    public var trainingClips: Int?
    /// Clips per probe set; the attention clips are capped at it.
    public var probeClips: Int?
    public var dumpSteps: [Int]?
    public var normalizeTargets: Bool?
    public var inputMean: Double?
    public var inputStd: Double?
    public var texturedBackgrounds: Bool?
    public var objectScale: Double?
    public var deadLeaves: Bool?
    public var distractors: Int?
    public var positionBase: Double?
    public var probeSets: [String]?
    public var occludedProbeSet: String?

    public init() {}

    /// The resolved configuration, validated; throws a `TrainingError` for a missing data file or an
    /// invalid combination.
    public func config() throws -> TrainingConfig {
        var c = TrainingConfig.preset(preset)
        c.regime = regime
        c.seed = seed
        if let layers { c.layers = layers }
        if let blocks { c.blocks = blocks }
        if let dim { c.dim = dim }
        if let heads { c.heads = heads }
        if let decoderDepth { c.decoderDepth = decoderDepth }
        if let decoderDim { c.decoderDim = decoderDim }
        if let decoderHeads { c.decoderHeads = decoderHeads }
        if let maskRatio { c.maskRatio = maskRatio }
        if let steps { c = c.withSteps(steps, rescalingDumps: dumpSteps == nil) }
        if let batchSize { c.batchSize = batchSize }
        if let learningRate { c.learningRate = learningRate }
        if let weightDecay { c.weightDecay = weightDecay }
        if let frames { c.frames = frames }
        if let size { c.height = size; c.width = size }
        if let tubeletFrames { c.tubeletFrames = tubeletFrames }
        if let patch { c.patch = patch }
        if let trainingSet { c.trainingSet = trainingSet }
        if let trainingClips { c.trainingClips = trainingClips }
        if let probeClips { c.probeClips = probeClips; c.attentionClips = min(c.attentionClips, probeClips) }
        if let dumpSteps { c.dumpSteps = dumpSteps }
        if let normalizeTargets { c.normalizeTargets = normalizeTargets }
        if let positionBase { c.positionBase = positionBase }
        if let inputMean { c.inputMean = inputMean }
        if let inputStd { c.inputStd = inputStd }
        if let texturedBackgrounds { c.texturedBackgrounds = texturedBackgrounds }
        if let objectScale { c.objectScale = objectScale == 1 ? nil : objectScale }
        if let deadLeaves { c.deadLeaves = deadLeaves ? true : nil }
        if let distractors { c.distractors = distractors == 0 ? nil : distractors }
        if let probeSets { c.probeSets = probeSets }
        if let occludedProbeSet { c.occludedProbeSet = occludedProbeSet }
        c.run = run ?? TrainingConfig.runName(preset: preset, regime: c.regime, blocks: c.blocks, seed: seed)
        if c.trainingSet.hasSuffix(".h5"), !FileManager.default.fileExists(atPath: c.trainingSet) {
            throw TrainingError("\(c.trainingSet): no such data file")
        }
        try c.validate()
        return c
    }
}

extension TrainingConfig {
    /// This configuration run for `steps` steps: the checkpoint interval capped at `steps`, warm-up at a
    /// quarter of it, and (with `rescalingDumps`) each dump step scaled by `steps / self.steps`, rounded
    /// down, duplicates merged, so the dumps keep their places in training.
    public func withSteps(_ steps: Int, rescalingDumps: Bool) -> TrainingConfig {
        var c = self
        c.steps = steps
        if rescalingDumps { c.dumpSteps = TrainingConfig.rescaled(dumpSteps: dumpSteps, from: self.steps, to: steps) }
        if c.checkpointEvery > steps { c.checkpointEvery = steps }
        c.warmupSteps = min(c.warmupSteps, steps / 4)
        return c
    }

    /// Dump steps of a run of `old` steps moved to a run of `new` steps: `s · new / old` rounded down,
    /// sorted, without duplicates (every step becomes 0 when `old` is 0).
    public static func rescaled(dumpSteps: [Int], from old: Int, to new: Int) -> [Int] {
        Array(Set(dumpSteps.map { old == 0 ? 0 : $0 * new / old })).sorted()
    }

    /// The default run name: `<preset>-<e2e|sim|seq>-k<blocks>-s<seed>`.
    public static func runName(preset: Preset, regime: Regime, blocks: Int, seed: UInt64) -> String {
        let short: String
        switch regime {
        case .e2e: short = "e2e"
        case .simultaneous: short = "sim"
        case .sequential: short = "seq"
        case .external: short = "external"
        }
        return "\(preset.rawValue)-\(short)-k\(blocks)-s\(seed)"
    }
}
