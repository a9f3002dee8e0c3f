import ActivationStore
import Foundation
import LinearAlgebra

/// A named starting configuration (`TrainingConfig.preset`); options given explicitly override it.
public enum Preset: String, ArgumentSyntax, CaseIterable, Sendable {
    /// A smoke-test run in well under 2 minutes on 2 cores.
    case quick
    /// The scale the report uses: 12 layers, K = 4 blocks of 3.
    case `default`

    public init(parsing name: String) throws {
        guard let p = Preset(rawValue: name) else {
            throw TrainingError("unknown preset '\(name)'; known presets: quick, default")
        }
        self = p
    }
}

/// Everything that defines a run: model, data, optimisation, dumps. Stored as JSON in every dump and checkpoint.
public struct TrainingConfig: Codable, Sendable, Equatable {
    public var run: String = "run"
    public var regime: Regime = .simultaneous
    public var seed: UInt64 = 0

    // clips and tokens
    public var frames = 8
    public var height = 32
    public var width = 32
    public var channels = 3
    public var tubeletFrames = 2
    public var patch = 8

    // encoder
    /// Width 64 with 2 heads: over three seeds the narrower encoder left more to the later blocks (the
    /// action probes rose +0.035 to +0.077 from block 1, against +0.014 and +0.041 at width 96 with 3
    /// heads; docs/depth-study.md, E36–E41).
    public var dim = 64
    public var heads = 2
    public var layers = 12
    public var mlpRatio = 4
    /// K: contiguous blocks of layers/K layers each (the e2e regime records this partition for comparison).
    public var blocks = 4

    // decoders
    public var decoderDepth = 1
    public var decoderDim = 64
    public var decoderHeads = 2
    public var maskRatio = 0.75
    /// Normalise each target patch per channel over its pixels (VideoMAE's default). Raw-pixel targets
    /// let the decoder fill masked patches with each clip's colour, and the encoder's tokens collapse
    /// onto that clip vector (docs/depth-study.md, runs E0, E5, E7).
    public var normalizeTargets = true
    /// Encoder input standardisation: every pixel enters the patch embedding as (x − inputMean) / inputStd
    /// (targets are unaffected). (0, 1) feeds raw pixels in [0, 1], whose shared 0.5·ΣW term made the
    /// embeddings of a clip nearly identical.
    public var inputMean = 0.5
    public var inputStd = 0.25
    /// Synthetic `actions` clips over textured backgrounds (eight random gratings, 1–8 cycles per frame
    /// side) instead of three faint low-frequency ones.
    public var texturedBackgrounds = true
    /// Factor on the synthetic action objects' radius (`SyntheticVideo.actions`); nil means 1, the
    /// original sizes (kept out of config.json then, so configurations written before it still read).
    /// 2 by default: objects of radius 28–38 % of the frame span several patches, so a masked part of
    /// the object is predictable from its visible parts; with radius 14–19 % (about one patch) the
    /// action probes rose little with depth and retrieval stayed at chance (docs/depth-study.md, E17–E21).
    public var objectScale: Double? = 2
    /// Synthetic `actions` over dead-leaves backgrounds (occluding discs with natural-image statistics)
    /// instead of gratings; nil means false (kept out of config.json then).
    public var deadLeaves: Bool? = nil
    /// Static distractor objects in every synthetic `actions` clip (0...8); nil means 0 (kept out of
    /// config.json then).
    public var distractors: Int? = nil

    /// How the synthetic action clips of the training and probe sets are drawn.
    public var actionStyle: SyntheticVideo.ActionStyle {
        .init(texturedBackground: texturedBackgrounds, objectScale: Float(objectScale ?? 1), deadLeaves: deadLeaves ?? false,
              distractors: distractors ?? 0)
    }
    /// Base b of the fixed sin-cos positions (frequencies b^(−2i/d_axis)). The transformer default 10000
    /// leaves most channels nearly constant on a grid of 4 tokens per axis; with it, normalised-target
    /// training stayed at the trivial loss (docs/depth-study.md, runs E6, E9–E12).
    public var positionBase = 16.0

    // optimisation
    public var steps = 1600
    public var batchSize = 32
    /// Peak rate 3e-4: at 1e-3 every token acquired one shared direction, 95% of a normalised token at
    /// depth 12, so patch similarity reached 0.89–0.96 by depth 9; at 3e-4 it stays at 0.26–0.54
    /// (docs/depth-study.md, E36–E41).
    public var learningRate = 3e-4
    public var minLearningRate = 1e-5
    public var weightDecay = 0.05
    public var beta1 = 0.9
    public var beta2 = 0.95
    public var warmupSteps = 40

    // data
    /// Training distribution: a synthetic set name or an HDF5 clip file (`/clips`, `/labels/<target>`).
    public var trainingSet = "mixed"
    public var trainingClips = 4096
    /// Probe sets dumped at each dump step.
    public var probeSets = ["gratings", "double-gratings", "actions"]
    public var probeClips = 1000
    /// Attention is dumped for the first M probe clips.
    public var attentionClips = 16
    /// Also dump an occluded variant (one spatial patch kept) of this probe set, for OccDrop; empty = none.
    public var occludedProbeSet = "actions"
    /// Steps at which activations are dumped (0 = before training; `steps` = final).
    public var dumpSteps: [Int] = [0, 400, 800, 1600]
    public var checkpointEvery = 200
    public var logEvery = 10

    public init() {}

    public var timeSlots: Int { frames / tubeletFrames }
    public var gridHeight: Int { height / patch }
    public var gridWidth: Int { width / patch }
    public var spatialTokens: Int { gridHeight * gridWidth }
    public var tokens: Int { timeSlots * spatialTokens }
    public var patchDim: Int { tubeletFrames * patch * patch * channels }
    public var headDim: Int { dim / heads }
    public var layersPerBlock: Int { layers / blocks }
    /// Last layer of each block.
    public var blockEnds: [Int] { (1...blocks).map { $0 * layersPerBlock } }
    /// Visible spatial positions per clip under tube masking.
    public var visibleSpatial: Int { max(1, Int(((1 - maskRatio) * Double(spatialTokens)).rounded())) }
    public var visibleTokens: Int { timeSlots * visibleSpatial }
    /// Number of losses (decoders): 1 for e2e, K otherwise.
    public var decoders: Int { regime == .e2e ? 1 : blocks }

    /// Checks the configuration and returns every problem as one line each; empty when valid.
    public func problems() -> [String] {
        var p: [String] = []
        func need(_ ok: Bool, _ message: @autoclosure () -> String) { if !ok { p.append(message()) } }
        need(frames > 0 && height > 0 && width > 0 && channels > 0, "clip size must be positive (frames \(frames), \(height)x\(width), \(channels) channels)")
        need(tubeletFrames > 0 && frames % max(1, tubeletFrames) == 0, "tubelet frames \(tubeletFrames) must divide the clip's \(frames) frames")
        need(patch > 0 && height % max(1, patch) == 0 && width % max(1, patch) == 0, "patch \(patch) must divide the frame size \(height)x\(width)")
        need(dim > 0 && heads > 0 && dim % max(1, heads) == 0, "heads \(heads) must divide the width \(dim)")
        need(decoderDim > 0 && decoderHeads > 0 && decoderDim % max(1, decoderHeads) == 0, "decoder heads \(decoderHeads) must divide the decoder width \(decoderDim)")
        need(layers > 0, "layers must be positive")
        need(blocks > 0 && layers % max(1, blocks) == 0, "--blocks \(blocks) does not divide \(layers) layers into equal blocks")
        need(maskRatio > 0 && maskRatio < 1, "mask ratio \(maskRatio) must lie in (0, 1)")
        need(spatialTokens == 0 || visibleSpatial < spatialTokens, "mask ratio \(maskRatio) masks no token of the \(spatialTokens) spatial positions")
        need(decoderDepth >= 0, "decoder depth must be non-negative")
        need(steps >= 0 && batchSize > 0, "steps must be non-negative and the batch size positive")
        need(learningRate > 0 && minLearningRate >= 0 && weightDecay >= 0, "learning rates must be positive and weight decay non-negative")
        need(learningRate.isFinite && minLearningRate.isFinite && weightDecay.isFinite, "learning rates and weight decay must be finite")
        need(warmupSteps >= 0, "warmup steps must be non-negative")
        need(trainingClips >= batchSize || trainingSet.hasSuffix(".h5"), "training clips \(trainingClips) must be at least the batch size \(batchSize)")
        need(probeClips > 0 && attentionClips >= 0 && attentionClips <= probeClips, "probe clips must be positive and attention clips at most the probe clips")
        need(dumpSteps.allSatisfy { $0 >= 0 && $0 <= steps }, "dump steps \(dumpSteps) must lie in 0...\(steps)")
        need(regime != .external, "regime external names activations of a model trained elsewhere; bwtrain trains \(Regime.trainable.map(\.rawValue).joined(separator: ", "))")
        need(regime != .sequential || steps >= blocks, "the sequential regime needs at least one step per block (\(steps) steps, \(blocks) blocks)")
        need(positionBase > 1 && positionBase.isFinite, "position base \(positionBase) must be above 1")
        need(inputStd > 0 && inputStd.isFinite && inputMean.isFinite, "input standard deviation \(inputStd) must be positive and finite")
        need(distractors.map { (0...8).contains($0) } ?? true, "distractors \(distractors ?? 0) must lie in 0...8")
        need(objectScale.map { $0 > 0 && $0 <= 3 } ?? true, "object scale \(objectScale ?? 1) must lie in (0, 3]")
        need(checkpointEvery >= 0 && logEvery > 0, "checkpoint and log intervals must be non-negative / positive")
        return p
    }

    /// Throws a `TrainingError` listing every problem.
    public func validate() throws {
        let p = problems()
        if !p.isEmpty { throw TrainingError("invalid configuration: " + p.joined(separator: "; ")) }
    }

    /// Presets: `quick` (a smoke-test run in well under 2 minutes on 2 cores) and `default` (the scale the report uses).
    public static func preset(_ name: String) throws -> TrainingConfig {
        preset(try Preset(parsing: name))
    }

    public static func preset(_ preset: Preset) -> TrainingConfig {
        var c = TrainingConfig()
        switch preset {
        case .default:
            break
        case .quick:
            c.dim = 48
            c.heads = 2
            c.layers = 4
            c.blocks = 2
            c.decoderDim = 32
            c.decoderHeads = 2
            c.steps = 120
            c.batchSize = 16
            c.warmupSteps = 5
            c.trainingClips = 512
            c.probeClips = 150
            c.attentionClips = 8
            c.dumpSteps = [0, 60, 120]
            c.checkpointEvery = 60
            c.logEvery = 5
        }
        return c
    }

    public var json: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try! e.encode(self), as: UTF8.self)
    }

    public static func fromJSON(_ text: String) throws -> TrainingConfig {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return try d.decode(TrainingConfig.self, from: Data(text.utf8))
    }
}
