import Foundation

/// What a structural pass over a file found: its layout and every departure from bwact/1.
struct SchemaInspection {
    var metadata: ActivationMetadata?
    var layerCount = 0
    var clips = 0, tokens = 0, features = 0
    var tokenTypes: [ElementType] = []
    var chunkClips: Int? = nil
    var attention: [Int: AttentionShape] = [:]
    var targets: [String] = []
    var hasPositions = false
    var trainingSteps: Int? = nil
    var violations: [SchemaViolation] = []
    private var blockEnds: [Int]? = nil

    var blockingViolations: [SchemaViolation] { violations.filter(\.blocksReading) }

    /// Checks everything that can be checked without reading token values.
    init(_ f: HDF5File) {
        if let damage = f.attributeLookupError("format") {
            flag("/", "damaged HDF5 file: the root group cannot be read (\(damage))")
            return
        }
        guard f.attributeExists("format") else {
            flag("/", "not a bwact activation file (no root attribute 'format'); see docs/activation-format.md")
            return
        }
        readMetadata(f)
        readLayers(f)
        readPositions(f)
        readLabels(f)
        readTraining(f)
    }

    /// Largest ratio of declared to stored bytes accepted for compressed data (deflate peaks near 1032:1).
    static let maxCompressionRatio = 1100

    /// Info of a dataset whose declared shape is backed by stored bytes and whose filters this build has;
    /// nil (with the problem flagged) otherwise. No reader sizes an allocation by a shape that fails this.
    private mutating func storedInfo(_ f: HDF5File, _ path: String, blocking: Bool = true) -> HDF5File.DatasetInfo? {
        let info: HDF5File.DatasetInfo
        do { info = try f.datasetInfo(path) } catch let e as ActivationStoreError {
            flag(path, e.message, blocking: blocking)
            return nil
        } catch { flag(path, "\(error)", blocking: blocking); return nil }
        if let missing = info.filters.first(where: { !$0.available }) {
            let name = missing.name.isEmpty ? "" : "the '\(Self.printable(missing.name))' filter "
            flag(path, "is compressed with \(name)(HDF5 filter \(missing.id)), which this HDF5 build does not have; rewrite it with gzip or without compression",
                 blocking: blocking)
            return nil
        }
        guard info.type.bytes > 0, let elements = HDF5File.product(info.shape),
              let declared = HDF5File.product([elements, info.type.bytes]) else {
            flag(path, "declares shape \(info.shape), too large to address", blocking: blocking)
            return nil
        }
        if declared == 0 { return info }
        let fileSize = f.fileSize()
        switch info.layout {
        case .contiguous, .compact:
            if info.storageBytes < declared {
                flag(path, "declares shape \(info.shape) (\(declared) bytes) but stores \(info.storageBytes) bytes", blocking: blocking)
                return nil
            }
            if let offset = info.offset, offset > UInt64(fileSize) || UInt64(declared) > UInt64(fileSize) - offset {
                flag(path, "its data lies beyond the end of the file (\(fileSize) bytes): the file is truncated", blocking: blocking)
                return nil
            }
        case .chunked:
            guard let chunk = info.chunk, chunk.count == info.shape.count, chunk.allSatisfy({ $0 > 0 }),
                  let expected = HDF5File.product(zip(info.shape, chunk).map { ($0 + $1 - 1) / $1 }) else {
                flag(path, "has an invalid chunk shape \(info.chunk ?? []) for shape \(info.shape)", blocking: blocking)
                return nil
            }
            if let stored = info.storedChunks, stored < expected {
                flag(path, "declares shape \(info.shape) but stores \(stored) of its \(expected) chunks; every chunk must be written", blocking: blocking)
                return nil
            }
            let backed = info.filters.isEmpty ? info.storageBytes >= declared
                : declared / Self.maxCompressionRatio <= info.storageBytes
            if !backed {
                flag(path, "declares shape \(info.shape) (\(declared) bytes) but stores only \(info.storageBytes) bytes", blocking: blocking)
                return nil
            }
            if info.storageBytes > fileSize {
                flag(path, "stores \(info.storageBytes) bytes, more than the file's \(fileSize): the file is truncated or damaged", blocking: blocking)
                return nil
            }
        case .virtual, .other:
            break
        }
        return info
    }

    static func printable(_ text: String) -> String { TerminalText.escaped(text) }

    /// "missing" (or `text`), unless looking for `path` met damaged metadata: then that, so that a
    /// checksum failure is not reported as an absent object.
    private func absence(_ f: HDF5File, _ path: String, _ text: String) -> String {
        guard let damage = f.damageHiding(path) else { return text }
        return "cannot be read: damaged HDF5 metadata (\(damage))"
    }

    private mutating func flag(_ object: String, _ message: String, blocking: Bool = true) {
        violations.append(SchemaViolation(object, message, blocksReading: blocking))
    }

    /// Longest name accepted for run, regime, probe set and targets (characters).
    static let maxNameLength = 256

    private mutating func stringAttr(_ f: HDF5File, _ name: String) -> String? {
        do {
            let value = try f.readStringAttribute(name)
            if name != "config" {
                if value.count > Self.maxNameLength {
                    flag("/ attr \(name)", "is \(value.count) characters long; names are limited to \(Self.maxNameLength)")
                    return nil
                }
                if Self.printable(value) != value {
                    flag("/ attr \(name)", "\"\(Self.printable(value))\" holds control characters")
                    return nil
                }
            }
            return value
        } catch let e as ActivationStoreError {
            flag(e.object ?? "/ attr \(name)", e.message)
        } catch { flag("/ attr \(name)", "\(error)") }
        return nil
    }

    private mutating func intAttr(_ f: HDF5File, _ name: String, scalar: Bool) -> [Int]? {
        do {
            let info = try f.attributeInfo(name)
            if info.type.typeClass == .integer, info.type.bytes != 8 {
                flag("/ attr \(name)", "is \(info.type.readable); the format stores int64", blocking: false)
            }
            if scalar, !info.shape.isEmpty, info.shape != [1] {
                flag("/ attr \(name)", "expected a single integer, found shape \(info.shape)")
                return nil
            }
            if !scalar, info.shape.count != 1 {
                flag("/ attr \(name)", "expected a one-dimensional int64 array, found shape \(info.shape)")
                return nil
            }
            return try f.readIntAttribute(name)
        } catch let e as ActivationStoreError {
            flag(e.object ?? "/ attr \(name)", e.message)
        } catch { flag("/ attr \(name)", "\(error)") }
        return nil
    }

    private mutating func readMetadata(_ f: HDF5File) {
        let format = stringAttr(f, "format")
        if let format, format != ActivationMetadata.formatName {
            flag("/ attr format", "is \"\(format)\", expected \"bwact\"")
        }
        if let v = intAttr(f, "format_version", scalar: true), v.first != ActivationMetadata.formatVersion {
            flag("/ attr format_version", "is \(v.first ?? -1); this reader understands version 1")
        }
        let run = stringAttr(f, "run")
        let regime = stringAttr(f, "regime")
        if let regime, !ActivationMetadata.regimes.contains(regime) {
            flag("/ attr regime", "is \"\(regime)\", expected one of \(ActivationMetadata.regimes.joined(separator: ", "))",
                 blocking: false)
        }
        let probeSet = stringAttr(f, "probe_set")
        let step = intAttr(f, "step", scalar: true)
        let seed = intAttr(f, "seed", scalar: true)
        let config = stringAttr(f, "config")
        if let config, (try? JSONSerialization.jsonObject(with: Data(config.utf8), options: [.fragmentsAllowed])) == nil {
            flag("/ attr config", "is not valid JSON", blocking: false)
        }
        blockEnds = intAttr(f, "block_ends", scalar: false)
        if let run, let regime, let probeSet, let step, let seed, let config, let blockEnds {
            metadata = ActivationMetadata(run: run, regime: regime, blockEnds: blockEnds, probeSet: probeSet,
                                          step: step[0], seed: seed[0], config: config)
        }
    }

    private mutating func readLayers(_ f: HDF5File) {
        guard let names = f.childNames(of: "/layers") else {
            flag("/layers", absence(f, "/layers", "missing: the file holds no layer activations"))
            return
        }
        var depths: [Int] = []
        for name in names {
            guard name.count == 2, let d = Int(name), d >= 0 else {
                flag("/layers/\(Self.printable(String(name.prefix(Self.maxNameLength))))", "unexpected group name; layers are named 00, 01, ... (two digits)", blocking: false)
                continue
            }
            depths.append(d)
        }
        depths.sort()
        guard !depths.isEmpty else { flag("/layers", "holds no layers"); return }
        if depths != Array(0...(depths.last!)) {
            let missing = Set(0...(depths.last!)).subtracting(depths).sorted().map { ActivationPaths.depthName($0) }
            flag("/layers", "layers must run from 00 to \(ActivationPaths.depthName(depths.last!)) without gaps; missing \(missing.joined(separator: ", "))")
        }
        layerCount = depths.last!
        var shapeSeen: [Int]? = nil
        for d in depths {
            let path = ActivationPaths.tokens(d)
            guard f.isDataset(path) else {
                flag(path, absence(f, path, f.exists(path) ? "is not a dataset" : "missing"))
                tokenTypes.append(.float32)
                continue
            }
            guard let info = storedInfo(f, path) else {
                tokenTypes.append(.float32)
                continue
            }
            guard info.type.typeClass == .float, let t = info.type.elementType else {
                flag(path, "is \(info.type.readable); tokens must be float16, float32 or float64")
                tokenTypes.append(.float32)
                continue
            }
            tokenTypes.append(t)
            guard info.shape.count == 3 else {
                flag(path, "has rank \(info.shape.count) (shape \(info.shape)); expected [N, T, D]")
                continue
            }
            if let s = shapeSeen {
                if info.shape[0] != s[0] {
                    flag(path, "has N = \(info.shape[0]) clips but \(ActivationPaths.tokens(depths[0])) has \(s[0])")
                } else if info.shape[1] != s[1] {
                    flag(path, "has T = \(info.shape[1]) tokens but \(ActivationPaths.tokens(depths[0])) has \(s[1])")
                } else if info.shape[2] != s[2] {
                    flag(path, "has D = \(info.shape[2]) features but \(ActivationPaths.tokens(depths[0])) has \(s[2])")
                }
            } else {
                shapeSeen = info.shape
                (clips, tokens, features) = (info.shape[0], info.shape[1], info.shape[2])
                chunkClips = info.chunk?.first
                if info.shape[0] == 0 { flag(path, "holds no clips (N = 0)") }
            }
            let apath = ActivationPaths.attention(d)
            if f.exists(apath) {
                if !f.isDataset(apath) {
                    flag(apath, absence(f, apath, "is not a dataset"))
                } else if let a = storedInfo(f, apath) {
                    if a.type.typeClass != .float {
                        flag(apath, "is \(a.type.readable); attention must be floating point")
                    } else if a.shape.count != 4 {
                        flag(apath, "has rank \(a.shape.count) (shape \(a.shape)); expected [M, H, T, T]")
                    } else if a.shape[2] != a.shape[3] || a.shape[2] != info.shape[1] {
                        flag(apath, "has shape \(a.shape); the last two dimensions must both be T = \(info.shape[1])")
                    } else if a.shape[0] > info.shape[0] {
                        flag(apath, "holds M = \(a.shape[0]) clips, more than the N = \(info.shape[0]) of the tokens")
                    } else {
                        attention[d] = AttentionShape(clips: a.shape[0], heads: a.shape[1], tokens: a.shape[2])
                    }
                }
            }
        }
        if let ends = blockEnds {
            if ends.isEmpty {
                flag("/ attr block_ends", "is empty; list the last layer of each block, e.g. [\(layerCount)]")
            } else if zip(ends, ends.dropFirst()).contains(where: { $0 >= $1 }) {
                flag("/ attr block_ends", "\(ends) is not strictly increasing")
            } else if ends.first! < 1 || ends.last! != layerCount {
                flag("/ attr block_ends", "\(ends) must lie in 1...\(layerCount) and end at L = \(layerCount), the last layer in /layers")
            }
        }
    }

    private mutating func readPositions(_ f: HDF5File) {
        let path = ActivationPaths.positions
        guard f.exists(path) else {
            flag(path, absence(f, path, "missing: token positions [T, 3] are needed for attention distances"), blocking: false)
            return
        }
        guard f.isDataset(path) else { flag(path, absence(f, path, "is not a dataset"), blocking: false); return }
        guard let info = storedInfo(f, path, blocking: false) else { return }
        if info.type.typeClass != .float && info.type.typeClass != .integer {
            flag(path, "is \(info.type.readable); expected float32", blocking: false)
        } else if info.shape != [tokens, 3] {
            flag(path, "has shape \(info.shape); expected [T, 3] = [\(tokens), 3]", blocking: false)
        } else {
            do {
                let values = try f.read(path, as: Float.self)
                if let bad = values.firstIndex(where: { !$0.isFinite }) {
                    flag(path, "token \(bad / 3) has a non-finite position (\(values[bad]))", blocking: false)
                } else {
                    hasPositions = true
                }
            } catch let e as ActivationStoreError {
                flag(path, e.message, blocking: false)
            } catch { flag(path, "\(error)", blocking: false) }
        }
    }

    private mutating func readLabels(_ f: HDF5File) {
        guard let names = f.childNames(of: "/labels") else {
            flag("/labels", absence(f, "/labels", "missing: no targets, so probes and retrieval cannot run"), blocking: false)
            return
        }
        if names.isEmpty { flag("/labels", "holds no targets", blocking: false) }
        for name in names {
            let path = ActivationPaths.labels(name)
            if name.count > Self.maxNameLength || Self.printable(name) != name {
                flag(ActivationPaths.labels(Self.printable(String(name.prefix(Self.maxNameLength)))),
                     "target names are at most \(Self.maxNameLength) characters without control characters")
                continue
            }
            guard f.isDataset(path) else { flag(path, absence(f, path, "is not a dataset")); continue }
            guard let info = storedInfo(f, path) else { continue }
            guard info.type.typeClass == .integer, info.signed || info.type.bytes < 8 else {
                flag(path, "is \(info.signed ? "" : "unsigned ")\(info.type.readable); labels must be int64 class indices")
                continue
            }
            guard info.shape.count == 1 else {
                flag(path, "has shape \(info.shape); expected [N] = [\(clips)]")
                continue
            }
            guard info.shape[0] == clips else {
                flag(path, "has \(info.shape[0]) labels but the layers hold N = \(clips) clips")
                continue
            }
            let values: [Int64]
            do { values = try f.read(path, as: Int64.self) } catch let e as ActivationStoreError {
                flag(path, e.message)
                continue
            } catch { flag(path, "\(error)"); continue }
            if let bad = values.firstIndex(where: { $0 < 0 }) {
                flag(path, "holds a negative class index (\(values[bad]) at clip \(bad)); classes are 0, 1, ...")
                continue
            }
            targets.append(name)
        }
    }

    private mutating func readTraining(_ f: HDF5File) {
        let hasStep = f.exists(ActivationPaths.trainingStep), hasLoss = f.exists(ActivationPaths.trainingLoss)
        guard hasStep || hasLoss else { return }
        guard hasStep, hasLoss else {
            flag("/training", "needs both step and loss datasets", blocking: false)
            return
        }
        guard f.isDataset(ActivationPaths.trainingStep), f.isDataset(ActivationPaths.trainingLoss) else {
            flag("/training", "step and loss must be datasets", blocking: false)
            return
        }
        guard let s = storedInfo(f, ActivationPaths.trainingStep, blocking: false),
              let l = storedInfo(f, ActivationPaths.trainingLoss, blocking: false) else { return }
        let k = metadata?.blockEnds.count ?? -1
        if s.shape.count != 1 || s.type.typeClass != .integer {
            flag(ActivationPaths.trainingStep, "expected int64 [S], found \(s.type.readable) \(s.shape)", blocking: false)
        } else if l.shape.count != 2 || l.shape[0] != s.shape[0] || l.type.typeClass != .float {
            flag(ActivationPaths.trainingLoss, "expected float32 [S, K] with S = \(s.shape[0]), found \(l.type.readable) \(l.shape)",
                 blocking: false)
        } else if k >= 0, l.shape[1] != k {
            flag(ActivationPaths.trainingLoss, "has \(l.shape[1]) loss columns but block_ends lists \(k) blocks", blocking: false)
        } else {
            trainingSteps = s.shape[0]
        }
    }
}
