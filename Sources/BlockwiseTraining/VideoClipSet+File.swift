import ActivationStore

extension VideoClipSet {
    /// Reads a whole clip file (`/clips` uint8 [N, F, H, W, C], `/labels/<target>` int64 [N]; see
    /// `ClipFile`) into memory.
    ///
    /// Pixels become byte / 255. Each target's class count is its largest label + 1 (0 for an
    /// empty file).
    ///
    /// - Parameters:
    ///   - path: The HDF5 file.
    ///   - name: The probe-set name to record (e.g. `"ucf101-subset"`).
    /// - Throws: `ActivationStoreError` naming the file and dataset when the file does not fit the layout.
    /// - Complexity: O(N·F·H·W·C) time and 4 bytes per pixel of memory.
    public static func load(path: String, name: String) throws -> VideoClipSet {
        let file = try ClipFile(path: path)
        var labels: [String: [Int]] = [:]
        var classCounts: [String: Int] = [:]
        for target in file.targets {
            let values = try file.labels(target)
            labels[target] = values
            classCounts[target] = (values.max() ?? -1) + 1
        }
        return VideoClipSet(name: name, count: file.count, frames: file.frames, height: file.height, width: file.width,
                            channels: file.channels, pixels: try file.pixels(clips: 0..<file.count),
                            labels: labels, classCounts: classCounts)
    }
}
