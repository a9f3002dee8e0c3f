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

    private mutating func flag(_ object: String, _ message: String, blocking: Bool = true) {
        violations.append(SchemaViolation(object, message, blocksReading: blocking))
    }

    private mutating func stringAttr(_ f: HDF5File, _ name: String) -> String? {
        do { return try f.readStringAttribute(name) } catch let e as ActivationStoreError {
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
            flag("/layers", "missing: the file holds no layer activations")
            return
        }
        var depths: [Int] = []
        for name in names {
            guard name.count == 2, let d = Int(name), d >= 0 else {
                flag("/layers/\(name)", "unexpected group name; layers are named 00, 01, ... (two digits)", blocking: false)
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
            guard let info = try? f.datasetInfo(path) else {
                flag(path, f.exists(path) ? "is not a dataset" : "missing")
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
                if let a = try? f.datasetInfo(apath) {
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
                } else {
                    flag(apath, "is not a dataset")
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
            flag(path, "missing: token positions [T, 3] are needed for attention distances", blocking: false)
            return
        }
        guard let info = try? f.datasetInfo(path) else { flag(path, "is not a dataset", blocking: false); return }
        if info.type.typeClass != .float && info.type.typeClass != .integer {
            flag(path, "is \(info.type.readable); expected float32", blocking: false)
        } else if info.shape != [tokens, 3] {
            flag(path, "has shape \(info.shape); expected [T, 3] = [\(tokens), 3]", blocking: false)
        } else {
            hasPositions = true
        }
    }

    private mutating func readLabels(_ f: HDF5File) {
        guard let names = f.childNames(of: "/labels") else {
            flag("/labels", "missing: no targets, so probes and retrieval cannot run", blocking: false)
            return
        }
        if names.isEmpty { flag("/labels", "holds no targets", blocking: false) }
        for name in names {
            let path = ActivationPaths.labels(name)
            guard let info = try? f.datasetInfo(path) else { flag(path, "is not a dataset"); continue }
            guard info.type.typeClass == .integer else {
                flag(path, "is \(info.type.readable); labels must be int64 class indices")
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
            if let values = try? f.read(path, as: Int64.self), let bad = values.firstIndex(where: { $0 < 0 }) {
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
        guard let s = try? f.datasetInfo(ActivationPaths.trainingStep),
              let l = try? f.datasetInfo(ActivationPaths.trainingLoss) else {
            flag("/training", "step and loss must be datasets", blocking: false)
            return
        }
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
