/// A set of video clips with integer targets: the trainer's input and a probe set.
///
/// N clips of F frames, H×W pixels, C channels; `pixels` is row-major [N, F, H, W, C] with values
/// in [0, 1]. `labels[target]` holds one class index in `0..<classCounts[target]` per clip.
public struct VideoClipSet: Sendable, Equatable {
    /// Probe-set name, e.g. `"gratings"`; recorded as the activation file's `probe_set`.
    public var name: String
    public var count: Int
    public var frames: Int
    public var height: Int
    public var width: Int
    public var channels: Int
    /// Row-major [count, frames, height, width, channels], values in [0, 1].
    public var pixels: [Float]
    /// One array of class indices per target, each of length `count`.
    public var labels: [String: [Int]]
    /// The number of classes of each target (class indices run 0..<classCounts[target]).
    public var classCounts: [String: Int]

    public init(name: String, count: Int, frames: Int, height: Int, width: Int, channels: Int,
                pixels: [Float], labels: [String: [Int]], classCounts: [String: Int]) {
        self.name = name
        self.count = count
        self.frames = frames
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
        self.labels = labels
        self.classCounts = classCounts
    }

    /// F·H·W·C: the number of values in one clip.
    public var valuesPerClip: Int { frames * height * width * channels }

    /// The target names, sorted.
    public var targets: [String] { labels.keys.sorted() }

    /// The pixels of clip `i` (0 ≤ i < count), [F, H, W, C] row-major; indices stay those of `pixels`.
    ///
    /// - Complexity: O(1) (a slice, no copy).
    public func clip(_ i: Int) -> ArraySlice<Float> {
        let n = valuesPerClip
        return pixels[(i * n)..<((i + 1) * n)]
    }

    /// The clips at `indices` (each in 0..<count, repeats allowed), in that order, with their labels.
    ///
    /// - Complexity: O(indices.count · F·H·W·C).
    public func subset(_ indices: [Int]) -> VideoClipSet {
        let n = valuesPerClip
        var out = [Float]()
        out.reserveCapacity(indices.count * n)
        for i in indices { out.append(contentsOf: clip(i)) }
        var picked: [String: [Int]] = [:]
        for (target, values) in labels { picked[target] = indices.map { values[$0] } }
        return VideoClipSet(name: name, count: indices.count, frames: frames, height: height, width: width,
                            channels: channels, pixels: out, labels: picked, classCounts: classCounts)
    }
}
