import ActivationStore
import Foundation

/// The activation files a report reads, found by recursing into directories, grouped by run,
/// probe set and step.
public struct ReportInputs: @unchecked Sendable {
    /// One (run, probe set, step): one file.
    public struct Group: @unchecked Sendable {
        public var run: String
        public var probeSet: String
        public var step: Int
        public var file: ActivationFile
    }

    public var groups: [Group]
    /// Files skipped, with the reason (e.g. HDF5 files that are not bwact/1, such as checkpoints).
    public var notes: [String]

    /// Suffix of the probe set that holds the occluded (one patch kept) version of a set's clips.
    public static let onePatchSuffix = "-onepatch"

    /// Collects `.h5` files from `paths` (files as given; directories recursively, sorted).
    ///
    /// - Throws: `ReportError` when a path does not exist, no activation file is found, two files
    ///   claim the same (run, probe set, step), or a bwact file cannot be read (naming it).
    public static func collect(_ paths: [String]) throws -> ReportInputs {
        var candidates: [String] = []
        let fm = FileManager.default
        for path in paths {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir) else { throw ReportError("\(path): no such file or directory") }
            if isDir.boolValue {
                guard let walker = fm.enumerator(atPath: path) else { throw ReportError("\(path): cannot list the directory") }
                var found: [String] = []
                while let rel = walker.nextObject() as? String {
                    if rel.hasSuffix(".h5") && !URL(fileURLWithPath: rel).lastPathComponent.hasPrefix(".") {
                        found.append((path as NSString).appendingPathComponent(rel))
                    }
                }
                candidates += found.sorted()
            } else {
                candidates.append(path)
            }
        }
        var seen = Set<String>()
        var groups: [Group] = []
        var notes: [String] = []
        // A shard index and its shards are one run: the shards behind an index given too are skipped.
        let shardsOf = shardIndexes(candidates)
        var keys: [String: String] = [:]
        for path in candidates {
            let canonical = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
            guard seen.insert(canonical).inserted else { continue }
            if let index = shardsOf[canonical] {
                notes.append("skipped \(path): a shard of \(index), read through that index")
                continue
            }
            let file: ActivationFile
            do {
                file = try ActivationFile(path: path)
            } catch let e as ActivationStoreError where e.kind == .notBwact || (e.kind == .schema && e.object == "/ attr format") {
                // HDF5 files of another kind (e.g. training checkpoints, format "bwckpt") are not activations.
                notes.append("skipped \(path): not a bwact activation file (\(e.message))")
                continue
            } catch let e as ActivationStoreError {
                throw ReportError("\(e)")
            } catch {
                throw ReportError("cannot read activation file \(path): \(error)")
            }
            let m = file.metadata
            let key = "\(m.run)\u{0}\(m.probeSet)\u{0}\(m.step)"
            if let other = keys[key] {
                throw ReportError("\(path) and \(other) both hold run '\(m.run)', probe set '\(m.probeSet)', step \(m.step); give one of them")
            }
            keys[key] = path
            groups.append(Group(run: m.run, probeSet: m.probeSet, step: m.step, file: file))
        }
        guard !groups.isEmpty else {
            throw ReportError("no bwact activation files found in \(paths.joined(separator: ", "))")
        }
        groups.sort { ($0.run, $0.probeSet, $0.step) < ($1.run, $1.probeSet, $1.step) }
        return ReportInputs(groups: groups, notes: notes)
    }

    /// The runs seen, with their regime, block ends, steps, probe sets (one-patch sets excluded) and config hashes.
    public var runs: [RunInfo] {
        var out: [String: RunInfo] = [:]
        for g in groups {
            let m = g.file.metadata
            var r = out[g.run] ?? RunInfo(run: g.run, regime: m.regime, blockEnds: m.blockEnds, steps: [], seed: m.seed)
            if !r.steps.contains(g.step) { r.steps.append(g.step) }
            if !g.probeSet.hasSuffix(Self.onePatchSuffix) && !r.probeSets.contains(g.probeSet) { r.probeSets.append(g.probeSet) }
            let h = Checksum.sha256(Array(m.config.utf8))
            if !r.configSHA256.contains(h) { r.configSHA256.append(h) }
            out[g.run] = r
        }
        return out.values.map { r in
            var r = r
            r.steps.sort()
            r.probeSets.sort()
            return r
        }.sorted { $0.run < $1.run }
    }
}
