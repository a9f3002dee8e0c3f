import Foundation
import Synchronization

/// An open bwact/1 activation file, read in clip ranges.
///
/// Opening checks the structure (attributes, layer shapes, labels) and refuses a file whose
/// layout cannot be trusted, with an error that names the file and the object. Token values
/// are never read whole: `tokens(depth:clips:as:)` reads a hyperslab of clips, so a layer
/// larger than memory can be processed chunk by chunk (see `clipBatches(maxBytes:)`).
public final class ActivationFile: @unchecked Sendable {
    /// The path as given by the caller (used in every error message).
    public let path: String
    public let metadata: ActivationMetadata
    /// L: the last layer; depths run 0...L (0 is the embedding output).
    public let layerCount: Int
    /// N, T, D.
    public let clipCount: Int
    public let tokenCount: Int
    public let featureCount: Int
    /// Stored element type of each depth's tokens.
    public let tokenTypes: [ElementType]
    /// Attention shapes by depth, for the layers that store attention.
    public let attentionShapes: [Int: AttentionShape]
    /// Names of the label datasets, sorted.
    public let targets: [String]
    public let hasPositions: Bool
    public let hasTrainingCurve: Bool
    /// Findings that did not stop the file being read (run `validate` for the full list).
    public let warnings: [SchemaViolation]
    /// Clips per storage chunk, when the token datasets are chunked.
    public let chunkClips: Int?

    let file: HDF5File
    /// When set, logical clip i is stored clip `clipOrder[i]` (a file aligned to another by clip ids;
    /// see `reordered(_:)`).
    public internal(set) var clipOrder: [Int]? = nil
    /// Clip vectors of some depths already computed from this file's tokens (see `sharingClipVectors`),
    /// by depth: row-major [N, D] float64 means over tokens, in this view's clip order.
    public private(set) var knownClipVectors: [Int: [Double]] = [:]
    /// The identity of the file at `path` when it was opened (nil if it could not be stat'ed), so that
    /// another process opening `path` can tell whether it reaches the same file.
    public let identity: FileIdentity?

    public var depths: ClosedRange<Int> { 0...layerCount }
    /// Size of the file in bytes.
    public var fileSize: Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? 0
    }

    /// Opens several files for reading, their structural checks (`StructureGuard`, one child process
    /// each) at once rather than one after another.
    ///
    /// - Throws: the error of the first file, in the order given, that cannot be opened.
    public static func open(_ paths: [String]) throws -> [ActivationFile] {
        let results = Mutex<[Result<ActivationFile, Error>?]>(Array(repeating: nil, count: paths.count))
        DispatchQueue.concurrentPerform(iterations: paths.count) { i in
            let r = Result { try ActivationFile(path: paths[i]) }
            results.withLock { $0[i] = r }
        }
        return try results.withLock { try $0.map { try $0!.get() } }
    }

    /// Opens a file for reading.
    ///
    /// - Throws: `ActivationStoreError` naming the file (and object) when it is missing, a directory,
    ///   not HDF5, truncated, of another schema, or structurally inconsistent.
    public init(path: String) throws {
        let file = try ActivationFile.openHDF5(path)
        identity = FileIdentity(path: path)
        OutputPolicy.protectInput(path)
        if let damage = file.attributeLookupError("format") {
            throw ActivationStoreError(.damaged, file: path, "damaged HDF5 file: the root group cannot be read (\(damage))")
        }
        if !file.attributeExists("format") {
            throw ActivationStoreError(.notBwact, file: path,
                                       "not a bwact activation file (no root attribute 'format'); see docs/activation-format.md")
        }
        let inspection = SchemaInspection(file)
        if let first = inspection.blockingViolations.first {
            let more = inspection.blockingViolations.count - 1
            let tail = more > 0 ? " (and \(more) more problem\(more == 1 ? "" : "s"); run `bwanalyze validate` for all)" : ""
            throw ActivationStoreError(.schema, file: path, object: first.object, first.message + tail)
        }
        guard let metadata = inspection.metadata else {
            throw ActivationStoreError(.schema, file: path, "root attributes incomplete")
        }
        try VirtualSources.requireSources(of: file, path: path)
        self.path = path
        self.file = file
        self.metadata = metadata
        self.layerCount = inspection.layerCount
        self.clipCount = inspection.clips
        self.tokenCount = inspection.tokens
        self.featureCount = inspection.features
        self.tokenTypes = inspection.tokenTypes
        self.attentionShapes = inspection.attention
        self.targets = inspection.targets.sorted()
        self.hasPositions = inspection.hasPositions
        self.hasTrainingCurve = inspection.trainingSteps != nil
        self.warnings = inspection.violations
        self.chunkClips = inspection.chunkClips
    }

    /// The same file, sharing its open handle, that also carries the clip vectors `vectors` (by depth,
    /// each row-major [N, D]: the float64 means over tokens in this file's clip order, as computed from
    /// its tokens). Analyses that pool tokens to clip vectors take them from here instead of reading the
    /// tokens again, so a report that has already read every token pools each depth once.
    public func sharingClipVectors(_ vectors: [Int: [Double]]) -> ActivationFile {
        precondition(vectors.allSatisfy { depths.contains($0.key) && $0.value.count == clipCount * featureCount },
                     "clip vectors must be [N, D] at depths of the file")
        return ActivationFile(viewOf: self, clipVectors: vectors)
    }

    private init(viewOf other: ActivationFile, clipVectors: [Int: [Double]]) {
        path = other.path
        file = other.file
        metadata = other.metadata
        layerCount = other.layerCount
        clipCount = other.clipCount
        tokenCount = other.tokenCount
        featureCount = other.featureCount
        tokenTypes = other.tokenTypes
        attentionShapes = other.attentionShapes
        targets = other.targets
        hasPositions = other.hasPositions
        hasTrainingCurve = other.hasTrainingCurve
        warnings = other.warnings
        chunkClips = other.chunkClips
        clipOrder = other.clipOrder
        identity = other.identity
        knownClipVectors = clipVectors
    }

    /// Opens the HDF5 container, turning every way that can fail into a one-line error.
    static func openHDF5(_ path: String) throws -> HDF5File {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ActivationStoreError(.notFound, file: path, "no such file")
        }
        if isDirectory.boolValue {
            throw ActivationStoreError(.isDirectory, file: path, "is a directory, not an activation file")
        }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw ActivationStoreError(.cannotOpen, file: path, "permission denied")
        }
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw ActivationStoreError(.cannotOpen, file: path, "is not a regular file")
        }
        let preread = try StructureGuard.check(path)
        return try openChecked(path, preread: preread)
    }

    /// Opens `path` after its structure check: the file opened must be the one the check read (a file
    /// replaced or rewritten in between is refused), and its variable-length strings come from the check.
    static func openChecked(_ path: String, preread: StructureGuard.Preread?) throws -> HDF5File {
        let f = try HDF5File.openReadOnly(path: path, displayName: path)
        guard let preread else { return f }
        // The identity of the file this process has open (from its descriptor; from the path when the
        // driver keeps none) must be the one the helper read.
        guard let opened = (f.openIdentity ?? FileIdentity(path: path))?.description, opened == preread.identity else {
            try? f.close()
            throw ActivationStoreError(.cannotOpen, file: path,
                                       "the file changed between its structure check and its opening (replaced or rewritten by another process); try again")
        }
        f.preread = preread
        return f
    }

    private func checkDepth(_ depth: Int) throws {
        guard depths.contains(depth) else {
            throw ActivationStoreError(.invalidArgument, file: path, object: "/layers",
                                       "depth \(depth) is out of range; this file holds depths 0...\(layerCount)")
        }
    }

    private func checkClips(_ clips: Range<Int>, limit: Int, object: String) throws {
        guard clips.lowerBound >= 0, clips.upperBound <= limit else {
            throw ActivationStoreError(.invalidArgument, file: path, object: object,
                                       "clips \(clips.lowerBound)..<\(clips.upperBound) outside 0..<\(limit)")
        }
    }

    /// Tokens of clips `clips` at `depth`, row-major [clips.count, T, D], converted to `T`.
    public func tokens(depth: Int, clips: Range<Int>, as: Float.Type = Float.self) throws -> [Float] {
        try readTokens(depth: depth, clips: clips, as: Float.self)
    }

    /// Tokens in float64 (exact for float16/32/64 files).
    public func tokens(depth: Int, clips: Range<Int>, as: Double.Type) throws -> [Double] {
        try readTokens(depth: depth, clips: clips, as: Double.self)
    }

    /// Hands `body` the stored chunks of the tokens of clips `clips` at `depth`, without copying them,
    /// when the file stores them as float32 in unfiltered chunks in clip order; false otherwise (read
    /// `tokens(depth:clips:)` instead). See `HDF5File.forEachStoredChunk`: on false `body` may have seen
    /// some chunks, and whatever it made of them is to be discarded.
    public func forEachTokenChunk(depth: Int, clips: Range<Int>, _ body: (StoredChunk) -> Void) throws -> Bool {
        try checkDepth(depth)
        let object = ActivationPaths.tokens(depth)
        try checkClips(clips, limit: clipCount, object: object)
        guard clipOrder == nil, tokenTypes[depth] == .float32 else { return false }
        return try file.forEachStoredChunk(object, rows: clips, middle: tokenCount, last: featureCount, body)
    }

    private func readTokens<S: HDF5MemoryScalar & Numeric>(depth: Int, clips: Range<Int>, as: S.Type) throws -> [S] {
        try checkDepth(depth)
        let object = ActivationPaths.tokens(depth)
        try checkClips(clips, limit: clipCount, object: object)
        if let order = clipOrder { return try readRows(object, rows: Array(order[clips]), as: S.self) }
        return try file.read(object, as: S.self, start: [clips.lowerBound, 0, 0],
                             count: [clips.count, tokenCount, featureCount])
    }

    /// Splits 0..<N into consecutive ranges whose tokens take at most `maxBytes` as float64,
    /// aligned to the storage chunks when the file is chunked.
    public func clipBatches(maxBytes: Int = 64 << 20) -> [Range<Int>] {
        let perClip = max(1, tokenCount * featureCount * 8)
        var size = max(1, maxBytes / perClip)
        if let c = chunkClips, c > 0, size > c { size = (size / c) * c }
        return stride(from: 0, to: clipCount, by: size).map { $0..<min($0 + size, clipCount) }
    }

    /// Class indices of one target, one per clip.
    public func labels(_ target: String) throws -> [Int] {
        guard targets.contains(target) else {
            let known = targets.isEmpty ? "the file has no labels" : "known targets: \(targets.joined(separator: ", "))"
            throw ActivationStoreError(.invalidArgument, file: path, object: ActivationPaths.labels(target),
                                       "no such target; \(known)")
        }
        let stored = try file.read(ActivationPaths.labels(target), as: Int64.self).map { Int($0) }
        return clipOrder.map { $0.map { stored[$0] } } ?? stored
    }

    /// Token centres as (frame, row, col), row-major [T, 3]; nil when the file has none.
    public func positions() throws -> [Float]? {
        guard hasPositions else { return nil }
        return try file.read(ActivationPaths.positions, as: Float.self)
    }

    /// Attention of layer `depth` for clips `clips`, row-major [clips.count, H, T, T].
    public func attention(depth: Int, clips: Range<Int>? = nil) throws -> [Float] {
        try checkDepth(depth)
        let object = ActivationPaths.attention(depth)
        guard let shape = attentionShapes[depth] else {
            throw ActivationStoreError(.invalidArgument, file: path, object: object, "this layer stores no attention")
        }
        if clipOrder != nil {
            throw ActivationStoreError(.invalidArgument, file: path, object: object, "attention is not available in a clip order aligned to another file")
        }
        let r = clips ?? 0..<shape.clips
        try checkClips(r, limit: shape.clips, object: object)
        return try file.read(object, as: Float.self, start: [r.lowerBound, 0, 0, 0],
                             count: [r.count, shape.heads, shape.tokens, shape.tokens])
    }

    /// The local loss curves, when the file has them.
    public func trainingCurve() throws -> TrainingCurve? {
        guard hasTrainingCurve else { return nil }
        let steps = try file.read(ActivationPaths.trainingStep, as: Int64.self).map { Int($0) }
        let loss = try file.read(ActivationPaths.trainingLoss, as: Float.self)
        return TrainingCurve(steps: steps, loss: loss, blocks: steps.isEmpty ? metadata.blockEnds.count : loss.count / steps.count)
    }
}
