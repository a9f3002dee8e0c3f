import CHDF5
import Foundation

/// A file of users' video clips (HDF5), read in clip ranges.
///
/// Layout, as h5py writes it from numpy arrays:
///
/// | path | type, shape | meaning |
/// | --- | --- | --- |
/// | `/clips` | uint8 [N, F, H, W, C] | pixels 0…255, read as value / 255 |
/// | `/labels/<target>` | int64 [N] (any integer type) | class index ≥ 0 per clip, one dataset per target; optional |
///
/// Only uint8 pixels are accepted (not floats, not signed bytes): it is the compact, unambiguous
/// form of 8-bit video; convert floats in [0, 1] with `(x * 255).round().astype(np.uint8)`.
/// Opening checks the layout and all labels and refuses a file that does not fit, with an
/// `ActivationStoreError` naming the file and the dataset.
public struct ClipFile: Sendable {
    /// The path as given (used in every error message).
    public let path: String
    /// N, F, H, W, C.
    public let count, frames, height, width, channels: Int
    /// Names of the label datasets, sorted.
    public let targets: [String]

    private let file: HDF5File
    private let labelValues: [String: [Int]]
    /// Largest class index + 1 a label may hold (10⁶ classes).
    public static let maxClassIndex = 1_000_000

    static let clipsPath = "/clips"
    static let labelsPath = "/labels"

    /// Opens a clip file and checks its layout.
    ///
    /// - Throws: `ActivationStoreError` naming the file (and dataset) when the file is missing, a
    ///   directory, not HDF5, has no `/clips`, `/clips` is not uint8 of rank 5 with non-empty frames,
    ///   or a label dataset is not an integer vector of length N with values ≥ 0.
    public init(path: String) throws {
        let file = try ActivationFile.openHDF5(path)
        let clips = ClipFile.clipsPath
        let expected = "a clip file holds /clips uint8 [N, F, H, W, C]"
        guard file.isDataset(clips) else {
            throw ActivationStoreError(.schema, file: path, object: clips,
                                       (file.exists(clips) ? "is not a dataset; " : "missing; ") + expected)
        }
        let info = try file.datasetInfo(clips)
        let isUnsigned = try file.isUnsignedInteger(clips)
        guard info.type.typeClass == .integer, info.type.bytes == 1, isUnsigned else {
            let found = info.type.typeClass == .integer ? "\(isUnsigned ? "u" : "")int\(info.type.bytes * 8)" : info.type.readable
            throw ActivationStoreError(.schema, file: path, object: clips,
                                       "expected uint8 pixels 0…255, found \(found); only uint8 is accepted (floats in [0, 1]: (x * 255).round().astype(np.uint8))")
        }
        guard info.shape.count == 5 else {
            throw ActivationStoreError(.schema, file: path, object: clips,
                                       "expected rank 5 [N, F, H, W, C], found shape \(info.shape)")
        }
        guard info.shape.dropFirst().allSatisfy({ $0 > 0 }) else {
            throw ActivationStoreError(.schema, file: path, object: clips,
                                       "frames, height, width and channels must be ≥ 1, found shape \(info.shape)")
        }
        let n = info.shape[0]

        var labels: [String: [Int]] = [:]
        if file.exists(ClipFile.labelsPath) {
            guard let names = file.childNames(of: ClipFile.labelsPath) else {
                throw ActivationStoreError(.schema, file: path, object: ClipFile.labelsPath,
                                           "is not a group; labels are datasets /labels/<target> int64 [N]")
            }
            for name in names {
                let object = ClipFile.labelsPath + "/" + name
                guard file.isDataset(object) else {
                    throw ActivationStoreError(.schema, file: path, object: object, "is not a dataset; expected int64 [\(n)]")
                }
                let l = try file.datasetInfo(object)
                guard l.type.typeClass == .integer else {
                    throw ActivationStoreError(.schema, file: path, object: object,
                                               "expected int64 class indices, found \(l.type.readable)")
                }
                guard l.shape == [n] else {
                    throw ActivationStoreError(.schema, file: path, object: object,
                                               "expected one label per clip, shape [\(n)], found shape \(l.shape)")
                }
                let values = try file.read(object, as: Int64.self).map { Int($0) }
                if let i = values.firstIndex(where: { $0 < 0 }) {
                    throw ActivationStoreError(.schema, file: path, object: object,
                                               "negative class index \(values[i]) at clip \(i); class indices must be ≥ 0")
                }
                // The class count is the largest index + 1: an index near Int.max would overflow it, and no
                // training set has more classes than clips by this margin.
                if let i = values.firstIndex(where: { $0 >= ClipFile.maxClassIndex }) {
                    throw ActivationStoreError(.schema, file: path, object: object,
                                               "class index \(values[i]) at clip \(i) is too large; class indices must be below \(ClipFile.maxClassIndex)")
                }
                labels[name] = values
            }
        }
        self.path = path
        self.file = file
        (count, frames, height, width, channels) = (n, info.shape[1], info.shape[2], info.shape[3], info.shape[4])
        targets = labels.keys.sorted()
        labelValues = labels
    }

    /// Pixels of clips `clips`, row-major [clips.count, F, H, W, C], each stored byte / 255.
    ///
    /// - Throws: `ActivationStoreError` (`.invalidArgument`) for clips outside 0..<count, or a read failure.
    /// - Complexity: O(clips.count · F·H·W·C); reads only that hyperslab.
    public func pixels(clips: Range<Int>) throws -> [Float] {
        guard clips.lowerBound >= 0, clips.upperBound <= count else {
            throw ActivationStoreError(.invalidArgument, file: path, object: ClipFile.clipsPath,
                                       "clips \(clips.lowerBound)..<\(clips.upperBound) outside 0..<\(count)")
        }
        let bytes = try file.read(ClipFile.clipsPath, as: UInt8.self, start: [clips.lowerBound, 0, 0, 0, 0],
                                  count: [clips.count, frames, height, width, channels])
        return bytes.map { Float($0) / 255 }
    }

    /// Class indices of one target, one per clip.
    ///
    /// - Throws: `ActivationStoreError` (`.invalidArgument`) for an unknown target, listing the known ones.
    public func labels(_ target: String) throws -> [Int] {
        guard let values = labelValues[target] else {
            let known = targets.isEmpty ? "the file has no labels" : "known targets: \(targets.joined(separator: ", "))"
            throw ActivationStoreError(.invalidArgument, file: path, object: ClipFile.labelsPath + "/" + target,
                                       "no such target; \(known)")
        }
        return values
    }
}

extension HDF5File {
    /// True when dataset `path` stores an unsigned integer type (HDF5 records the sign in the type).
    func isUnsignedInteger(_ path: String) throws -> Bool {
        try HDF5Library.sync {
            let id = H5Dopen2(fileID, path, bw_H5P_DEFAULT())
            guard id >= 0 else { throw error(.io, path, "cannot open dataset") }
            let dataset = H5Handle(id, .dataset)
            let type = H5Handle(H5Dget_type(dataset.id), .datatype)
            return H5Tget_class(type.id) == H5T_INTEGER && H5Tget_sign(type.id) == H5T_SGN_NONE
        }
    }
}
