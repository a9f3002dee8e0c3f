@testable import BlockwiseTraining
import Foundation
import XCTest

/// The grating probe sets against the authors' grids, written out here from their generator's
/// configurations (`DEFAULT`, `DEFAULT_TWO_REGION`) rather than read from `GratingGrid`.
final class GratingGridTests: XCTestCase {
    let singleSF: [Double] = [4, 8, 12, 16, 20, 24]
    let singleTF: [Double] = [0.5, 1, 2, 4, 6, 8]
    let singleContrast: [Double] = [0.2, 0.4, 0.6, 0.8, 1.0]
    let singleColour: [[Double]] = [[1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0.5, 0]]
    let doubleSF: [Double] = [4, 10, 16]
    let doubleTF: [Double] = [2, 5, 8]
    let doubleContrast: [Double] = [0.33, 0.67, 1.0]
    let doubleColour: [[Double]] = [[1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    let deltas: [Double] = [0, 45, 90, 135]

    /// The authors' grating at pixel (x, y) of frame t, on our clips: their frequency halved, mapped to [0, 1].
    func pixel(x: Int, y: Int, t: Int, w: Int, h: Int, sf: Double, deg: Double, tf: Double, contrast: Double, gain: Double) -> Double {
        let xs = -1 + 2 * Double(x) / Double(w - 1), ys = -1 + 2 * Double(y) / Double(h - 1)
        let th = deg * .pi / 180
        let v = contrast * sin(.pi * (sf / 2) * (xs * cos(th) + ys * sin(th)) + 2 * .pi * tf * Double(t) / 6.25)
        return min(1, max(0, 0.5 + 0.5 * v * gain))
    }

    /// Largest difference between clip i and a grating with the given halves' parameters.
    func distance(_ s: VideoClipSet, _ i: Int, halves: [(sf: Double, deg: Double)], tf: Double, contrast: Double, rgb: [Double]) -> Double {
        var worst = 0.0
        let clip = s.clip(i)
        for t in 0..<s.frames {
            for y in 0..<s.height {
                for x in 0..<s.width {
                    let half = halves.count == 1 || x < s.width / 2 ? halves[0] : halves[1]
                    for ch in 0..<s.channels {
                        let expected = pixel(x: x, y: y, t: t, w: s.width, h: s.height, sf: half.sf, deg: half.deg, tf: tf,
                                             contrast: contrast, gain: rgb[ch % 3])
                        worst = max(worst, abs(Double(clip[clip.startIndex + ((t * s.height + y) * s.width + x) * s.channels + ch]) - expected))
                    }
                }
            }
        }
        return worst
    }

    func assertNearlyBalanced(_ s: VideoClipSet, _ target: String, expectedShares: [Double], slack: Double, file: StaticString = #filePath, line: UInt = #line) {
        let labels = s.labels[target]!
        XCTAssertEqual(s.classCounts[target], expectedShares.count, target, file: file, line: line)
        for (c, share) in expectedShares.enumerated() {
            let n = Double(labels.filter { $0 == c }.count)
            XCTAssertLessThanOrEqual(abs(n - share * Double(s.count)), slack, "\(target) class \(c): \(n) of \(s.count)", file: file, line: line)
        }
    }

    func testSingleGratingsLieOnTheGridWithTheirLabels() {
        let s = SyntheticVideo.gratings(count: 40, frames: 3, height: 32, width: 32, seed: 11)
        XCTAssertEqual(s.name, "gratings")
        XCTAssertEqual(s.classCounts, ["spatial_freq": 6, "orientation_deg": 12, "temporal_freq": 6, "contrast": 5, "color": 5])
        for i in 0..<s.count {
            let l = { (t: String) in s.labels[t]![i] }
            let d = distance(s, i, halves: [(singleSF[l("spatial_freq")], Double(30 * l("orientation_deg")))],
                             tf: singleTF[l("temporal_freq")], contrast: singleContrast[l("contrast")], rgb: singleColour[l("color")])
            XCTAssertLessThan(d, 1e-5, "clip \(i) is not the grating its labels name")
        }
    }

    func testDoubleGratingsLieOnTheGridAndTargetsFollowTheAuthorsRules() {
        let s = SyntheticVideo.doubleGratings(count: 40, frames: 3, height: 32, width: 32, seed: 12)
        XCTAssertEqual(s.name, "double-gratings")
        XCTAssertEqual(s.classCounts, ["spatial_freq_left": 3, "spatial_freq_right": 3, "sf_delta": 5, "sf_higher_side": 3,
                                       "spatial_freq_match": 2, "orientation_deg_left": 12, "orientation_deg_right": 24,
                                       "orientation_delta": 4, "orientation_match": 2])
        for i in 0..<s.count {
            let l = { (t: String) in s.labels[t]![i] }
            let (sfL, sfR) = (doubleSF[l("spatial_freq_left")], doubleSF[l("spatial_freq_right")])
            let left = Double(30 * l("orientation_deg_left")), delta = deltas[l("orientation_delta")]
            let right = (left + delta).truncatingRemainder(dividingBy: 360)
            // The shared parameters are not targets: exactly one (tf, contrast, colour) of the grid renders the clip.
            var matches = 0
            for tf in doubleTF {
                for c in doubleContrast {
                    for rgb in doubleColour where distance(s, i, halves: [(sfL, left), (sfR, right)], tf: tf, contrast: c, rgb: rgb) < 1e-5 {
                        matches += 1
                    }
                }
            }
            XCTAssertEqual(matches, 1, "clip \(i)")
            // The targets, derived as in the authors' generator.
            XCTAssertEqual(l("orientation_deg_right"), Int(right / 15), "clip \(i)")
            XCTAssertEqual(l("sf_delta"), [-12.0, -6, 0, 6, 12].firstIndex(of: sfR - sfL)!, "clip \(i)")
            XCTAssertEqual(l("sf_higher_side"), sfL > sfR ? 0 : sfR > sfL ? 1 : 2, "clip \(i)")
            XCTAssertEqual(l("spatial_freq_match"), sfL == sfR ? 1 : 0, "clip \(i)")
            XCTAssertEqual(l("orientation_match"), delta == 0 ? 1 : 0, "clip \(i)")
        }
        // Known answers of the derivation: 330° + 45° wraps to 15°, class 1 of the 24 right orientations.
        XCTAssertEqual(GratingGrid.doubleLabels(sfLeft: 4, sfRight: 16, left: 330, delta: 45),
                       ["spatial_freq_left": 0, "spatial_freq_right": 2, "sf_delta": 4, "sf_higher_side": 1, "spatial_freq_match": 0,
                        "orientation_deg_left": 11, "orientation_deg_right": 1, "orientation_delta": 1, "orientation_match": 0])
        XCTAssertEqual(GratingGrid.rightOrientations, (0..<24).map { Float($0 * 15) })
    }

    func testClassesAreAsBalancedAsTheGridAllowsAndNoPointRepeats() {
        let n = 1000
        let s = SyntheticVideo.gratings(count: n, frames: 1, height: 8, width: 8, seed: 3)
        for (t, k) in s.classCounts { assertNearlyBalanced(s, t, expectedShares: Array(repeating: 1 / Double(k), count: k), slack: 1) }
        let singlePoints = (0..<n).map { i in ["spatial_freq", "orientation_deg", "temporal_freq", "contrast", "color"].map { s.labels[$0]![i] } }
        XCTAssertEqual(Set(singlePoints).count, n, "no grid point drawn twice")

        // Two frames of 32 px, so that every shared parameter (the temporal frequency too) shows in the pixels.
        let d = SyntheticVideo.doubleGratings(count: n, frames: 2, height: 32, width: 32, seed: 3)
        // Shares over the product grid: (sf_left, sf_right) 9 points, (left, delta) 48 points.
        let third = 1.0 / 3
        for t in ["spatial_freq_left", "spatial_freq_right", "sf_higher_side"] {
            assertNearlyBalanced(d, t, expectedShares: [third, third, third], slack: 3)
        }
        assertNearlyBalanced(d, "sf_delta", expectedShares: [1, 2, 3, 2, 1].map { $0 / 9.0 }, slack: 3)
        assertNearlyBalanced(d, "spatial_freq_match", expectedShares: [2 / 3.0, third], slack: 3)
        assertNearlyBalanced(d, "orientation_deg_left", expectedShares: Array(repeating: 1 / 12.0, count: 12), slack: 4)
        assertNearlyBalanced(d, "orientation_deg_right", expectedShares: Array(repeating: 1 / 24.0, count: 24), slack: 2)
        assertNearlyBalanced(d, "orientation_delta", expectedShares: Array(repeating: 0.25, count: 4), slack: 12)
        assertNearlyBalanced(d, "orientation_match", expectedShares: [0.75, 0.25], slack: 12)
        // The clips differ beyond the targets (shared tf, contrast, colour), so compare pixels for repeats.
        let clips = Set((0..<n).map { Array(d.clip($0)) })
        XCTAssertEqual(clips.count, n, "no grid point drawn twice")
    }

    func testDeterministicAndSeedDependent() {
        for make in [SyntheticVideo.gratings, SyntheticVideo.doubleGratings] {
            let a = make(50, 2, 16, 16, 3, 7), b = make(50, 2, 16, 16, 3, 7), c = make(50, 2, 16, 16, 3, 8)
            XCTAssertEqual(a, b)
            XCTAssertNotEqual(a.labels, c.labels)
        }
        // One channel: no colour target, gray gratings.
        XCTAssertNil(SyntheticVideo.gratings(count: 5, channels: 1, seed: 1).labels["color"])
        // More clips than grid points: every point used, none more than twice.
        let many = SyntheticVideo.balancedGridPoints(count: 30, classCounts: [3, 5], seed: 9)
        let uses = Dictionary(grouping: many, by: { $0 }).mapValues(\.count)
        XCTAssertEqual(uses.count, 15)
        XCTAssertEqual(Set(uses.values), [2])
    }
}
