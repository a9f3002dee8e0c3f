import Foundation

extension ActivationPaths {
    /// Optional clip identities: int64 [N] or strings [N], unique within a file.
    public static let clipIDs = "/clip_ids"
}

extension ActivationFile {
    /// True when the file has `/clip_ids`.
    public var hasClipIDs: Bool { file.isDataset(ActivationPaths.clipIDs) }

    /// The clip ids in the file's (logical) clip order, as text (int64 ids in decimal), or nil when
    /// the file has none.
    ///
    /// - Throws: when `/clip_ids` is not int64 or strings, has the wrong shape, or repeats an id.
    public func clipIDs() throws -> [String]? {
        guard hasClipIDs else { return nil }
        let object = ActivationPaths.clipIDs
        let info = try file.datasetInfo(object)
        guard info.shape == [clipCount] else {
            throw ActivationStoreError(.schema, file: path, object: object, "shape \(info.shape); expected [\(clipCount)] (one id per clip)")
        }
        let stored: [String]
        if try file.isStringDataset(object) {
            stored = try file.readStrings(object)
        } else if info.type.typeClass == .integer {
            stored = try file.read(object, as: Int64.self).map { String($0) }
        } else {
            throw ActivationStoreError(.schema, file: path, object: object, "is \(info.type.readable); clip ids are int64 or strings")
        }
        var seen = Set<String>()
        for id in stored where !seen.insert(id).inserted {
            throw ActivationStoreError(.schema, file: path, object: object, "clip id '\(id)' occurs more than once; ids are unique within a file")
        }
        return clipOrder.map { $0.map { stored[$0] } } ?? stored
    }

    /// The same file seen in another clip order: logical clip i is stored clip `order[i]`.
    /// Tokens and labels follow the order; attention (stored for the first clips only) is refused.
    public func reordered(_ order: [Int]) throws -> ActivationFile {
        guard order.count == clipCount, Set(order).count == clipCount, order.allSatisfy({ (0..<clipCount).contains($0) }) else {
            throw ActivationStoreError(.invalidArgument, file: path, "a clip order must be a permutation of 0..<\(clipCount)")
        }
        let f = try ActivationFile(path: path)
        f.clipOrder = clipOrder.map { base in order.map { base[$0] } } ?? order
        return f
    }

    /// Reads whole clips `rows` (in that order) of a [N, T, D] dataset: the rows are sorted, read in
    /// one HDF5 read of their contiguous runs, then put in the requested order.
    func readRows<S: HDF5MemoryScalar & Numeric>(_ object: String, rows: [Int], as: S.Type) throws -> [S] {
        let perClip = tokenCount * featureCount
        let sorted = rows.enumerated().sorted { $0.element < $1.element }
        var runs: [Range<Int>] = []
        for (_, row) in sorted {
            if let last = runs.last, last.upperBound == row { runs[runs.count - 1] = last.lowerBound..<(row + 1) } else { runs.append(row..<(row + 1)) }
        }
        let values = try file.read(object, as: S.self, rowRuns: runs)
        var out = [S](repeating: 0, count: rows.count * perClip)
        out.withUnsafeMutableBufferPointer { o in
            values.withUnsafeBufferPointer { v in
                for (k, entry) in sorted.enumerated() {
                    let dst = entry.offset * perClip, src = k * perClip
                    for e in 0..<perClip { o[dst + e] = v[src + e] }
                }
            }
        }
        return out
    }
}

/// The files behind virtual datasets (a shard index): HDF5 reads a missing source as fill values,
/// so a missing source is an error here.
public enum VirtualSources {
    /// Datasets whose sources are checked: every layer's tokens and attention, labels and clip ids.
    static func datasets(in file: HDF5File) -> [String] {
        var out: [String] = []
        for name in (file.childNames(of: "/layers") ?? []).sorted() {
            for leaf in ["tokens", "attention"] where file.isDataset("/layers/\(name)/\(leaf)") { out.append("/layers/\(name)/\(leaf)") }
        }
        for t in (file.childNames(of: "/labels") ?? []).sorted() where file.isDataset("/labels/\(t)") { out.append("/labels/\(t)") }
        if file.isDataset(ActivationPaths.clipIDs) { out.append(ActivationPaths.clipIDs) }
        return out
    }

    /// A stored source name resolved as HDF5 does for a file at `path`: absolute names as they are,
    /// relative names against the folder of the file holding the virtual dataset.
    static func resolve(_ name: String, from path: String) -> String {
        if name.hasPrefix("/") { return name }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        return folder.appendingPathComponent(name).standardizedFileURL.path
    }

    /// (dataset, stored source name, resolved path) for every virtual mapping to another file.
    ///
    /// - Throws: `.schema` naming the dataset when a mapping's source is the file itself (`.` or its own
    ///   path): bwact indexes map only to shard files, and libhdf5 1.10 reading a dataset mapped onto
    ///   itself recurses until the stack overflows.
    static func sources(of file: HDF5File, path: String) throws -> [(dataset: String, name: String, path: String)] {
        var out: [(String, String, String)] = []
        let own = URL(fileURLWithPath: path).standardizedFileURL.path
        for ds in datasets(in: file) {
            for name in try file.virtualSourceNames(ds) ?? [] {
                if name == "." || resolve(name, from: path) == own {
                    throw ActivationStoreError(.schema, file: path, object: ds,
                                               "virtual dataset maps into its own file ('\(name)'); bwact indexes map only to shard files")
                }
                out.append((ds, name, resolve(name, from: path)))
            }
        }
        return out
    }

    /// Throws, naming the dataset and the source, when a virtual dataset's source file is missing.
    static func requireSources(of file: HDF5File, path: String) throws {
        for s in try sources(of: file, path: path) where !FileManager.default.fileExists(atPath: s.path) {
            throw ActivationStoreError(.schema, file: path, object: s.dataset,
                                       "virtual dataset source '\(s.name)' is missing (HDF5 would read it as fill values)")
        }
    }

    /// The distinct files behind the virtual datasets of the file at `path` (resolved paths, in
    /// the order first met), or an empty list when it has none or cannot be read.
    public static func files(behind path: String) -> [String] {
        guard let file = try? HDF5File.openReadOnly(path: path, displayName: path),
              let found = try? sources(of: file, path: path) else { return [] }
        var out: [String] = []
        for s in found where !out.contains(s.path) { out.append(s.path) }
        return out
    }

    /// Violations of the sources of the file at `path`: a missing source, and every violation of a
    /// source that is itself a bwact file (prefixed with its name).
    static func violations(of file: HDF5File, path: String) -> [SchemaViolation] {
        let found: [(dataset: String, name: String, path: String)]
        do { found = try sources(of: file, path: path) } catch let e as ActivationStoreError {
            return [SchemaViolation(e.object ?? "/", e.message)]
        } catch { return [SchemaViolation("/", "\(error)")] }
        var out: [SchemaViolation] = []
        var checked = Set<String>()
        for s in found where checked.insert(s.path).inserted {
            guard FileManager.default.fileExists(atPath: s.path) else {
                out.append(SchemaViolation(s.dataset, "virtual dataset source '\(s.name)' is missing (HDF5 would read it as fill values)"))
                continue
            }
            if s.path == URL(fileURLWithPath: path).standardizedFileURL.path { continue }
            // A shard is a bwact file of its own: check it whole. Its values are scanned through the index.
            guard let source = try? ActivationFile.openHDF5(s.path) else {
                out.append(SchemaViolation(s.dataset, "virtual dataset source '\(s.name)' cannot be opened as HDF5"))
                continue
            }
            guard source.attributeExists("format") else { continue }
            let report = ActivationValidator.validate(path: s.path, scanValues: false)
            out += report.violations.map {
                SchemaViolation("\(s.name): \($0.object)", $0.message, blocksReading: $0.blocksReading)
            }
            if report.isValid, let m = SchemaInspection(file).metadata, let shard = SchemaInspection(source).metadata {
                out += disagreements(index: m, shard: shard).map { SchemaViolation("\(s.name): / attr \($0.0)", $0.1) }
            }
        }
        return out
    }
}

extension VirtualSources {
    /// The root attributes in which a shard differs from its index, as (attribute, message).
    static func disagreements(index m: ActivationMetadata, shard s: ActivationMetadata) -> [(String, String)] {
        var out: [(String, String)] = []
        func check<T: Equatable>(_ name: String, _ a: T, _ b: T) {
            if a != b { out.append((name, "is \(b) in this shard but \(a) in the index; the shards of a run must agree")) }
        }
        check("run", m.run, s.run)
        check("regime", m.regime, s.regime)
        check("block_ends", m.blockEnds, s.blockEnds)
        check("probe_set", m.probeSet, s.probeSet)
        check("step", m.step, s.step)
        check("seed", m.seed, s.seed)
        check("config", m.config, s.config)
        return out
    }
}

extension ActivationValidator {
    /// Violations of the additions to bwact/1 that live outside the structural pass: `/clip_ids`
    /// (int64 or strings, [N], unique) and the files behind virtual datasets.
    static func additionViolations(_ file: HDF5File, path: String, structureOK: Bool) -> [SchemaViolation] {
        var out = VirtualSources.violations(of: file, path: path)
        if structureOK, out.isEmpty, file.isDataset(ActivationPaths.clipIDs) {
            do {
                _ = try ActivationFile(path: path).clipIDs()
            } catch let e as ActivationStoreError {
                out.append(SchemaViolation(e.object ?? ActivationPaths.clipIDs, e.message))
            } catch {
                out.append(SchemaViolation(ActivationPaths.clipIDs, "\(error)"))
            }
        }
        return out
    }
}
