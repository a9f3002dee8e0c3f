import LinearAlgebra
import Numerics

/// Built-in deterministic synthetic video: the trainer's data and the probe sets.
///
/// Everything is a function of `seed` (SplitMix64 through `SeededGenerator`), with no I/O. Clip i is
/// drawn from its own seed, derived from (seed, family, i), so it does not depend on how many clips
/// are generated. Class labels are balanced by construction: for each target, clips are taken in
/// consecutive blocks of k (the target's class count) and each block holds every class once, in an
/// order drawn from (seed, target, block); class counts of any prefix of clips therefore differ by at
/// most one, and different targets are drawn independently (no two targets are confounded).
///
/// Pixel coordinates: `x` is the column (0 at the left), `y` the row (0 at the top). Every set adds
/// independent uniform noise in ±`noiseAmplitude` to every pixel of every frame, then clamps to [0, 1].
public enum SyntheticVideo {
    /// The probe-set families: the paper's two grating sets (`gratings`, `doubleGratings`, on the
    /// authors' grids) and the synthetic actions.
    public static let knownNames = ["gratings", "double-gratings", "actions"]
    /// The gratings of the training mixture (`legacyGratings`, `legacyDoubleGratings`); also probe sets
    /// for diagnostics, outside the findings.
    public static let legacyNames = ["legacy-gratings", "legacy-double-gratings"]
    /// The names `named(_:count:frames:height:width:seed:)` accepts: the families, the legacy gratings
    /// and `mixed` (training only).
    public static let acceptedNames = knownNames + legacyNames + ["mixed"]

    /// Half-width of the uniform per-pixel, per-frame noise (standard deviation a/√3 ≈ 0.0115).
    public static let noiseAmplitude: Float = 0.02

    // MARK: class definitions

    /// Grating orientations in degrees, class 0…3: the direction of the wave vector (across the
    /// bars), anticlockwise from +x with y pointing down on screen. 0°: vertical bars, intensity
    /// varies along x only; 90°: horizontal bars, intensity varies along y only.
    public static let orientationsDegrees: [Float] = [0, 45, 90, 135]
    /// Spatial frequency classes, in cycles per min(height, width) (periods 16, 8, 5.3 px at 32×32).
    public static let spatialFrequencies: [Float] = [2, 4, 6]
    /// Temporal frequency (drift speed) classes, in cycles per frame: the phase advances by
    /// 22.5°, 45°, 90° per frame.
    public static let temporalFrequencies: [Float] = [1.0 / 16, 1.0 / 8, 1.0 / 4]
    /// Contrast classes: the amplitude of the sinusoid around the mean grey 0.5.
    public static let contrasts: [Float] = [0.2, 0.45]
    /// Colour classes (red, green, blue tint): per-channel gain of the sinusoid; channel c uses
    /// `tints[class][c % 3]`. The mean colour is grey in every class, so a single pixel does not
    /// reveal the tint; the relative modulation depth of the channels does.
    public static let tints: [[Float]] = [[1, 0.6, 0.6], [0.6, 1, 0.6], [0.6, 0.6, 1]]
    /// Contrast of each half of a double grating.
    public static let doubleGratingContrast: Float = 0.4
    /// Action object classes (each shape has its own texture).
    public static let objectNames = ["disc", "square", "cross", "ring"]
    /// Action motion classes.
    public static let motionNames = ["left", "right", "up", "down", "orbit", "zoom-in"]

    // MARK: legacy gratings (the training mixture's)

    /// Drifting sinusoidal gratings filling the frame: the gratings of the `mixed` training set, and
    /// the `legacy-gratings` probe set (a diagnostic; the paper's grating probe set is `gratings`).
    ///
    /// Pixel (x, y) of frame t, channel c: 0.5 + contrast · tint[c] · sin(2π(f/m · (x cos θ − y sin θ)
    /// − d · tf · t) + φ) + noise, with m = min(height, width), a random phase φ and a random drift
    /// direction d = ±1 per clip (d = +1 drifts along the wave vector). Targets and classes:
    /// `spatial_frequency` f (3, `spatialFrequencies`), `orientation` θ (4, `orientationsDegrees`),
    /// `temporal_frequency` tf (3, `temporalFrequencies`), `contrast` (2, `contrasts`) and, when
    /// channels ≥ 3, `colour` (3, `tints`; with fewer channels there is no colour target and no tint).
    ///
    /// - Parameters:
    ///   - count: Number of clips (negative counts give an empty set).
    ///   - frames, height, width, channels: Clip size.
    ///   - seed: Everything is a function of it.
    /// - Complexity: O(count · frames · height · width · channels).
    public static func legacyGratings(count: Int, frames: Int = 8, height: Int = 32, width: Int = 32, channels: Int = 3,
                                      seed: UInt64) -> VideoClipSet {
        let size = ClipSize(count: count, frames: frames, height: height, width: width, channels: channels)
        let coloured = size.channels >= 3
        var targets = ["spatial_frequency": 3, "orientation": 4, "temporal_frequency": 3, "contrast": 2]
        if coloured { targets["colour"] = 3 }
        let order = ["spatial_frequency", "orientation", "temporal_frequency", "contrast", "colour"].filter { targets[$0] != nil }
        return generate(name: "legacy-gratings", size: size, family: Family.gratings, order: order, classCounts: targets, seed: seed) {
            classes, rng, noise, clip in
            var g = GratingParameters(orientation: classes[1], spatialFrequency: spatialFrequencies[classes[0]],
                                      temporalFrequency: temporalFrequencies[classes[2]], contrast: contrasts[classes[3]],
                                      direction: rng.next() & 1 == 0 ? 1 : -1,
                                      phase: Float(rng.nextUniform()) * 2 * .pi,
                                      gains: Array(repeating: 1, count: size.channels))
            if coloured { g.gains = (0..<size.channels).map { tints[classes[4]][$0 % 3] } }
            renderGrating(g, columns: 0..<size.width, size: size, noise: &noise, into: clip)
        }
    }

    /// Double drifting gratings that differ in speed and drift direction as well as orientation: the
    /// double gratings of the `mixed` training set, and the `legacy-double-gratings` probe set (a
    /// diagnostic outside the findings; the paper's set is `doubleGratings`). The left half (columns
    /// 0..<width/2) and the right half each hold their own grating.
    ///
    /// Each half is a grating as in `legacyGratings` with contrast `doubleGratingContrast`, no tint, its
    /// own random phase and a random spatial frequency (a nuisance, not a target). Targets:
    /// `left_orientation`, `right_orientation` (4 each), `left_speed`, `right_speed` (3 each, the
    /// temporal frequency classes), `orientation_delta` = (right − left) mod 4, i.e. the right
    /// orientation is the left one turned by 0°, 45°, 90° or 135°; `orientation_match` (1 when the
    /// orientations are equal), `speed_match` (1 when the speeds are equal) and `direction_match`
    /// (1 when both halves drift with the same sign d, 0 when opposite).
    ///
    /// Balance: the left half's classes and the three match flags are balanced by construction
    /// (each flag is 1 for half the clips); the right half's classes then follow (equal to the left
    /// when matched, else uniform over the other classes), so each right target is uniform in
    /// expectation, and `orientation_delta` is 0 for half the clips and 1, 2, 3 for a sixth each.
    ///
    /// - Parameters: As for `gratings`.
    /// - Complexity: O(count · frames · height · width · channels).
    public static func legacyDoubleGratings(count: Int, frames: Int = 8, height: Int = 32, width: Int = 32, channels: Int = 3,
                                            seed: UInt64) -> VideoClipSet {
        let size = ClipSize(count: count, frames: frames, height: height, width: width, channels: channels)
        // Drawn (balanced) factors, in this order; the right half and the derived targets follow.
        let factors = [("left_orientation", 4), ("left_speed", 3), ("left_direction", 2), ("left_spatial_frequency", 3),
                       ("orientation_match", 2), ("speed_match", 2), ("direction_match", 2)]
        let classCounts = ["left_orientation": 4, "right_orientation": 4, "left_speed": 3, "right_speed": 3,
                           "orientation_delta": 4, "orientation_match": 2, "speed_match": 2, "direction_match": 2]
        var generated = generateWithExtra(name: "legacy-double-gratings", size: size, family: Family.doubleGratings,
                                          order: factors.map(\.0), classCounts: Dictionary(uniqueKeysWithValues: factors),
                                          seed: seed) { classes, rng, noise, clip in
            let (lo, ls, ld, lf) = (classes[0], classes[1], classes[2], classes[3])
            let ro = classes[4] == 1 ? lo : (lo + 1 + uniformInt(&rng, 3)) % 4
            let rs = classes[5] == 1 ? ls : (ls + 1 + uniformInt(&rng, 2)) % 3
            let rd = classes[6] == 1 ? ld : 1 - ld
            let rf = uniformInt(&rng, 3)
            let half = size.width / 2
            for (o, s, d, f, columns) in [(lo, ls, ld, lf, 0..<half), (ro, rs, rd, rf, half..<size.width)] {
                let g = GratingParameters(orientation: o, spatialFrequency: spatialFrequencies[f],
                                          temporalFrequency: temporalFrequencies[s], contrast: doubleGratingContrast,
                                          direction: d == 0 ? 1 : -1, phase: Float(rng.nextUniform()) * 2 * .pi,
                                          gains: Array(repeating: 1, count: size.channels))
                renderGrating(g, columns: columns, size: size, noise: &noise, into: clip)
            }
            return [ro, rs, rd]
        }
        // Replace the drawing factors by the published targets.
        let l = generated.set.labels
        let n = generated.set.count
        let right = generated.extra
        var labels: [String: [Int]] = [:]
        labels["left_orientation"] = l["left_orientation"]
        labels["left_speed"] = l["left_speed"]
        labels["right_orientation"] = (0..<n).map { right[$0][0] }
        labels["right_speed"] = (0..<n).map { right[$0][1] }
        labels["orientation_delta"] = (0..<n).map { (right[$0][0] - l["left_orientation"]![$0] + 4) % 4 }
        labels["orientation_match"] = l["orientation_match"]
        labels["speed_match"] = l["speed_match"]
        labels["direction_match"] = l["direction_match"]
        generated.set.labels = labels
        generated.set.classCounts = classCounts
        return generated.set
    }

    // MARK: actions

    /// Synthetic actions: a textured object moving over a static textured background.
    ///
    /// Targets: `object` (4, `objectNames`): disc with horizontal stripes, square with a checkerboard,
    /// cross with diagonal stripes, ring in flat bright; the texture is fixed to the object (it moves
    /// and scales with it), its values 0.5 ± 0.4 × a random per-clip tint in [0.7, 1] per channel.
    /// `motion` (6, `motionNames`): left, right, up, down (straight, 35–50 % of the frame over the
    /// clip), orbit (a circular arc of 180°–270° around a point near the centre, random sense) and
    /// zoom-in (fixed centre, radius growing 2.2–2.6×). Object radius 14–19 % of min(height, width)
    /// (zoom: from 9–11 %). Background per clip: a random grey level per channel 0.5 ± 0.1 plus three
    /// low-frequency random gratings (amplitudes 0.03–0.07, 1–5 cycles per frame side), static.
    /// `style` changes the background and the objects (`ActionStyle`).
    ///
    /// - Parameters: As for `gratings`.
    /// - Complexity: O(count · frames · height · width · channels).
    public static func actions(count: Int, frames: Int = 8, height: Int = 32, width: Int = 32, channels: Int = 3,
                               seed: UInt64, style: ActionStyle = .init()) -> VideoClipSet {
        actions(count: count, frames: frames, height: height, width: width, channels: channels, seed: seed,
                plainBackground: false, style: style)
    }

    /// How synthetic action clips are drawn beyond their labels.
    public struct ActionStyle: Sendable, Equatable {
        /// Eight random gratings (1–8 cycles per frame side) as the background instead of three faint ones.
        public var texturedBackground: Bool
        /// Multiplies every object radius (and the orbit's radius); the straight paths shorten so that
        /// the object stays in the frame. In (0, 3].
        public var objectScale: Float
        /// A static dead-leaves background (`paintDeadLeaves`: occluding discs with natural-image
        /// statistics) instead of gratings.
        public var deadLeaves: Bool
        /// Static objects (random shapes, the moving object's size range) painted into the background:
        /// the labelled object is then the one that moves. In 0...8.
        public var distractors: Int

        public init(texturedBackground: Bool = false, objectScale: Float = 1, deadLeaves: Bool = false, distractors: Int = 0) {
            self.texturedBackground = texturedBackground
            self.objectScale = objectScale
            self.deadLeaves = deadLeaves
            self.distractors = distractors
        }
    }

    /// `actions`, optionally over a plain 0.5 background (for tests that locate the object from pixels).
    static func actions(count: Int, frames: Int, height: Int, width: Int, channels: Int, seed: UInt64,
                        plainBackground: Bool, style: ActionStyle = .init()) -> VideoClipSet {
        let size = ClipSize(count: count, frames: frames, height: height, width: width, channels: channels)
        let counts = ["object": 4, "motion": 6]
        return generate(name: "actions", size: size, family: Family.actions, order: ["object", "motion"],
                        classCounts: counts, seed: seed) { classes, rng, noise, clip in
            renderAction(object: classes[0], motion: classes[1], size: size, plainBackground: plainBackground, style: style,
                         rng: &rng, noise: &noise, into: clip)
        }
    }

    // MARK: mixture

    /// A training mixture: ⌈count/3⌉ legacy gratings, then as many legacy double gratings, then actions
    /// (the rest), each family drawn as by its own function from `seed`. The probe sets' gratings (the
    /// authors' grids) are not in it: the paper trains on natural video, not on its probe sets. The one target is `family` (0 gratings,
    /// 1 double gratings, 2 actions).
    ///
    /// - Complexity: O(count · frames · height · width · channels).
    public static func mixed(count: Int, frames: Int = 8, height: Int = 32, width: Int = 32, channels: Int = 3,
                             seed: UInt64, style: ActionStyle = .init()) -> VideoClipSet {
        let n = max(0, count), third = (n + 2) / 3
        let parts = [legacyGratings(count: min(third, n), frames: frames, height: height, width: width, channels: channels, seed: seed),
                     legacyDoubleGratings(count: min(third, max(0, n - third)), frames: frames, height: height, width: width,
                                    channels: channels, seed: seed),
                     actions(count: max(0, n - 2 * third), frames: frames, height: height, width: width, channels: channels,
                             seed: seed, style: style)]
        var pixels: [Float] = []
        pixels.reserveCapacity(parts.reduce(0) { $0 + $1.pixels.count })
        var family: [Int] = []
        for (k, part) in parts.enumerated() {
            pixels += part.pixels
            family += Array(repeating: k, count: part.count)
        }
        return VideoClipSet(name: "mixed", count: n, frames: parts[0].frames, height: parts[0].height, width: parts[0].width,
                            channels: parts[0].channels, pixels: pixels, labels: ["family": family], classCounts: ["family": 3])
    }

    // MARK: occlusion

    /// The occluded variant for OccDrop: per clip, one spatial patch is kept across all frames and
    /// every other pixel is set to 0.5.
    ///
    /// The patch is a cell of the grid of `patch`×`patch` cells anchored at (0, 0) (cells that do not
    /// fit whole are never kept), chosen uniformly from (seed, clip index). `patch` is clamped to
    /// 1…min(height, width). The name becomes `"<name>-one-patch"`; labels are unchanged.
    ///
    /// - Complexity: O(count · frames · height · width · channels).
    public static func occludeAllButOnePatch(_ set: VideoClipSet, patch: Int, seed: UInt64) -> VideoClipSet {
        var out = set
        out.name = set.name + "-one-patch"
        out.pixels = [Float](repeating: 0.5, count: set.pixels.count)
        guard set.height > 0, set.width > 0, set.count > 0 else { return out }
        let p = max(1, min(patch, set.height, set.width))
        let gridColumns = set.width / p
        let cells = (set.height / p) * gridColumns
        let (h, w, c) = (set.height, set.width, set.channels)
        for i in 0..<set.count {
            var rng = SeededGenerator(seed: streamSeed(seed, Family.occlusion, i))
            let cell = uniformInt(&rng, cells)
            let (r0, c0) = ((cell / gridColumns) * p, (cell % gridColumns) * p)
            for f in 0..<set.frames {
                for y in r0..<(r0 + p) {
                    let start = (((i * set.frames + f) * h + y) * w + c0) * c
                    out.pixels.replaceSubrange(start..<(start + p * c), with: set.pixels[start..<(start + p * c)])
                }
            }
        }
        return out
    }

    // MARK: by name

    /// A built-in set by name: `"gratings"`, `"double-gratings"`, `"actions"`, `"legacy-gratings"`,
    /// `"legacy-double-gratings"` or `"mixed"`.
    ///
    /// - Throws: `TrainingError` for an unknown name (listing the known ones) or for sizes out of
    ///   range (count ≥ 0, frames ≥ 1, height and width ≥ 8, channels ≥ 1).
    public static func named(_ name: String, count: Int, frames: Int, height: Int, width: Int, channels: Int = 3,
                             seed: UInt64, style: ActionStyle = .init()) throws -> VideoClipSet {
        guard acceptedNames.contains(name) else {
            throw TrainingError("unknown synthetic video '\(name)'; known: \(acceptedNames.joined(separator: ", "))")
        }
        guard count >= 0 else { throw TrainingError("clip count must be ≥ 0, got \(count)") }
        guard frames >= 1 else { throw TrainingError("frames must be ≥ 1, got \(frames)") }
        guard height >= 8, width >= 8 else { throw TrainingError("frames must be at least 8×8 pixels, got \(height)×\(width)") }
        guard channels >= 1 else { throw TrainingError("channels must be ≥ 1, got \(channels)") }
        guard style.objectScale.isFinite, style.objectScale > 0, style.objectScale <= 3 else {
            throw TrainingError("object scale must be in (0, 3], got \(style.objectScale)")
        }
        guard (0...8).contains(style.distractors) else { throw TrainingError("distractors must be in 0...8, got \(style.distractors)") }
        switch name {
        case "mixed": return mixed(count: count, frames: frames, height: height, width: width, channels: channels, seed: seed,
                                   style: style)
        case "gratings": return gratings(count: count, frames: frames, height: height, width: width, channels: channels, seed: seed)
        case "double-gratings": return doubleGratings(count: count, frames: frames, height: height, width: width, channels: channels, seed: seed)
        case "legacy-gratings": return legacyGratings(count: count, frames: frames, height: height, width: width, channels: channels, seed: seed)
        case "legacy-double-gratings":
            return legacyDoubleGratings(count: count, frames: frames, height: height, width: width, channels: channels, seed: seed)
        default: return actions(count: count, frames: frames, height: height, width: width, channels: channels, seed: seed,
                                style: style)
        }
    }
}

// MARK: - machinery

extension SyntheticVideo {
    /// Stream tags: each family (and the occlusion) draws from its own streams of the same seed.
    enum Family {
        static let gratings: UInt64 = 1
        static let doubleGratings: UInt64 = 2
        static let actions: UInt64 = 3
        static let occlusion: UInt64 = 4
        static let authorsGratings: UInt64 = 5
        static let authorsDoubleGratings: UInt64 = 6
    }

    struct ClipSize {
        var count, frames, height, width, channels: Int
        init(count: Int, frames: Int, height: Int, width: Int, channels: Int) {
            (self.count, self.frames, self.height, self.width, self.channels) =
                (max(0, count), max(0, frames), max(0, height), max(0, width), max(0, channels))
        }
        var perClip: Int { frames * height * width * channels }
    }

    /// One SplitMix64 output of `a` perturbed by `b`: a well-mixed seed for a sub-stream.
    @inline(__always) static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var g = SeededGenerator(seed: a ^ (b &* 0xD6E8_FEB8_6659_FD93))
        return g.next()
    }

    /// The seed of item `index` of stream `family` under `seed`.
    @inline(__always) static func streamSeed(_ seed: UInt64, _ family: UInt64, _ index: Int) -> UInt64 {
        mix(mix(seed, family), UInt64(bitPattern: Int64(index)))
    }

    /// Uniform integer in 0..<n (n ≥ 1).
    @inline(__always) static func uniformInt(_ rng: inout SeededGenerator, _ n: Int) -> Int {
        min(n - 1, Int(rng.nextUniform() * Double(n)))
    }

    /// Uniform in [lo, hi]; the midpoint when the interval is empty (frames too small for the margins).
    @inline(__always) static func uniform(_ rng: inout SeededGenerator, _ lo: Float, _ hi: Float) -> Float {
        hi <= lo ? (lo + hi) / 2 : lo + (hi - lo) * Float(rng.nextUniform())
    }

    /// The class of clip `index` for one target: blocks of k consecutive clips each hold every class
    /// once, in an order drawn from (seed, target, block).
    static func balancedClass(seed: UInt64, target: UInt64, index: Int, classes k: Int) -> Int {
        guard k > 1 else { return 0 }
        var rng = SeededGenerator(seed: streamSeed(seed, target, index / k))
        var order = Array(0..<k)
        for j in stride(from: k - 1, to: 0, by: -1) { order.swapAt(j, uniformInt(&rng, j + 1)) }
        return order[index % k]
    }

    /// Uniform noise in ±noiseAmplitude, four 16-bit draws per generator output.
    struct Noise {
        var rng: SeededGenerator
        var bits: UInt64 = 0
        var left = 0
        init(seed: UInt64) { rng = SeededGenerator(seed: seed) }

        @inline(__always) mutating func next() -> Float {
            if left == 0 { bits = rng.next(); left = 4 }
            let v = Float(bits & 0xFFFF)
            bits >>= 16
            left -= 1
            return (v * (2 / 65535) - 1) * SyntheticVideo.noiseAmplitude
        }
    }

    struct Generated {
        var set: VideoClipSet
        /// Per clip, whatever the renderer returned (used by double gratings for the right half).
        var extra: [[Int]]
    }

    /// Draws the balanced classes of every clip (targets in `order`) and lets `render` fill the clip.
    static func generate(name: String, size: ClipSize, family: UInt64, order: [String], classCounts: [String: Int],
                         seed: UInt64,
                         render: ([Int], inout SeededGenerator, inout Noise, UnsafeMutableBufferPointer<Float>) -> Void)
        -> VideoClipSet {
        generateWithExtra(name: name, size: size, family: family, order: order, classCounts: classCounts, seed: seed) {
            render($0, &$1, &$2, $3)
            return []
        }.set
    }

    static func generateWithExtra(name: String, size: ClipSize, family: UInt64, order: [String], classCounts: [String: Int],
                                  seed: UInt64,
                                  render: ([Int], inout SeededGenerator, inout Noise, UnsafeMutableBufferPointer<Float>) -> [Int])
        -> Generated {
        let n = size.count, per = size.perClip
        var pixels = [Float](repeating: 0.5, count: n * per)
        var labels = order.map { _ in [Int](repeating: 0, count: n) }
        var extra = [[Int]]()
        extra.reserveCapacity(n)
        let familySeed = mix(seed, family)
        pixels.withUnsafeMutableBufferPointer { all in
            for i in 0..<n {
                let classes = order.enumerated().map { t, target in
                    balancedClass(seed: familySeed, target: UInt64(t + 1), index: i, classes: classCounts[target]!)
                }
                for t in order.indices { labels[t][i] = classes[t] }
                let clipSeed = streamSeed(familySeed, 0, i)
                var rng = SeededGenerator(seed: mix(clipSeed, 1))
                var noise = Noise(seed: mix(clipSeed, 2))
                let clip = UnsafeMutableBufferPointer(rebasing: all[(i * per)..<((i + 1) * per)])
                extra.append(render(classes, &rng, &noise, clip))
            }
        }
        var byName: [String: [Int]] = [:]
        for (t, target) in order.enumerated() { byName[target] = labels[t] }
        let set = VideoClipSet(name: name, count: n, frames: size.frames, height: size.height, width: size.width,
                               channels: size.channels, pixels: pixels, labels: byName, classCounts: classCounts)
        return Generated(set: set, extra: extra)
    }

    // MARK: gratings

    struct GratingParameters {
        var orientation: Int
        var spatialFrequency: Float  // cycles per min(height, width)
        var temporalFrequency: Float  // cycles per frame
        var contrast: Float
        var direction: Float  // ±1
        var phase: Float
        var gains: [Float]  // per channel
    }

    /// (cos θ, sin θ) of the four orientations, exact at 0° and 90°.
    static let orientationVectors: [(Float, Float)] = [(1, 0), (0.70710677, 0.70710677), (0, 1), (-0.70710677, 0.70710677)]

    /// Fills `columns` of every frame with the grating; sin(a + b) = sin a cos b + cos a sin b with
    /// a the spatial phase (per pixel) and b the temporal phase (per frame).
    static func renderGrating(_ g: GratingParameters, columns: Range<Int>, size: ClipSize, noise: inout Noise,
                              into clip: UnsafeMutableBufferPointer<Float>) {
        let (h, w, c) = (size.height, size.width, size.channels)
        guard h > 0, !columns.isEmpty, c > 0 else { return }
        let m = Float(min(h, w))
        let (cosT, sinT) = orientationVectors[g.orientation]
        let k = 2 * Float.pi * g.spatialFrequency / m
        let (kx, ky) = (k * cosT, -k * sinT)
        let cw = columns.count
        var sinA = [Float](repeating: 0, count: h * cw), cosA = sinA
        for y in 0..<h {
            for (j, x) in columns.enumerated() {
                let a = kx * Float(x) + ky * Float(y) + g.phase
                sinA[y * cw + j] = Float.sin(a)
                cosA[y * cw + j] = Float.cos(a)
            }
        }
        let amplitudes = g.gains.map { $0 * g.contrast }
        for f in 0..<size.frames {
            let b = -g.direction * 2 * Float.pi * g.temporalFrequency * Float(f)
            let (sb, cb) = (Float.sin(b), Float.cos(b))
            for y in 0..<h {
                var offset = ((f * h + y) * w + columns.lowerBound) * c
                for j in 0..<cw {
                    let s = sinA[y * cw + j] * cb + cosA[y * cw + j] * sb
                    for ch in 0..<c {
                        clip[offset + ch] = clamp01(0.5 + amplitudes[ch] * s + noise.next())
                    }
                    offset += c
                }
            }
        }
    }

    @inline(__always) static func clamp01(_ v: Float) -> Float { min(1, max(0, v)) }

    // MARK: actions

    /// Whether local point (u, v) (units of the object radius) lies on object `shape`, and its
    /// texture value there (0.1 or 0.9).
    @inline(__always) static func objectTexture(_ shape: Int, _ u: Float, _ v: Float) -> Float? {
        switch shape {
        case 0:  // disc, horizontal stripes
            guard u * u + v * v <= 1 else { return nil }
            return Int((v + 1) * 2.5) % 2 == 0 ? 0.9 : 0.1
        case 1:  // square, checkerboard
            guard abs(u) <= 0.85, abs(v) <= 0.85 else { return nil }
            return (Int((u + 1) * 2.35) + Int((v + 1) * 2.35)) % 2 == 0 ? 0.9 : 0.1
        case 2:  // cross, diagonal stripes
            guard (abs(u) <= 0.34 && abs(v) <= 1) || (abs(v) <= 0.34 && abs(u) <= 1) else { return nil }
            return Int((u + v + 2) * 2) % 2 == 0 ? 0.9 : 0.1
        default:  // ring, flat bright
            let r2 = u * u + v * v
            guard r2 <= 1, r2 >= 0.55 * 0.55 else { return nil }
            return 0.9
        }
    }

    /// Object centre (x, y) and radius in pixels at clip fraction τ ∈ [0, 1], for one clip's draws.
    struct Trajectory {
        var start: (x: Float, y: Float)
        var velocity: (x: Float, y: Float) = (0, 0)  // pixels per unit τ
        var radius: Float
        var growth: Float = 0  // zoom: radius · (1 + growth · τ)
        var orbit: (radius: Float, angle: Float, sweep: Float)? = nil

        func at(_ tau: Float) -> (x: Float, y: Float, r: Float) {
            if let o = orbit {
                let a = o.angle + o.sweep * tau
                return (start.x + o.radius * Float.cos(a), start.y - o.radius * Float.sin(a), radius)
            }
            return (start.x + velocity.x * tau, start.y + velocity.y * tau, radius * (1 + growth * tau))
        }
    }

    static func trajectory(motion: Int, size: ClipSize, scale: Float = 1, rng: inout SeededGenerator) -> Trajectory {
        let (h, w) = (Float(size.height), Float(size.width))
        let m = min(h, w)
        switch motion {
        case 0, 1, 2, 3:
            let r = scale * m * uniform(&rng, 0.14, 0.19)
            let horizontal = motion < 2
            let (along, across) = horizontal ? (w, h) : (h, w)
            let distance = min(along * uniform(&rng, 0.35, 0.5), max(0, along - 2 * r - 2))
            let first = uniform(&rng, r + 1, along - r - 1 - distance)  // smaller end of the path
            let other = uniform(&rng, r + 1, across - r - 1)
            let forward = motion == 1 || motion == 3  // right or down: increasing coordinate
            let s0 = forward ? first : first + distance
            let v = forward ? distance : -distance
            return horizontal ? Trajectory(start: (s0, other), velocity: (v, 0), radius: r)
                : Trajectory(start: (other, s0), velocity: (0, v), radius: r)
        case 4:
            let r = scale * m * uniform(&rng, 0.14, 0.19)
            let orbitRadius = scale * m * uniform(&rng, 0.2, 0.26)
            let slack = max(0, m / 2 - orbitRadius - r - 1)
            let cx = w / 2 + uniform(&rng, -slack, slack), cy = h / 2 + uniform(&rng, -slack, slack)
            let angle = uniform(&rng, 0, 2 * .pi)
            let sweep = uniform(&rng, 1, 1.5) * .pi * (rng.next() & 1 == 0 ? 1 : -1)
            return Trajectory(start: (cx, cy), radius: r, orbit: (orbitRadius, angle, sweep))
        default:
            let r0 = scale * m * uniform(&rng, 0.09, 0.11)
            let growth = uniform(&rng, 1.2, 1.6)
            let rEnd = r0 * (1 + growth)
            let cx = uniform(&rng, rEnd + 1, w - rEnd - 1), cy = uniform(&rng, rEnd + 1, h - rEnd - 1)
            return Trajectory(start: (cx, cy), radius: r0, growth: growth)
        }
    }

    /// Overpaints `background` ([H, W, C]) with a dead-leaves texture (Matheron's model, used as an
    /// image model with natural statistics by Lee, Mumford & Huang 2001): discs of radius r with density
    /// ∝ r⁻³ on [m/32, m/2] (m = min(H, W)), which gives the 1/f² power spectrum of natural images, each a
    /// random grey in [0.25, 0.75] with a per-channel tint of ±0.05, painted in turn so later discs
    /// occlude earlier ones (`deadLeafCount` discs; pixels no disc covers keep the base colour).
    static func paintDeadLeaves(_ background: inout [Float], height h: Int, width w: Int, channels c: Int,
                                rng: inout SeededGenerator) {
        let m = Float(min(h, w))
        let (rMin, rMax) = (max(0.5, m / 32), m / 2)
        let (a, b) = (1 / (rMin * rMin), 1 / (rMax * rMax))
        for _ in 0..<deadLeafCount {
            let r = 1 / (a - uniform(&rng, 0, 1) * (a - b)).squareRoot()  // inverse CDF of density ∝ r⁻³
            let cx = uniform(&rng, -r, Float(w) + r), cy = uniform(&rng, -r, Float(h) + r)
            let grey = uniform(&rng, 0.25, 0.75)
            let colour = (0..<c).map { _ in grey + uniform(&rng, -0.05, 0.05) }
            let y0 = max(0, Int((cy - r).rounded(.down))), y1 = min(h - 1, Int((cy + r).rounded(.up)))
            let x0 = max(0, Int((cx - r).rounded(.down))), x1 = min(w - 1, Int((cx + r).rounded(.up)))
            guard y0 <= y1, x0 <= x1 else { continue }
            for y in y0...y1 {
                for x in x0...x1 {
                    let (dx, dy) = (Float(x) + 0.5 - cx, Float(y) + 0.5 - cy)
                    guard dx * dx + dy * dy <= r * r else { continue }
                    for ch in 0..<c { background[(y * w + x) * c + ch] = colour[ch] }
                }
            }
        }
    }

    /// Discs of a dead-leaves background.
    static let deadLeafCount = 96

    /// Paints object `shape` (`objectTexture`) centred at (cx, cy) with radius r into `image` ([H, W, C]),
    /// each channel 0.5 + (texture − 0.5) · tint.
    static func paintObject(_ shape: Int, cx: Float, cy: Float, r: Float, tint: [Float], into image: UnsafeMutableBufferPointer<Float>,
                            height h: Int, width w: Int, channels c: Int) {
        let y0 = max(0, Int((cy - r - 1).rounded(.down))), y1 = min(h - 1, Int((cy + r + 1).rounded(.up)))
        let x0 = max(0, Int((cx - r - 1).rounded(.down))), x1 = min(w - 1, Int((cx + r + 1).rounded(.up)))
        guard y0 <= y1, x0 <= x1 else { return }
        for y in y0...y1 {
            for x in x0...x1 {
                guard let value = objectTexture(shape, (Float(x) + 0.5 - cx) / r, (Float(y) + 0.5 - cy) / r) else { continue }
                for ch in 0..<c { image[(y * w + x) * c + ch] = 0.5 + (value - 0.5) * tint[ch] }
            }
        }
    }

    static func renderAction(object: Int, motion: Int, size: ClipSize, plainBackground: Bool, style: ActionStyle = .init(),
                             rng: inout SeededGenerator, noise: inout Noise, into clip: UnsafeMutableBufferPointer<Float>) {
        let (h, w, c) = (size.height, size.width, size.channels)
        guard h > 0, w > 0, c > 0 else { return }
        let path = trajectory(motion: motion, size: size, scale: style.objectScale, rng: &rng)
        let tint = (0..<c).map { _ in uniform(&rng, 0.7, 1) }
        // Static background, [H, W, C].
        var background = [Float](repeating: 0.5, count: h * w * c)
        let m = Float(min(h, w))
        var base = (0..<c).map { _ in uniform(&rng, 0.4, 0.6) }
        let (waveCount, cycles, amplitudes): (Int, (Float, Float), (Float, Float)) =
            style.texturedBackground ? (8, (1, 8), (0.04, 0.1)) : (3, (1, 5), (0.03, 0.07))
        var waves: [(kx: Float, ky: Float, phase: Float, amplitude: Float)] = (0..<waveCount).map { _ in
            let k = 2 * Float.pi * uniform(&rng, cycles.0, cycles.1) / m
            let theta = uniform(&rng, 0, .pi)
            return (k * Float.cos(theta), k * Float.sin(theta), uniform(&rng, 0, 2 * .pi), uniform(&rng, amplitudes.0, amplitudes.1))
        }
        if plainBackground { base = Array(repeating: 0.5, count: c); waves = [] }
        if style.deadLeaves && !plainBackground { waves = []; base = (0..<c).map { _ in uniform(&rng, 0.4, 0.6) } }
        for y in 0..<h {
            for x in 0..<w {
                var t: Float = 0
                for wave in waves { t += wave.amplitude * Float.sin(wave.kx * Float(x) + wave.ky * Float(y) + wave.phase) }
                for ch in 0..<c { background[(y * w + x) * c + ch] = base[ch] + t }
            }
        }
        if style.deadLeaves && !plainBackground { paintDeadLeaves(&background, height: h, width: w, channels: c, rng: &rng) }
        // Static distractors: objects of any of the four shapes, with the moving object's size range,
        // painted into the background, so only its motion tells the labelled object apart.
        for _ in 0..<(plainBackground ? 0 : style.distractors) {
            let shape = uniformInt(&rng, objectNames.count)
            let r = style.objectScale * m * uniform(&rng, 0.14, 0.19)
            let cx = uniform(&rng, r + 1, Float(w) - r - 1), cy = uniform(&rng, r + 1, Float(h) - r - 1)
            let shade = (0..<c).map { _ in uniform(&rng, 0.7, 1) }
            background.withUnsafeMutableBufferPointer {
                paintObject(shape, cx: cx, cy: cy, r: r, tint: shade, into: $0, height: h, width: w, channels: c)
            }
        }
        let frameSize = h * w * c
        for f in 0..<size.frames {
            let frame = UnsafeMutableBufferPointer(rebasing: clip[(f * frameSize)..<((f + 1) * frameSize)])
            _ = frame.update(fromContentsOf: background)
            let tau: Float = size.frames > 1 ? Float(f) / Float(size.frames - 1) : 0
            let (cx, cy, r) = path.at(tau)
            paintObject(object, cx: cx, cy: cy, r: r, tint: tint, into: frame, height: h, width: w, channels: c)
            for i in 0..<frameSize { frame[i] = clamp01(frame[i] + noise.next()) }
        }
    }
}
