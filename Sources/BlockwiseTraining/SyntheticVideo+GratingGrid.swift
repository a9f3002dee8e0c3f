import LinearAlgebra
import Numerics

/// The grating probe sets of the paper: the parameter grids of the authors' released generator
/// (Römer & Dickscheid's evaluation code, `evaluation/grating_dataset.py`, configurations `DEFAULT`
/// and `DEFAULT_TWO_REGION`; probed targets in `evaluation/shared.py`), scaled to our clips.
///
/// The grids are given in the authors' units (cycles per frame on 128-px frames, cycles per second
/// at 6.25 frames per second); docs/probe-sets.md states the mapping to our clips and its reasons.
public enum GratingGrid {
    /// Frames per second of the authors' clips: the phase advances by 2π · f / 6.25 per frame.
    public static let framesPerSecond: Float = 6.25
    /// Our spatial frequency = the authors' × this: their 16-px patches on 128-px frames (8 patches a
    /// side) become our 8-px patches on 32-px frames (4 a side), so the cycles per patch are kept.
    public static let spatialScale: Float = 0.5

    /// One named colour: the gain of the sinusoid in the red, green and blue channels.
    public struct Colour: Sendable, Equatable {
        public var name: String
        public var rgb: [Float]
    }

    public static let gray = Colour(name: "gray", rgb: [1, 1, 1])
    public static let red = Colour(name: "red", rgb: [1, 0, 0])
    public static let green = Colour(name: "green", rgb: [0, 1, 0])
    public static let blue = Colour(name: "blue", rgb: [0, 0, 1])
    public static let orange = Colour(name: "orange", rgb: [1, 0.5, 0])

    // MARK: single drifting gratings (DEFAULT)

    /// Cycles per 128-px frame.
    public static let spatialFrequencies: [Float] = [4, 8, 12, 16, 20, 24]
    /// Degrees, 0 = vertical bars (intensity varies along x).
    public static let orientations: [Float] = (0..<12).map { Float($0 * 30) }
    /// Cycles per second.
    public static let temporalFrequencies: [Float] = [0.5, 1, 2, 4, 6, 8]
    public static let contrasts: [Float] = [0.2, 0.4, 0.6, 0.8, 1.0]
    public static let colours: [Colour] = [gray, red, green, blue, orange]

    // MARK: double drifting gratings (DEFAULT_TWO_REGION)

    /// Cycles per 128-px frame, drawn for each half on its own.
    public static let doubleSpatialFrequencies: [Float] = [4, 10, 16]
    /// The right half's orientation is the left's plus one of these, modulo 360°.
    public static let orientationDeltas: [Float] = [0, 45, 90, 135]
    public static let doubleTemporalFrequencies: [Float] = [2, 5, 8]
    public static let doubleContrasts: [Float] = [0.33, 0.67, 1.0]
    public static let doubleColours: [Colour] = [gray, red, green, blue]

    /// The right orientations the grid gives: (left + Δ) mod 360, sorted (24 values, multiples of 15°).
    public static let rightOrientations: [Float] = Array(Set(orientations.flatMap { o in orientationDeltas.map { ($0 + o).truncatingRemainder(dividingBy: 360) } })).sorted()
    /// sf_right − sf_left over the grid, sorted (−12, −6, 0, 6, 12).
    public static let spatialFrequencyDeltas: [Float] = Array(Set(doubleSpatialFrequencies.flatMap { l in doubleSpatialFrequencies.map { $0 - l } })).sorted()

    /// The targets of the single set, in the authors' order, with their class counts.
    public static let singleTargets: [(name: String, classes: Int)] = [
        ("spatial_freq", spatialFrequencies.count), ("orientation_deg", orientations.count),
        ("temporal_freq", temporalFrequencies.count), ("contrast", contrasts.count), ("color", colours.count),
    ]
    /// The nine probed targets of the double set, in the authors' order, with their class counts.
    public static let doubleTargets: [(name: String, classes: Int)] = [
        ("spatial_freq_left", 3), ("spatial_freq_right", 3), ("sf_delta", spatialFrequencyDeltas.count),
        ("sf_higher_side", 3), ("spatial_freq_match", 2), ("orientation_deg_left", orientations.count),
        ("orientation_deg_right", rightOrientations.count), ("orientation_delta", orientationDeltas.count),
        ("orientation_match", 2),
    ]

    /// The targets of a double grating with left/right spatial frequencies `sfLeft`, `sfRight` (grid
    /// values), left orientation `left` and Δ `delta` (degrees), derived as the authors derive them:
    /// sf_delta = right − left; sf_higher_side 0 = left higher, 1 = right higher, 2 = equal;
    /// spatial_freq_match = 1 when equal; orientation_deg_right = (left + Δ) mod 360; orientation_match
    /// = 1 when Δ mod 360 = 0. Each is the index of its value among the grid's sorted values.
    public static func doubleLabels(sfLeft: Float, sfRight: Float, left: Float, delta: Float) -> [String: Int] {
        let right = (left + delta).truncatingRemainder(dividingBy: 360)
        return [
            "spatial_freq_left": doubleSpatialFrequencies.firstIndex(of: sfLeft)!,
            "spatial_freq_right": doubleSpatialFrequencies.firstIndex(of: sfRight)!,
            "sf_delta": spatialFrequencyDeltas.firstIndex(of: sfRight - sfLeft)!,
            "sf_higher_side": sfLeft > sfRight ? 0 : sfRight > sfLeft ? 1 : 2,
            "spatial_freq_match": sfLeft == sfRight ? 1 : 0,
            "orientation_deg_left": orientations.firstIndex(of: left)!,
            "orientation_deg_right": rightOrientations.firstIndex(of: right)!,
            "orientation_delta": orientationDeltas.firstIndex(of: delta)!,
            "orientation_match": delta.truncatingRemainder(dividingBy: 360) == 0 ? 1 : 0,
        ]
    }
}

extension SyntheticVideo {
    /// One drawn grating: the authors' parameters, in their units.
    public struct GratingDraw: Sendable, Equatable {
        public var spatialFrequency: Float
        public var orientation: Float
        public var temporalFrequency: Float
        public var contrast: Float
        public var colour: GratingGrid.Colour
    }

    /// Single drifting gratings on the authors' grid (`GratingGrid`, configuration `DEFAULT`).
    ///
    /// Every clip is a point of the product grid spatial_freq × orientation_deg × temporal_freq ×
    /// contrast × color, drawn by `balancedGridPoints`: each target's classes differ in count by at
    /// most one, and no grid point repeats while the grid has unused points. Rendered by
    /// `renderAuthorsGrating` over the whole frame. Targets (the authors' names): `spatial_freq` (6),
    /// `orientation_deg` (12), `temporal_freq` (6), `contrast` (5) and, with ≥ 3 channels, `color` (5);
    /// class i is the i-th grid value. No pixel noise (the authors add none).
    ///
    /// - Complexity: O(count · frames · height · width · channels).
    public static func gratings(count: Int, frames: Int = 8, height: Int = 32, width: Int = 32, channels: Int = 3,
                                seed: UInt64) -> VideoClipSet {
        let size = ClipSize(count: count, frames: frames, height: height, width: width, channels: channels)
        let coloured = size.channels >= 3
        let targets = GratingGrid.singleTargets.filter { coloured || $0.name != "color" }
        let points = balancedGridPoints(count: size.count, classCounts: targets.map(\.classes), seed: mix(seed, Family.authorsGratings))
        var pixels = [Float](repeating: 0.5, count: size.count * size.perClip)
        pixels.withUnsafeMutableBufferPointer { all in
            for (i, p) in points.enumerated() {
                let g = GratingDraw(spatialFrequency: GratingGrid.spatialFrequencies[p[0]], orientation: GratingGrid.orientations[p[1]],
                                    temporalFrequency: GratingGrid.temporalFrequencies[p[2]], contrast: GratingGrid.contrasts[p[3]],
                                    colour: coloured ? GratingGrid.colours[p[4]] : GratingGrid.gray)
                renderAuthorsGrating(g, columns: 0..<size.width, size: size,
                                     into: UnsafeMutableBufferPointer(rebasing: all[(i * size.perClip)..<((i + 1) * size.perClip)]))
            }
        }
        var labels: [String: [Int]] = [:]
        for (t, target) in targets.enumerated() { labels[target.name] = points.map { $0[t] } }
        return VideoClipSet(name: "gratings", count: size.count, frames: size.frames, height: size.height, width: size.width,
                            channels: size.channels, pixels: pixels, labels: labels,
                            classCounts: Dictionary(uniqueKeysWithValues: targets.map { ($0.name, $0.classes) }))
    }

    /// Double drifting gratings on the authors' grid (`GratingGrid`, configuration `DEFAULT_TWO_REGION`).
    ///
    /// Both halves share the temporal frequency, contrast, colour and phase (0); each half has its own
    /// spatial frequency, and the right orientation is the left one plus Δ ∈ {0°, 45°, 90°, 135°}. The
    /// left half (columns 0..<width/2) shows the left grating and the right half the right grating,
    /// both rendered on the frame's coordinates (a hard edge, no gap). The drawn factors are (sf_left,
    /// sf_right) jointly (9 points), (orientation_left, Δ) jointly (48), temporal_freq (3), contrast (3)
    /// and colour (4, with ≥ 3 channels), by `balancedGridPoints`: so every target is as balanced as the
    /// grid allows (orientation_deg_right's 24 classes equal, sf_delta's five in the grid's 1:2:3:2:1,
    /// spatial_freq_match and orientation_match 1/3 and 1/4 positive). Targets:
    /// `GratingGrid.doubleTargets`, derived by `GratingGrid.doubleLabels`. No pixel noise.
    ///
    /// - Complexity: O(count · frames · height · width · channels).
    public static func doubleGratings(count: Int, frames: Int = 8, height: Int = 32, width: Int = 32, channels: Int = 3,
                                      seed: UInt64) -> VideoClipSet {
        let size = ClipSize(count: count, frames: frames, height: height, width: width, channels: channels)
        let coloured = size.channels >= 3
        let sfs = GratingGrid.doubleSpatialFrequencies, deltas = GratingGrid.orientationDeltas
        let factors = [sfs.count * sfs.count, GratingGrid.orientations.count * deltas.count,
                       GratingGrid.doubleTemporalFrequencies.count, GratingGrid.doubleContrasts.count] + (coloured ? [GratingGrid.doubleColours.count] : [])
        let points = balancedGridPoints(count: size.count, classCounts: factors, seed: mix(seed, Family.authorsDoubleGratings))
        var pixels = [Float](repeating: 0.5, count: size.count * size.perClip)
        var labels: [String: [Int]] = Dictionary(uniqueKeysWithValues: GratingGrid.doubleTargets.map { ($0.name, [Int](repeating: 0, count: size.count)) })
        let half = size.width / 2
        pixels.withUnsafeMutableBufferPointer { all in
            for (i, p) in points.enumerated() {
                let (sfLeft, sfRight) = (sfs[p[0] / sfs.count], sfs[p[0] % sfs.count])
                let (left, delta) = (GratingGrid.orientations[p[1] / deltas.count], deltas[p[1] % deltas.count])
                let shared = (tf: GratingGrid.doubleTemporalFrequencies[p[2]], contrast: GratingGrid.doubleContrasts[p[3]],
                              colour: coloured ? GratingGrid.doubleColours[p[4]] : GratingGrid.gray)
                let clip = UnsafeMutableBufferPointer(rebasing: all[(i * size.perClip)..<((i + 1) * size.perClip)])
                for (sf, orientation, columns) in [(sfLeft, left, 0..<half),
                                                   (sfRight, (left + delta).truncatingRemainder(dividingBy: 360), half..<size.width)] {
                    let g = GratingDraw(spatialFrequency: sf, orientation: orientation, temporalFrequency: shared.tf,
                                        contrast: shared.contrast, colour: shared.colour)
                    renderAuthorsGrating(g, columns: columns, size: size, into: clip)
                }
                for (t, v) in GratingGrid.doubleLabels(sfLeft: sfLeft, sfRight: sfRight, left: left, delta: delta) { labels[t]![i] = v }
            }
        }
        return VideoClipSet(name: "double-gratings", count: size.count, frames: size.frames, height: size.height, width: size.width,
                            channels: size.channels, pixels: pixels, labels: labels,
                            classCounts: Dictionary(uniqueKeysWithValues: GratingGrid.doubleTargets.map { ($0.name, $0.classes) }))
    }

    /// Fills `columns` of every frame of `clip` with the authors' drifting grating.
    ///
    /// With x and y running from −1 to 1 over the pixel centres (x to the right, y down) and
    /// x′ = x cos θ + y sin θ, the grating is s = contrast · sin(π · f · x′ + 2π · tf · t / 6.25) at frame
    /// t, with f = the authors' spatial frequency × `GratingGrid.spatialScale` (cycles over the frame)
    /// and phase 0. The authors' movie has mean 0 and range [−c, c]; ours is 0.5 + 0.5 · s · gain[ch],
    /// in [0, 1], with gain the colour's RGB (channel ch uses `rgb[ch % 3]`).
    static func renderAuthorsGrating(_ g: GratingDraw, columns: Range<Int>, size: ClipSize, into clip: UnsafeMutableBufferPointer<Float>) {
        let (h, w, c) = (size.height, size.width, size.channels)
        guard h > 0, w > 0, !columns.isEmpty, c > 0 else { return }
        let theta = Double(g.orientation) * .pi / 180
        let (cosT, sinT) = (Double.cos(theta), Double.sin(theta))
        let k = Double.pi * Double(g.spatialFrequency * GratingGrid.spatialScale)
        func axis(_ i: Int, _ n: Int) -> Double { n > 1 ? -1 + 2 * Double(i) / Double(n - 1) : 0 }
        let gains = (0..<c).map { 0.5 * g.contrast * g.colour.rgb[$0 % 3] }
        for f in 0..<size.frames {
            let temporal = 2 * Double.pi * Double(g.temporalFrequency) * Double(f) / Double(GratingGrid.framesPerSecond)
            for y in 0..<h {
                let yy = axis(y, h) * sinT
                var offset = ((f * h + y) * w + columns.lowerBound) * c
                for x in columns {
                    let s = Float(Double.sin(k * (axis(x, w) * cosT + yy) + temporal))
                    for ch in 0..<c { clip[offset + ch] = clamp01(0.5 + gains[ch] * s) }
                    offset += c
                }
            }
        }
    }

    /// `count` points of the product grid of factors with `classCounts` classes each (one class index
    /// per factor and point), drawn so that each factor's classes differ in count by at most one and no
    /// point occurs more than ⌈count / grid size⌉ times.
    ///
    /// Each factor's column is a balanced sequence (every block of k consecutive points holds each of
    /// the k classes once, in an order drawn from the seed); repeated points are then removed by swapping
    /// one factor's classes between two points, which keeps every factor's class counts. The result
    /// depends on (count, classCounts, seed) alone.
    ///
    /// - Complexity: O(count · factors) expected.
    static func balancedGridPoints(count: Int, classCounts: [Int], seed: UInt64) -> [[Int]] {
        let n = max(0, count)
        var points = (0..<n).map { i in classCounts.enumerated().map { f, k in balancedClass(seed: seed, target: UInt64(f + 1), index: i, classes: k) } }
        guard n > 1, !classCounts.isEmpty else { return points }
        let gridSize = classCounts.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        let limit = (n + gridSize - 1) / gridSize
        func key(_ p: [Int]) -> Int { zip(p, classCounts).reduce(0) { $0 &* $1.1 &+ $1.0 } }
        var uses: [Int: Int] = [:]
        for p in points { uses[key(p), default: 0] += 1 }
        var rng = SeededGenerator(seed: mix(seed, 0xD0_0B1E))
        for i in 0..<n where uses[key(points[i])]! > limit {
            // Swap one factor's class with another point until both points are within the limit.
            for _ in 0..<100_000 {
                let j = uniformInt(&rng, n), f = uniformInt(&rng, classCounts.count)
                guard j != i, points[i][f] != points[j][f] else { continue }
                var (a, b) = (points[i], points[j])
                swap(&a[f], &b[f])
                let (ka, kb) = (key(a), key(b))
                guard uses[ka, default: 0] < limit, uses[kb, default: 0] < limit, ka != kb else { continue }
                uses[key(points[i])]! -= 1
                uses[key(points[j])]! -= 1
                uses[ka, default: 0] += 1
                uses[kb, default: 0] += 1
                (points[i], points[j]) = (a, b)
                break
            }
        }
        return points
    }
}
