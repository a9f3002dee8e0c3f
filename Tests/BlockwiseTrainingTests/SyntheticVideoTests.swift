@testable import BlockwiseTraining
import Foundation
import XCTest

/// Measurements taken from the pixels of a generated clip, independent of the generator's code.
struct ClipProbe {
    let set: VideoClipSet
    let clip: Int

    /// Mean over channels at (frame, y, x).
    func luminance(_ f: Int, _ y: Int, _ x: Int) -> Double {
        let c = set.channels
        let base = ((((clip * set.frames + f) * set.height + y) * set.width) + x) * c
        var s = 0.0
        for ch in 0..<c { s += Double(set.pixels[base + ch]) }
        return s / Double(c)
    }

    /// Noise variance of one luminance value: uniform ±a per channel has variance a²/3, averaged over C channels.
    var luminanceNoiseVariance: Double {
        let a = Double(SyntheticVideo.noiseAmplitude)
        return a * a / 3 / Double(set.channels)
    }

    /// Mean structure tensor (Jxx, Jyy, Jxy) of luminance from centred differences over all frames and
    /// interior pixels of `columns` (centred differences keep the noise of dx and dy independent).
    func structureTensor(columns: Range<Int>) -> (xx: Double, yy: Double, xy: Double) {
        var xx = 0.0, yy = 0.0, xy = 0.0, n = 0.0
        for f in 0..<set.frames {
            for y in 1..<(set.height - 1) {
                for x in (columns.lowerBound + 1)..<(columns.upperBound - 1) {
                    let dx = luminance(f, y, x + 1) - luminance(f, y, x - 1)
                    let dy = luminance(f, y + 1, x) - luminance(f, y - 1, x)
                    xx += dx * dx; yy += dy * dy; xy += dx * dy; n += 1
                }
            }
        }
        return (xx / n, yy / n, xy / n)
    }

    /// Orientation class of the dominant gradient direction (the wave vector) in `columns`:
    /// θ = ½·atan2(−2Jxy, Jxx − Jyy) with y pointing down (hence the sign), nearest of 0°, 45°, 90°, 135°.
    func orientationClass(columns: Range<Int>) -> Int {
        let j = structureTensor(columns: columns)
        var degrees = 0.5 * atan2(-2 * j.xy, j.xx - j.yy) * 180 / .pi
        if degrees < 0 { degrees += 180 }
        return Int((degrees / 45).rounded()) % 4
    }

    /// Drift sign of a grating of orientation class `o` in `columns`: −sign(mean ∂t·∂k), where ∂k is the
    /// derivative along the wave vector (cos θ, −sin θ) in (x, y); sin(k·r − dωt) gives ∂t·∂k ∝ −d.
    func driftDirection(orientation o: Int, columns: Range<Int>) -> Int {
        let theta = Double(o) * 45 * .pi / 180
        var s = 0.0
        for f in 0..<(set.frames - 1) {
            for y in 1..<(set.height - 1) {
                for x in (columns.lowerBound + 1)..<(columns.upperBound - 1) {
                    let mid = { (yy: Int, xx: Int) in (luminance(f, yy, xx) + luminance(f + 1, yy, xx)) / 2 }
                    let dx = mid(y, x + 1) - mid(y, x - 1)
                    let dy = mid(y + 1, x) - mid(y - 1, x)
                    let dt = luminance(f + 1, y, x) - luminance(f, y, x)
                    s += dt * (dx * cos(theta) - dy * sin(theta))
                }
            }
        }
        return s < 0 ? 1 : -1
    }

    /// Noise-corrected ratio of frame-to-frame change to spatial variance, over `columns`:
    /// (E[Δt²] − 2σ²) / (Var − σ²). For a drifting sinusoid with phase step 2π·tf this is 4 sin²(π·tf).
    func temporalChangeRatio(columns: Range<Int>) -> Double {
        var dt2 = 0.0, n = 0.0, variance = 0.0
        for f in 0..<set.frames {
            var s = 0.0, s2 = 0.0, m = 0.0
            for y in 0..<set.height {
                for x in columns {
                    let v = luminance(f, y, x)
                    s += v; s2 += v * v; m += 1
                    if f + 1 < set.frames { let d = luminance(f + 1, y, x) - v; dt2 += d * d; n += 1 }
                }
            }
            variance += s2 / m - (s / m) * (s / m)
        }
        variance /= Double(set.frames)
        let noise = luminanceNoiseVariance
        return (dt2 / n - 2 * noise) / (variance - noise)
    }

    /// Object mask on a plain 0.5 background: |luminance − 0.5| > 0.1 (object values are at least
    /// 0.4 × 0.7 = 0.28 from 0.5, background noise at most 0.02). Returns the centroid (x, y), the
    /// area, the fraction of bright pixels and the area over the bounding box area, per frame.
    func objectMask(frame f: Int) -> (x: Double, y: Double, area: Double, bright: Double, fill: Double) {
        var sx = 0.0, sy = 0.0, n = 0.0, bright = 0.0
        var (x0, x1, y0, y1) = (Int.max, Int.min, Int.max, Int.min)
        for y in 0..<set.height {
            for x in 0..<set.width {
                let v = luminance(f, y, x)
                guard abs(v - 0.5) > 0.1 else { continue }
                sx += Double(x); sy += Double(y); n += 1
                if v > 0.5 { bright += 1 }
                (x0, x1, y0, y1) = (min(x0, x), max(x1, x), min(y0, y), max(y1, y))
            }
        }
        let box = Double((x1 - x0 + 1) * (y1 - y0 + 1))
        return (sx / n, sy / n, n, bright / n, n / box)
    }
}

/// Nearest-class-mean accuracy: class means of `train` features, test points to the nearest mean.
func nearestClassMeanAccuracy(_ features: [[Double]], labels: [Int], classes: Int, train: Range<Int>, test: Range<Int>) -> Double {
    let d = features[0].count
    var means = [[Double]](repeating: [Double](repeating: 0, count: d), count: classes)
    var counts = [Double](repeating: 0, count: classes)
    for i in train { counts[labels[i]] += 1; for j in 0..<d { means[labels[i]][j] += features[i][j] } }
    for k in 0..<classes { for j in 0..<d { means[k][j] /= counts[k] } }
    var correct = 0
    for i in test {
        let distances = means.map { m in zip(m, features[i]).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) }
        if distances.firstIndex(of: distances.min()!) == labels[i] { correct += 1 }
    }
    return Double(correct) / Double(test.count)
}

final class SyntheticVideoTests: XCTestCase {
    // MARK: determinism, shapes, range

    func testSameSeedSamePixelsAndClipIndependentOfCount() {
        // The authors' grating sets are drawn jointly over the grid (balance and no repeats), so their clip
        // i depends on the count; they are checked for determinism in GratingGridTests.
        for name in ["actions"] + SyntheticVideo.legacyNames {
            let a = try! SyntheticVideo.named(name, count: 12, frames: 8, height: 32, width: 32, seed: 7)
            let b = try! SyntheticVideo.named(name, count: 12, frames: 8, height: 32, width: 32, seed: 7)
            XCTAssertEqual(a, b, name)
            let c = try! SyntheticVideo.named(name, count: 12, frames: 8, height: 32, width: 32, seed: 8)
            XCTAssertNotEqual(a.pixels, c.pixels, name)
            // Clip i (pixels and labels) does not depend on how many clips are generated.
            let few = try! SyntheticVideo.named(name, count: 5, frames: 8, height: 32, width: 32, seed: 7)
            XCTAssertEqual(few.pixels, Array(a.pixels.prefix(few.pixels.count)), name)
            for (target, values) in a.labels { XCTAssertEqual(few.labels[target], Array(values.prefix(5)), "\(name) \(target)") }
            XCTAssertEqual(few.classCounts, a.classCounts, name)
        }
    }

    func testShapesRangeAndLabelDomains() {
        let sizes = [(8, 32, 32, 3), (4, 16, 24, 1), (3, 9, 12, 4)]
        let expectedTargets = [
            "legacy-gratings": ["colour", "contrast", "orientation", "spatial_frequency", "temporal_frequency"],
            "legacy-double-gratings": ["direction_match", "left_orientation", "left_speed", "orientation_delta", "orientation_match",
                                       "right_orientation", "right_speed", "speed_match"],
            "gratings": ["color", "contrast", "orientation_deg", "spatial_freq", "temporal_freq"],
            "double-gratings": ["orientation_deg_left", "orientation_deg_right", "orientation_delta", "orientation_match", "sf_delta",
                                "sf_higher_side", "spatial_freq_left", "spatial_freq_match", "spatial_freq_right"],
            "actions": ["motion", "object"],
        ]
        for name in SyntheticVideo.knownNames + SyntheticVideo.legacyNames {
            for (f, h, w, c) in sizes {
                let s = try! SyntheticVideo.named(name, count: 13, frames: f, height: h, width: w, channels: c, seed: 3)
                XCTAssertEqual([s.count, s.frames, s.height, s.width, s.channels], [13, f, h, w, c])
                XCTAssertEqual(s.name, name)
                XCTAssertEqual(s.pixels.count, 13 * f * h * w * c)
                XCTAssertEqual(s.clip(12).count, f * h * w * c)
                XCTAssertEqual(s.clip(12).startIndex, 12 * f * h * w * c)
                XCTAssertTrue(s.pixels.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(name) values outside [0, 1]")
                var targets = expectedTargets[name]!
                if name.hasSuffix("gratings") && !name.contains("double") && c < 3 { targets.removeFirst() }  // no colour without three channels
                XCTAssertEqual(s.targets, targets, name)
                XCTAssertEqual(s.classCounts.keys.sorted(), targets)
                for (t, values) in s.labels {
                    XCTAssertEqual(values.count, 13)
                    XCTAssertTrue(values.allSatisfy { (0..<s.classCounts[t]!).contains($0) }, "\(name) \(t)")
                }
            }
        }
        XCTAssertEqual(SyntheticVideo.legacyGratings(count: 0, seed: 1).pixels, [])
        XCTAssertEqual(SyntheticVideo.legacyGratings(count: 2, seed: 1).classCounts,
                       ["spatial_frequency": 3, "orientation": 4, "temporal_frequency": 3, "contrast": 2, "colour": 3])
    }

    /// The mixed training set is a third of each family, clip for clip the family's own clips.
    func testMixedIsAThirdOfEachFamily() throws {
        let m = try SyntheticVideo.named("mixed", count: 10, frames: 8, height: 32, width: 32, seed: 5,
                                       style: .init(texturedBackground: true))
        XCTAssertEqual(m.count, 10)
        XCTAssertEqual(m.labels["family"], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
        let g = SyntheticVideo.legacyGratings(count: 4, seed: 5)
        let d = SyntheticVideo.legacyDoubleGratings(count: 4, seed: 5)
        let a = SyntheticVideo.actions(count: 2, seed: 5, style: .init(texturedBackground: true))
        XCTAssertEqual(m.pixels, g.pixels + d.pixels + a.pixels)
        XCTAssertNotEqual(a.pixels, SyntheticVideo.actions(count: 2, seed: 5).pixels)
    }

    func testNamedRejectsUnknownNamesAndBadSizes() {
        XCTAssertThrowsError(try SyntheticVideo.named("ucf101", count: 1, frames: 8, height: 32, width: 32, seed: 0)) {
            XCTAssertEqual("\($0)", "unknown synthetic video 'ucf101'; known: gratings, double-gratings, actions, legacy-gratings, legacy-double-gratings, mixed")
        }
        for (n, f, h, w) in [(-1, 8, 32, 32), (1, 0, 32, 32), (1, 8, 4, 32), (1, 8, 32, 7)] {
            XCTAssertThrowsError(try SyntheticVideo.named("gratings", count: n, frames: f, height: h, width: w, seed: 0)) {
                XCTAssertTrue($0 is TrainingError)
            }
        }
    }

    func testSubsetPicksClipsAndLabels() {
        let s = SyntheticVideo.actions(count: 6, frames: 2, height: 16, width: 16, seed: 5)
        let sub = s.subset([4, 1, 4])
        XCTAssertEqual(sub.count, 3)
        XCTAssertEqual(Array(sub.clip(0)), Array(s.clip(4)))
        XCTAssertEqual(Array(sub.clip(1)), Array(s.clip(1)))
        XCTAssertEqual(sub.labels["motion"], [4, 1, 4].map { s.labels["motion"]![$0] })
        XCTAssertEqual(sub.classCounts, s.classCounts)
    }

    // MARK: balance

    /// Balanced targets: in every prefix of clips the class counts differ by at most one.
    func assertBalanced(_ s: VideoClipSet, _ targets: [String], file: StaticString = #filePath, line: UInt = #line) {
        for t in targets {
            for n in [s.count, s.count - 7, 11] {
                var counts = [Int](repeating: 0, count: s.classCounts[t]!)
                for v in s.labels[t]!.prefix(n) { counts[v] += 1 }
                XCTAssertLessThanOrEqual(counts.max()! - counts.min()!, 1, "\(t) first \(n): \(counts)", file: file, line: line)
            }
        }
    }

    func testClassesAreBalanced() {
        let g = SyntheticVideo.legacyGratings(count: 250, frames: 1, height: 8, width: 8, seed: 11)
        assertBalanced(g, g.targets)
        let a = SyntheticVideo.actions(count: 250, frames: 1, height: 16, width: 16, seed: 11)
        assertBalanced(a, a.targets)
        let d = SyntheticVideo.legacyDoubleGratings(count: 600, frames: 1, height: 8, width: 8, seed: 11)
        assertBalanced(d, ["left_orientation", "left_speed", "orientation_match", "speed_match", "direction_match"])
        // The right half is uniform in expectation: 600 clips, p = 1/4 (1/3), binomial sd ≈ 10.6 (11.5);
        // ±45 is more than 3.9 sd. orientation_delta: 1/2 for class 0, 1/6 for each other class.
        let expected = ["right_orientation": [150.0, 150, 150, 150], "right_speed": [200.0, 200, 200],
                        "orientation_delta": [300.0, 100, 100, 100]]
        for (t, e) in expected {
            var counts = [Double](repeating: 0, count: e.count)
            for v in d.labels[t]! { counts[v] += 1 }
            for k in e.indices { XCTAssertEqual(counts[k], e[k], accuracy: 45, "\(t) \(counts)") }
        }
        // Different targets are not confounded: orientation and spatial frequency are not tied together.
        let pairs = Set(zip(g.labels["orientation"]!, g.labels["spatial_frequency"]!).map { "\($0)-\($1)" })
        XCTAssertEqual(pairs.count, 12)
    }

    // MARK: labels visible in the pixels

    func testGratingOrientationGradients() {
        let s = SyntheticVideo.legacyGratings(count: 48, seed: 21)
        let o = s.labels["orientation"]!
        for i in 0..<s.count {
            let p = ClipProbe(set: s, clip: i)
            let j = p.structureTensor(columns: 0..<s.width)
            // Centred difference of noise alone: 2σ² (σ² the luminance noise variance). Over ~7000 samples
            // its mean is known to a few per cent (measured at most 1.05×), so 1.5× bounds a noise-only
            // direction, while the weakest grating (contrast 0.2, 2 cycles) gives ≈ 0.006 ≈ 70× the noise.
            let noiseOnly = 2 * p.luminanceNoiseVariance
            switch o[i] {
            case 0:  // vertical bars: no vertical gradient
                XCTAssertLessThan(j.yy, 1.5 * noiseOnly, "clip \(i)")
                XCTAssertGreaterThan(j.xx, 20 * noiseOnly, "clip \(i)")
            case 2:  // horizontal bars: no horizontal gradient
                XCTAssertLessThan(j.xx, 1.5 * noiseOnly, "clip \(i)")
                XCTAssertGreaterThan(j.yy, 20 * noiseOnly, "clip \(i)")
            default:  // diagonals: equal energies, cross term of sign −cos θ sin θ (y down)
                XCTAssertEqual(j.xx / j.yy, 1, accuracy: 0.25, "clip \(i)")
                XCTAssertEqual(j.xy < 0, o[i] == 1, "clip \(i)")
            }
            XCTAssertEqual(p.orientationClass(columns: 0..<s.width), o[i], "clip \(i)")
        }
    }

    func testGratingDriftSpeedOrdersFrameToFrameChange() {
        let s = SyntheticVideo.legacyGratings(count: 60, seed: 22)
        let tf = s.labels["temporal_frequency"]!
        var byClass = [[Double]](repeating: [], count: 3)
        for i in 0..<s.count { byClass[tf[i]].append(ClipProbe(set: s, clip: i).temporalChangeRatio(columns: 0..<s.width)) }
        // Expected 4 sin²(π·tf) = 0.152, 0.586, 2.0, a factor ≥ 3.4 apart, so the classes must not overlap.
        // The estimate is biased only by frames holding a non-integer number of cycles (their spatial
        // variance departs from A²/2; averaged over 8 frames at drifting phases this stays within ~1 %,
        // measured 0.6 % at worst) and by the noise estimate: 5 % tolerance.
        for k in 0..<2 { XCTAssertLessThan(byClass[k].max()!, byClass[k + 1].min()!, "\(byClass)") }
        for k in 0..<3 {
            let expected = 4 * pow(sin(Double.pi * Double(SyntheticVideo.temporalFrequencies[k])), 2)
            for r in byClass[k] { XCTAssertEqual(r, expected, accuracy: 0.05 * expected, "class \(k)") }
        }
    }

    func testGratingContrastAndColourAreVisible() {
        let s = SyntheticVideo.legacyGratings(count: 36, seed: 23)
        for i in 0..<s.count {
            let x = Array(s.clip(i)).map(Double.init)
            var sd = [Double](repeating: 0, count: 3)
            for ch in 0..<3 {
                let v = stride(from: ch, to: x.count, by: 3).map { x[$0] }
                let mean = v.reduce(0, +) / Double(v.count)
                sd[ch] = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
            }
            // The most modulated channel is the tint's; its sd ≈ contrast/√2 (0.14 or 0.32).
            XCTAssertEqual(sd.firstIndex(of: sd.max()!), s.labels["colour"]![i], "clip \(i) \(sd)")
            XCTAssertEqual(sd.max()! > 0.22 ? 1 : 0, s.labels["contrast"]![i], "clip \(i) \(sd)")
        }
    }

    func testDoubleGratingHalvesAndRelations() {
        let s = SyntheticVideo.legacyDoubleGratings(count: 48, seed: 24)
        let half = s.width / 2
        let l = s.labels
        for i in 0..<s.count {
            let p = ClipProbe(set: s, clip: i)
            let left = p.orientationClass(columns: 0..<half), right = p.orientationClass(columns: half..<s.width)
            XCTAssertEqual(left, l["left_orientation"]![i], "clip \(i)")
            XCTAssertEqual(right, l["right_orientation"]![i], "clip \(i)")
            XCTAssertEqual(l["orientation_delta"]![i], (right - left + 4) % 4)
            XCTAssertEqual(l["orientation_match"]![i], left == right ? 1 : 0)
            XCTAssertEqual(l["speed_match"]![i], l["left_speed"]![i] == l["right_speed"]![i] ? 1 : 0)
            let dl = p.driftDirection(orientation: left, columns: 0..<half)
            let dr = p.driftDirection(orientation: right, columns: half..<s.width)
            XCTAssertEqual(l["direction_match"]![i], dl == dr ? 1 : 0, "clip \(i)")
            // Speeds from the pixels, per half: the class whose 4 sin²(π·tf) is nearest in log scale.
            for (columns, target) in [(0..<half, "left_speed"), (half..<s.width, "right_speed")] {
                let r = p.temporalChangeRatio(columns: columns)
                let nearest = (0..<3).min { a, b in
                    let ea = 4 * pow(sin(Double.pi * Double(SyntheticVideo.temporalFrequencies[a])), 2)
                    let eb = 4 * pow(sin(Double.pi * Double(SyntheticVideo.temporalFrequencies[b])), 2)
                    return abs(log(r / ea)) < abs(log(r / eb))
                }
                XCTAssertEqual(nearest, l[target]![i], "clip \(i) \(target) ratio \(r)")
            }
        }
        XCTAssertEqual(Set(l["direction_match"]!), [0, 1])
    }

    func testActionObjectMovesAsLabelled() {
        let s = SyntheticVideo.actions(count: 48, frames: 8, height: 32, width: 32, channels: 3, seed: 25, plainBackground: true)
        let motion = s.labels["motion"]!, object = s.labels["object"]!
        for i in 0..<s.count {
            let p = ClipProbe(set: s, clip: i)
            let m = (0..<s.frames).map { p.objectMask(frame: $0) }
            let (dx, dy) = (m.last!.x - m.first!.x, m.last!.y - m.first!.y)
            let areas = m.map(\.area)
            // Straight motions cover at least 35 % of the side (11.2 px); the perpendicular centroid
            // moves only by pixel quantisation of a textured shape (< 1 px).
            let far = 0.3 * Double(s.width), still = 1.0
            switch motion[i] {
            case 0: XCTAssertTrue(dx < -far && abs(dy) < still, "clip \(i) left: \(dx), \(dy)")
            case 1: XCTAssertTrue(dx > far && abs(dy) < still, "clip \(i) right: \(dx), \(dy)")
            case 2: XCTAssertTrue(dy < -far && abs(dx) < still, "clip \(i) up: \(dx), \(dy)")
            case 3: XCTAssertTrue(dy > far && abs(dx) < still, "clip \(i) down: \(dx), \(dy)")
            case 4:
                // An arc of 180°–270° sampled at 8 frames: the direction of travel turns steadily one way,
                // by (sweep)·6/7 ≥ 154° in total.
                var turns: [Double] = []
                for f in 1..<(s.frames - 1) {
                    let a1 = atan2(m[f].y - m[f - 1].y, m[f].x - m[f - 1].x), a2 = atan2(m[f + 1].y - m[f].y, m[f + 1].x - m[f].x)
                    var d = a2 - a1
                    if d > .pi { d -= 2 * .pi } else if d < -.pi { d += 2 * .pi }
                    turns.append(d)
                }
                XCTAssertTrue(turns.allSatisfy { $0 > 0 } || turns.allSatisfy { $0 < 0 }, "clip \(i) orbit turns \(turns)")
                XCTAssertGreaterThan(abs(turns.reduce(0, +)), 0.75 * .pi, "clip \(i) orbit turns \(turns)")
            default:
                // Zoom-in: the radius grows 2.2–2.6×, so the area ≥ 4×, less edge quantisation; centre fixed.
                XCTAssertGreaterThan(areas.last! / areas.first!, 3, "clip \(i) zoom areas \(areas)")
                XCTAssertTrue(zip(areas, areas.dropFirst()).allSatisfy { $0 <= $1 }, "clip \(i) zoom areas \(areas)")
                XCTAssertTrue(abs(dx) < still && abs(dy) < still, "clip \(i) zoom: \(dx), \(dy)")
            }
            // Hard edges at sub-pixel positions: the pixel count of a 3.4 px wide cross arm or a 2.2 px
            // thick ring changes with the position by up to a third.
            if motion[i] != 5 { XCTAssertLessThan(areas.max()! / areas.min()!, 1.5, "clip \(i) \(areas)") }
            // The object: ring flat bright; square fills its bounding box; disc π/4 of it; cross ≈ 0.6.
            let bright = m.map(\.bright).reduce(0, +) / Double(s.frames), fill = m.map(\.fill).reduce(0, +) / Double(s.frames)
            let seen = bright > 0.95 ? 3 : fill > 0.92 ? 1 : fill > 0.7 ? 0 : 2
            XCTAssertEqual(seen, object[i], "clip \(i) bright \(bright) fill \(fill)")
        }
    }

    func testObjectScaleEnlargesTheObjectOnTheSamePaths() throws {
        // The same seed draws the same clips; only the radius changes, so on straight paths (which
        // keep the whole object in the frame) the object's area grows by the square of the scale and
        // it still moves in its labelled direction.
        let scale: Float = 1.5
        let small = SyntheticVideo.actions(count: 48, frames: 8, height: 32, width: 32, channels: 3, seed: 25, plainBackground: true)
        let large = SyntheticVideo.actions(count: 48, frames: 8, height: 32, width: 32, channels: 3, seed: 25, plainBackground: true,
                                           style: .init(objectScale: scale))
        XCTAssertEqual(small.labels, large.labels)
        var ratios: [Double] = []
        for i in 0..<small.count where small.labels["motion"]![i] < 4 {
            let a = ClipProbe(set: small, clip: i), b = ClipProbe(set: large, clip: i)
            let (first, last) = (b.objectMask(frame: 0), b.objectMask(frame: small.frames - 1))
            let moved = small.labels["motion"]![i] < 2 ? last.x - first.x : last.y - first.y
            XCTAssertGreaterThan(abs(moved), 0.3 * Double(small.width), "clip \(i) moved \(moved)")
            ratios.append((0..<small.frames).map { b.objectMask(frame: $0).area / a.objectMask(frame: $0).area }.reduce(0, +)
                          / Double(small.frames))
        }
        XCTAssertGreaterThan(ratios.count, 20)
        let mean = ratios.reduce(0, +) / Double(ratios.count)
        XCTAssertEqual(mean, Double(scale * scale), accuracy: 0.15, "area ratios \(ratios)")
        XCTAssertThrowsError(try SyntheticVideo.named("actions", count: 1, frames: 8, height: 32, width: 32, seed: 0, style: .init(objectScale: 0)))
    }

    func testDeadLeavesBackgroundsArePiecewiseFlatWithEdges() {
        // Occluding discs: most neighbouring pixels lie in one disc (differences at the noise level),
        // a tail crosses disc edges; the gratings background changes smoothly everywhere instead.
        func adjacentDifferences(_ s: VideoClipSet) -> [Float] {
            var out: [Float] = []
            let (h, w, c) = (s.height, s.width, s.channels)
            for i in 0..<s.count {
                for f in 0..<s.frames {
                    let base = (i * s.frames + f) * h * w * c
                    func lum(_ y: Int, _ x: Int) -> Float { (0..<c).reduce(0) { $0 + s.pixels[base + (y * w + x) * c + $1] } / Float(c) }
                    for y in 0..<h { for x in 1..<w { out.append(abs(lum(y, x) - lum(y, x - 1))) } }
                }
            }
            return out.sorted()
        }
        let leaves = SyntheticVideo.actions(count: 16, frames: 4, height: 32, width: 32, channels: 3, seed: 3,
                                            style: .init(texturedBackground: true, objectScale: 2, deadLeaves: true))
        let waves = SyntheticVideo.actions(count: 16, frames: 4, height: 32, width: 32, channels: 3, seed: 3,
                                           style: .init(texturedBackground: true, objectScale: 2))
        XCTAssertEqual(leaves.labels, waves.labels)
        let l = adjacentDifferences(leaves), g = adjacentDifferences(waves)
        XCTAssertLessThan(l[l.count / 2], 0.02, "median difference inside discs: noise only")
        XCTAssertGreaterThan(g[g.count / 2], 0.03, "median difference of the gratings background")
        XCTAssertGreaterThan(l[l.count * 95 / 100], 0.2, "disc edges")
    }

    func testDistractorsAreStaticAndOnlyTheLabelledObjectMoves() {
        // Same draws for the labelled object; the distractors sit still, so the pixels that change
        // between the first and last frame are (up to noise) the moving object's, as without them.
        let plain = SyntheticVideo.actions(count: 12, frames: 8, height: 32, width: 32, channels: 3, seed: 9, style: .init(objectScale: 2))
        let busy = SyntheticVideo.actions(count: 12, frames: 8, height: 32, width: 32, channels: 3, seed: 9,
                                          style: .init(objectScale: 2, distractors: 3))
        XCTAssertEqual(plain.labels, busy.labels)
        XCTAssertNotEqual(plain.pixels, busy.pixels)
        let frame = 32 * 32 * 3
        var differing = 0
        for i in 0..<plain.count {
            let first = i * 8 * frame, last = first + 7 * frame
            for p in 0..<frame {
                // Changed from the first to the last frame beyond noise (±0.02 per frame).
                let movedPlain = abs(plain.pixels[last + p] - plain.pixels[first + p]) > 0.1
                let movedBusy = abs(busy.pixels[last + p] - busy.pixels[first + p]) > 0.1
                // Where the object neither was nor is, the busy clip changes no more than the plain one.
                if movedBusy && !movedPlain { differing += 1 }
            }
        }
        // Pixels where the object now passes over a distractor instead of the background may differ
        // (an object colour close to the background's); anything else would be a moving distractor.
        XCTAssertLessThan(Double(differing) / Double(plain.count * frame), 0.03)
        XCTAssertThrowsError(try SyntheticVideo.named("actions", count: 1, frames: 8, height: 32, width: 32, seed: 0, style: .init(distractors: 9)))
    }

    // MARK: occlusion

    func testOcclusionKeepsExactlyOnePatch() {
        let s = SyntheticVideo.actions(count: 20, frames: 4, height: 32, width: 32, seed: 26)
        let patch = 8
        let o = SyntheticVideo.occludeAllButOnePatch(s, patch: patch, seed: 9)
        XCTAssertEqual(o.labels, s.labels)
        XCTAssertEqual(o.name, "actions-one-patch")
        XCTAssertEqual(o, SyntheticVideo.occludeAllButOnePatch(s, patch: patch, seed: 9))
        var kept: [Int] = []
        for i in 0..<s.count {
            var keptCells: [Int] = []
            for cell in 0..<16 {
                let (r0, c0) = ((cell / 4) * patch, (cell % 4) * patch)
                var same = true, grey = true
                for f in 0..<s.frames { for y in r0..<(r0 + patch) { for x in c0..<(c0 + patch) { for ch in 0..<3 {
                    let k = (((i * s.frames + f) * 32 + y) * 32 + x) * 3 + ch
                    same = same && o.pixels[k] == s.pixels[k]
                    grey = grey && o.pixels[k] == 0.5
                } } } }
                XCTAssertTrue(same || grey, "clip \(i) cell \(cell) is neither kept nor grey")
                if same && !grey { keptCells.append(cell) }
            }
            XCTAssertEqual(keptCells.count, 1, "clip \(i)")
            kept += keptCells
        }
        XCTAssertGreaterThan(Set(kept).count, 5, "the kept patch varies between clips: \(kept)")
        // A patch that does not divide the frame: only whole cells are kept (10×10 cells in 32 px: 3×3 grid).
        let odd = SyntheticVideo.occludeAllButOnePatch(s, patch: 10, seed: 9)
        for i in 0..<s.count {
            let changed = (0..<s.valuesPerClip).filter { odd.pixels[i * s.valuesPerClip + $0] != 0.5 }
            let ys = Set(changed.map { ($0 / (32 * 3)) % 32 }), xs = Set(changed.map { ($0 / 3) % 32 })
            XCTAssertLessThan(ys.max()!, 30)
            XCTAssertLessThan(xs.max()!, 30)
            XCTAssertEqual(ys.max()! - ys.min()!, 9)
            XCTAssertEqual(xs.max()! - xs.min()!, 9)
        }
    }

    // MARK: separability

    /// Orientation is linearly readable from phase-invariant energy features but not from one pixel.
    ///
    /// 200 test clips, 4 balanced classes: chance is 0.25 with binomial sd √(0.25·0.75/200) ≈ 0.031.
    /// Energy features (the structure tensor normalised by its trace: (1, 0, 0) at 0°, (0, 1, 0) at 90°,
    /// (½, ½, ∓½) at 45°/135°) should be nearly perfect: ≥ 0.9 is 21 sd above chance. A single pixel
    /// is 0.5 + A·sin(uniform random phase) whatever the orientation, so its class-conditional
    /// distributions are identical and nearest-class-mean on it has expected accuracy exactly 0.25;
    /// < 0.35 allows 3.2 sd.
    func testOrientationIsSeparableFromEnergyButNotFromOnePixel() {
        let s = SyntheticVideo.legacyGratings(count: 400, frames: 4, height: 24, width: 24, seed: 27)
        let labels = s.labels["orientation"]!
        let energy: [[Double]] = (0..<s.count).map { i in
            let j = ClipProbe(set: s, clip: i).structureTensor(columns: 0..<s.width)
            let total = j.xx + j.yy
            return [j.xx / total, j.yy / total, j.xy / total]
        }
        let onePixel = (0..<s.count).map { [ClipProbe(set: s, clip: $0).luminance(0, 12, 12)] }
        let energyAccuracy = nearestClassMeanAccuracy(energy, labels: labels, classes: 4, train: 0..<200, test: 200..<400)
        let pixelAccuracy = nearestClassMeanAccuracy(onePixel, labels: labels, classes: 4, train: 0..<200, test: 200..<400)
        XCTAssertGreaterThanOrEqual(energyAccuracy, 0.9)
        XCTAssertLessThan(pixelAccuracy, 0.35)
    }
}
