import Foundation

/// A training checkpoint: named float32 arrays, int64 arrays and strings in one HDF5 file, written
/// atomically (temporary file beside the destination, renamed on success).
///
/// Layout: root attribute `format` = "bwckpt", `format_version` = 1; `/arrays/<name>` float32 [n];
/// `/ints/<name>` int64 [n]; string attributes on the root named `s_<name>`.
public struct CheckpointFile: Sendable {
    public var arrays: [String: [Float]] = [:]
    public var ints: [String: [Int]] = [:]
    public var strings: [String: String] = [:]

    public init() {}

    public func write(to path: String) throws {
        let temp = try AtomicFile.temporaryPath(for: path)
        do {
            let f = try HDF5File.create(path: temp, displayName: path)
            try f.writeStringAttribute("format", "bwckpt")
            try f.writeIntAttribute("format_version", [1], scalar: true)
            for (k, v) in strings.sorted(by: { $0.key < $1.key }) { try f.writeStringAttribute("s_\(k)", v) }
            for (k, v) in arrays.sorted(by: { $0.key < $1.key }) {
                try f.createDataset("/arrays/\(k)", shape: [v.count], type: .float32, chunk: v.isEmpty ? nil : [min(v.count, 1 << 18)])
                if !v.isEmpty { try f.write("/arrays/\(k)", v) }
            }
            for (k, v) in ints.sorted(by: { $0.key < $1.key }) {
                try f.createDataset("/ints/\(k)", shape: [v.count], type: .int64)
                if !v.isEmpty { try f.write("/ints/\(k)", v.map { Int64($0) }) }
            }
            try f.close()
            try AtomicFile.commit(temp, to: path)
        } catch {
            unlink(temp)
            throw error
        }
    }

    public static func read(from path: String) throws -> CheckpointFile {
        let f = try ActivationFile.openHDF5(path)
        guard f.attributeExists("format"), (try? f.readStringAttribute("format")) == "bwckpt" else {
            throw ActivationStoreError(.notBwact, file: path, "not a bwssl checkpoint (root attribute format != \"bwckpt\")")
        }
        var c = CheckpointFile()
        for name in f.childNames(of: "/arrays") ?? [] { c.arrays[name] = try f.read("/arrays/\(name)", as: Float.self) }
        for name in f.childNames(of: "/ints") ?? [] { c.ints[name] = try f.read("/ints/\(name)", as: Int64.self).map { Int($0) } }
        for name in f.attributeNames() where name.hasPrefix("s_") {
            c.strings[String(name.dropFirst(2))] = try f.readStringAttribute(name)
        }
        return c
    }
}
