import ActivationStore
import Collective
import Foundation
import LinearAlgebra

/// What the trainer reports while it runs.
public struct TrainingProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    /// Local loss of each block at this step (NaN where not evaluated).
    public var losses: [Float]
    public var clipsPerSecond: Double
    public var secondsRemaining: Double
    public var activeBlock: Int?
    public var message: String?
}

/// Trains one run and writes its checkpoints and activation dumps into a directory.
///
/// Files in `directory`: `checkpoint.h5` (parameters, AdamW moments, step, loss curve; replaced
/// atomically), `<probe-set>-step<NNNNNN>.h5` (bwact/1 dumps), `config.json`, and `done.json` once the
/// run is complete. Everything random is a function of (seed, step), so a run resumed from a
/// checkpoint reaches the same weights as an uninterrupted one.
///
/// Data-parallel under MPI (`communicator.size` > 1): each rank takes a contiguous share of every
/// batch, draws the masks of the whole batch (so each clip gets the mask it gets in one process) and
/// keeps its share's; the gradients, weighted by each share's fraction of the batch, are summed over
/// ranks before every update, so all ranks hold the same weights and the run matches one process's up
/// to float rounding. Rank 0 alone writes config.json, checkpoints, dumps and done.json.
public final class Trainer {
    public let config: TrainingConfig
    public let directory: String
    public let model: MaskedVideoModel
    /// The processes training this run together (one process unless launched under MPI).
    public let communicator: any Communicator
    let optimizer: AdamW
    let training: VideoClipSet
    public private(set) var step = 0
    public private(set) var curveSteps: [Int] = []
    public private(set) var curveLosses: [Float] = []
    /// Stop after this step (for tests of resumption); nil = run to the end.
    public var stopAfter: Int? = nil

    public var checkpointPath: String { directory + "/checkpoint.h5" }
    public var donePath: String { directory + "/done.json" }

    /// Fixed seeds of the probe sets: every run of a comparison sees the same probe clips.
    public static let probeSeed: UInt64 = 20_260_109

    public init(config: TrainingConfig, directory: String, resume: Bool, communicator: any Communicator = SingleProcess()) throws {
        try config.validate()
        guard config.batchSize >= communicator.size else {
            throw TrainingError("a batch of \(config.batchSize) clips cannot be split over \(communicator.size) processes; use --batch-size \(communicator.size) or more")
        }
        self.config = config
        self.directory = directory
        self.communicator = communicator
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        training = try Trainer.loadTrainingSet(config)
        var initial: [Float]? = nil
        var state: CheckpointFile? = nil
        if resume, FileManager.default.fileExists(atPath: directory + "/checkpoint.h5") {
            let ckpt = try CheckpointFile.read(from: directory + "/checkpoint.h5")
            guard let json = ckpt.strings["config"], let saved = try? TrainingConfig.fromJSON(json) else {
                throw TrainingError("\(directory)/checkpoint.h5: no readable configuration in the checkpoint")
            }
            guard saved == config else {
                throw TrainingError("\(directory)/checkpoint.h5 was written with a different configuration; use another --out directory or the same options")
            }
            initial = ckpt.arrays["params"]
            state = ckpt
        }
        do {
            model = try MaskedVideoModel(config: config, initialValues: initial)
        } catch let e as TrainingError where initial != nil {
            throw TrainingError("\(directory)/checkpoint.h5: /arrays/params: \(e.description)")
        }
        optimizer = AdamW(layout: model.layout, config: config)
        if let state {
            guard let m = state.arrays["adam_m"], let v = state.arrays["adam_v"], m.count == model.layout.count, v.count == model.layout.count,
                  let s = state.ints["step"]?.first, let updates = state.ints["adam_updates"] else {
                throw TrainingError("\(directory)/checkpoint.h5: incomplete checkpoint")
            }
            // The step and update counters index batches and bias corrections: out of range they would
            // trap (negative epochs, overflowing products) instead of failing.
            guard (0...config.steps).contains(s), updates.count == optimizer.updates.count, updates.allSatisfy({ (0...config.steps).contains($0) }) else {
                throw TrainingError("\(directory)/checkpoint.h5: /ints/step or /ints/adam_updates out of range (step \(s), the run has \(config.steps) steps)")
            }
            m.withUnsafeBufferPointer { optimizer.m.p.update(from: $0.baseAddress!, count: m.count) }
            v.withUnsafeBufferPointer { optimizer.v.p.update(from: $0.baseAddress!, count: v.count) }
            optimizer.updates = updates
            step = s
            curveSteps = state.ints["curve_steps"] ?? []
            curveLosses = state.arrays["curve_losses"] ?? []
        }
        if communicator.isRoot { try AtomicFile.write(Data(config.json.utf8), to: directory + "/config.json") }
    }

    static func loadTrainingSet(_ c: TrainingConfig) throws -> VideoClipSet {
        if c.trainingSet.hasSuffix(".h5") {
            let set = try VideoClipSet.load(path: c.trainingSet, name: "user-clips")
            guard set.frames == c.frames, set.height == c.height, set.width == c.width, set.channels == c.channels else {
                throw TrainingError("\(c.trainingSet): clips are \(set.frames)x\(set.height)x\(set.width)x\(set.channels), the configuration expects \(c.frames)x\(c.height)x\(c.width)x\(c.channels) (frames x height x width x channels)")
            }
            guard set.count >= c.batchSize else { throw TrainingError("\(c.trainingSet): \(set.count) clips, fewer than the batch size \(c.batchSize)") }
            return set
        }
        return try SyntheticVideo.named(c.trainingSet, count: c.trainingClips, frames: c.frames, height: c.height, width: c.width,
                                        seed: c.seed &+ 1, style: c.actionStyle)
    }

    /// Probe sets of the dumps (and the occluded variant, named `<set>-onepatch`).
    public func probeSets() throws -> [VideoClipSet] {
        let c = config
        var sets: [VideoClipSet] = []
        for (i, name) in c.probeSets.enumerated() {
            let set = try SyntheticVideo.named(name, count: c.probeClips, frames: c.frames, height: c.height, width: c.width,
                                               seed: Trainer.probeSeed &+ UInt64(i), style: c.actionStyle)
            sets.append(set)
            if name == c.occludedProbeSet {
                var occluded = SyntheticVideo.occludeAllButOnePatch(set, patch: c.patch, seed: Trainer.probeSeed &+ 99)
                occluded.name = name + "-onepatch"
                sets.append(occluded)
            }
        }
        return sets
    }

    /// Names of the probe sets (and the occluded variant) without generating their clips.
    func probeSetNames() -> [String] {
        config.probeSets.flatMap { $0 == config.occludedProbeSet ? [$0, $0 + "-onepatch"] : [$0] }
    }

    static func mix(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
        var g = SeededGenerator(seed: a ^ (b &* 0x9E37_79B9_7F4A_7C15) ^ (c &* 0xC2B2_AE3D_27D4_EB4F))
        return g.next()
    }

    /// Clip indices of the batch at `step`: consecutive slices of a per-epoch permutation.
    func batchIndices(step s: Int) -> [Int] {
        let n = training.count, b = config.batchSize
        var out: [Int] = []
        var position = s * b
        var cachedEpoch = -1
        var perm: [Int] = []
        while out.count < b {
            let epoch = position / n
            if epoch != cachedEpoch {
                var g = SeededGenerator(seed: Trainer.mix(config.seed, UInt64(epoch), 1))
                perm = Array(0..<n)
                for i in stride(from: n - 1, to: 0, by: -1) { perm.swapAt(i, Int(g.next() % UInt64(i + 1))) }
                cachedEpoch = epoch
            }
            out.append(perm[position % n])
            position += 1
        }
        return out
    }

    /// The block trained at `step` (sequential regime) and the step range of its phase.
    func phase(of s: Int) -> (block: Int?, range: Range<Int>) {
        let c = config
        guard c.regime == .sequential else { return (nil, 0..<c.steps) }
        let per = c.steps / c.blocks
        let k = min(c.blocks - 1, s / max(1, per))
        let end = k == c.blocks - 1 ? c.steps : (k + 1) * per
        return (k, (k * per)..<end)
    }

    func learningRate(at s: Int) -> Double {
        let (_, range) = phase(of: s)
        return AdamW.learningRate(step: s - range.lowerBound, total: range.count, warmup: min(config.warmupSteps, range.count / 2),
                                  lr: config.learningRate, minLR: config.minLearningRate)
    }

    /// The loss curve as stored in dumps: one column per block; e2e's single loss sits in the last column.
    public var curve: TrainingCurve {
        TrainingCurve(steps: curveSteps, loss: curveLosses, blocks: config.blocks)
    }

    func dumpPath(_ set: VideoClipSet, step: Int) -> String {
        directory + "/\(set.name)-step\(String(format: "%06d", step)).h5"
    }

    /// Writes the dumps due at the current step (skipping files that already exist). The probe sets are
    /// generated at the first dump (a run without dumps, like `bwtrain bench`, never builds them).
    func dumpIfDue(_ sets: inout [VideoClipSet]?, report: (TrainingProgress) -> Void) throws {
        guard communicator.isRoot, config.dumpSteps.contains(step) else { return }
        if sets == nil { sets = try probeSets() }
        for set in sets! {
            let path = dumpPath(set, step: step)
            if FileManager.default.fileExists(atPath: path) { continue }
            report(TrainingProgress(step: step, totalSteps: config.steps, losses: [], clipsPerSecond: 0, secondsRemaining: 0,
                                    activeBlock: nil, message: "dumping \(set.name) at step \(step) -> \(path)"))
            try model.dump(set, to: path, step: step, curve: curve, attentionClips: config.attentionClips)
        }
    }

    public func saveCheckpoint() throws {
        guard communicator.isRoot else { return }
        var ck = CheckpointFile()
        ck.arrays["params"] = model.params.array
        ck.arrays["adam_m"] = optimizer.m.array
        ck.arrays["adam_v"] = optimizer.v.array
        ck.arrays["curve_losses"] = curveLosses
        ck.ints["step"] = [step]
        ck.ints["adam_updates"] = optimizer.updates
        ck.ints["curve_steps"] = curveSteps
        ck.strings["config"] = config.json
        try ck.write(to: checkpointPath)
    }

    /// Trains to the end (or `stopAfter`), dumping and checkpointing on the way.
    public func run(report: (TrainingProgress) -> Void = { _ in }) throws {
        let c = config
        var sets: [VideoClipSet]? = nil
        try dumpIfDue(&sets, report: report)
        let share = communicator.share(of: c.batchSize)
        // This process's share, split again over its threads: one replica of the model per part, each
        // on one core with OpenBLAS single-threaded, as MPI ranks split the batch (Trainer.replicaParts).
        let parts = Trainer.replicaParts(share)
        let replicas = [model] + parts.dropFirst().map { _ in MaskedVideoModel(sharingParametersWith: model) }
        let workspaces = parts.map { TrainingWorkspace(c, batch: $0.count) }
        let clipSize = c.frames * c.height * c.width * c.channels
        var partPixels = parts.map { [Float](repeating: 0, count: $0.count * clipSize) }
        let started = ContinuousClock.now
        let startStep = step
        while step < c.steps {
            if let stop = stopAfter, step >= stop { break }
            let indices = batchIndices(step: step)
            for (r, part) in parts.enumerated() {
                for (i, idx) in indices[part].enumerated() {
                    partPixels[r].replaceSubrange((i * clipSize)..<((i + 1) * clipSize), with: training.clip(idx))
                }
            }
            let (active, _) = phase(of: step)
            var partLosses = parts.map { _ in [Float]() }
            partLosses.withUnsafeMutableBufferPointer { out in
                let out = out
                ThreadSetting.concurrently(parts.count) { r in
                    // Every part draws the masks of the whole batch in order and keeps its own clips'.
                    var rng = SeededGenerator(seed: Trainer.mix(c.seed, UInt64(step), 2))
                    partPixels[r].withUnsafeBufferPointer {
                        replicas[r].load(workspaces[r], pixels: $0.baseAddress!, rng: &rng, skippingClips: parts[r].lowerBound)
                    }
                    replicas[r].grads.zero()
                    out[r] = replicas[r].step(workspaces[r], activeBlock: active)
                }
            }
            var losses = Trainer.combine(partLosses, parts: parts, replicas: replicas)
            if communicator.size > 1 { reduceOverRanks(losses: &losses, fraction: Float(share.count) / Float(c.batchSize)) }
            let evaluated = active.map { [losses[$0]] } ?? losses
            guard evaluated.allSatisfy(\.isFinite) else {
                throw TrainingError("the loss became non-finite at step \(step); lower --lr")
            }
            let blocks: Set<Int> = active.map { [$0] } ?? Set(0..<c.blocks)
            optimizer.update(params: model.params, grads: model.grads, learningRate: learningRate(at: step), blocks: blocks)
            step += 1
            let row: [Float] = c.regime == .e2e ? Array(repeating: .nan, count: c.blocks - 1) + losses : losses
            if step % c.logEvery == 0 || step == c.steps {
                curveSteps.append(step)
                curveLosses += row
                let elapsed = (ContinuousClock.now - started).seconds
                let rate = Double((step - startStep) * c.batchSize) / max(elapsed, 1e-9)
                report(TrainingProgress(step: step, totalSteps: c.steps, losses: row, clipsPerSecond: rate,
                                        secondsRemaining: Double(c.steps - step) * Double(c.batchSize) / max(rate, 1e-9),
                                        activeBlock: active, message: nil))
            }
            if c.checkpointEvery > 0 && step % c.checkpointEvery == 0 { try saveCheckpoint() }
            try dumpIfDue(&sets, report: report)
        }
        try saveCheckpoint()
        if step >= c.steps && communicator.isRoot {
            let names = sets.map { $0.map(\.name) } ?? probeSetNames()
            let summary: [String: Any] = ["run": c.run, "steps": step, "dumps": c.dumpSteps, "probe_sets": names]
            let data = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys, .prettyPrinted])
            try AtomicFile.write(data, to: donePath)
        }
    }
}

extension Trainer {
    /// The parts of a process's share of the batch that its replicas train on: as many as the thread
    /// setting's threads (one when it is 1, inside a parallel task, or under MPI, where ranks run one
    /// thread each), at most one per clip, contiguous, sizes differing by at most one (the first take
    /// one more), like `Communicator.share`.
    static func replicaParts(_ share: Range<Int>) -> [Range<Int>] {
        let n = ThreadSetting.onWorkerThread ? 1 : max(1, min(ThreadSetting.count, share.count))
        let base = share.count / n, extra = share.count % n
        var lower = share.lowerBound
        return (0..<n).map { r in
            let size = base + (r < extra ? 1 : 0)
            defer { lower += size }
            return lower..<(lower + size)
        }
    }

    /// Gradient and losses of the whole share from its parts: each part's are means over its clips, so
    /// the share's are their sum weighted by each part's fraction of the share, added in part order
    /// (the same result whatever thread ran a part). The gradient ends in `replicas[0]`'s buffer.
    static func combine(_ losses: [[Float]], parts: [Range<Int>], replicas: [MaskedVideoModel]) -> [Float] {
        guard parts.count > 1 else { return losses[0] }
        let total = Float(parts.reduce(0) { $0 + $1.count })
        let fractions = parts.map { Float($0.count) / total }
        let n = replicas[0].layout.count
        let sum = replicas[0].grads.p
        let others = replicas.dropFirst().map { $0.grads.p }
        Parallel.forEachRange(n, grain: 1 << 16) { range in
            for i in range {
                var g = sum[i] * fractions[0]
                for (r, p) in others.enumerated() { g += p[i] * fractions[r + 1] }
                sum[i] = g
            }
        }
        return (0..<losses[0].count).map { k in
            if losses[0][k].isNaN { return .nan }
            var l = 0.0
            for r in parts.indices { l += Double(losses[r][k]) * Double(fractions[r]) }
            return Float(l)
        }
    }

    /// Sums the share-weighted gradients and losses over ranks: afterwards every rank holds the
    /// gradient and loss of the whole batch (each is a mean over the batch's clips, and every clip has
    /// the same number of masked tokens).
    func reduceOverRanks(losses: inout [Float], fraction: Float) {
        let g = model.grads.p, n = model.layout.count
        Parallel.forEachRange(n, grain: 1 << 16) { r in
            for i in r { g[i] *= fraction }
        }
        communicator.allReduceSum(g, count: n)
        var l = losses.map { $0.isNaN ? 0 : Double($0) * Double(fraction) }
        communicator.allReduceSum(&l, count: l.count)
        losses = zip(losses, l).map { $0.isNaN ? .nan : Float($1) }
    }
}
