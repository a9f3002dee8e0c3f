import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes one bwact/1 file atomically.
///
/// Everything goes to a hidden temporary file beside the destination
/// (`.NAME.tmp-PID-RANDOM`); `commit()` closes it, checks its structure, flushes it to disk and
/// renames it over the destination. A writer that is dropped without `commit()`, fails, or whose
/// process is killed never leaves a partial file under the final name (a killed process may leave
/// the hidden temporary behind; an existing destination is untouched until the rename).
///
/// Typical use:
/// ```swift
/// let w = try ActivationWriter(path: "run.h5", metadata: meta)
/// for depth in 0...L { try w.writeTokens(depth: depth, values: x[depth], clips: N, tokens: T, features: D) }
/// try w.writeLabels("class", labels)
/// try w.commit()
/// ```
public final class ActivationWriter {
    public let path: String
    public let temporaryPath: String
    private var file: HDF5File?
    private var committed = false
    private var tokenShapes: [Int: (clips: Int, tokens: Int, features: Int)] = [:]

    /// Starts a new file; the destination is replaced only on `commit()`.
    public init(path: String, metadata: ActivationMetadata) throws {
        self.path = path
        temporaryPath = try AtomicFile.temporaryPath(for: path)
        let f = try HDF5File.create(path: temporaryPath, displayName: path)
        file = f
        do {
            try f.writeStringAttribute("format", ActivationMetadata.formatName)
            try f.writeIntAttribute("format_version", [ActivationMetadata.formatVersion], scalar: true)
            try f.writeStringAttribute("run", metadata.run)
            try f.writeStringAttribute("regime", metadata.regime)
            try f.writeIntAttribute("block_ends", metadata.blockEnds, scalar: false)
            try f.writeStringAttribute("probe_set", metadata.probeSet)
            try f.writeIntAttribute("step", [metadata.step], scalar: true)
            try f.writeIntAttribute("seed", [metadata.seed], scalar: true)
            try f.writeStringAttribute("config", metadata.config)
        } catch {
            abandon()
            throw error
        }
    }

    deinit { abandon() }

    private func open() throws -> HDF5File {
        guard let file, !committed else {
            throw ActivationStoreError(.invalidArgument, file: path, "writer already committed or abandoned")
        }
        return file
    }

    /// Clips per chunk so that one chunk of tokens takes at most about 1 MiB.
    public static func chunkClips(tokens: Int, features: Int, type: ElementType) -> Int {
        max(1, (1 << 20) / max(1, tokens * features * type.byteCount))
    }

    /// Creates the token dataset of one depth, chunked by clips, to be filled by `writeTokens(depth:firstClip:values:)`.
    /// - Parameter chunk: the storage chunk shape [clips, tokens, features]; by default whole clips,
    ///   about 1 MiB a chunk (h5py's own default splits every dimension instead).
    public func createTokens(depth: Int, clips: Int, tokens: Int, features: Int, type: ElementType = .float32,
                             chunk: [Int]? = nil) throws {
        let f = try open()
        guard [.float16, .float32, .float64].contains(type) else {
            throw ActivationStoreError(.invalidArgument, file: path, object: ActivationPaths.tokens(depth),
                                       "tokens must be float16, float32 or float64")
        }
        let c = min(clips, ActivationWriter.chunkClips(tokens: tokens, features: features, type: type))
        if let chunk, chunk.count != 3 || chunk.contains(where: { $0 < 1 }) {
            throw ActivationStoreError(.invalidArgument, file: path, object: ActivationPaths.tokens(depth),
                                       "a token chunk shape is three positive sizes [clips, tokens, features]")
        }
        try f.createDataset(ActivationPaths.tokens(depth), shape: [clips, tokens, features], type: type,
                            chunk: chunk ?? [max(1, c), tokens, features])
        tokenShapes[depth] = (clips, tokens, features)
    }

    /// Writes clips `firstClip ..< firstClip + values.count/(T·D)` of a dataset made by `createTokens`.
    public func writeTokens(depth: Int, firstClip: Int, values: [Float]) throws {
        try writeTokenRange(depth: depth, firstClip: firstClip, values: values)
    }

    public func writeTokens(depth: Int, firstClip: Int, values: [Double]) throws {
        try writeTokenRange(depth: depth, firstClip: firstClip, values: values)
    }

    private func writeTokenRange<S: HDF5MemoryScalar>(depth: Int, firstClip: Int, values: [S]) throws {
        let f = try open()
        guard let shape = tokenShapes[depth] else {
            throw ActivationStoreError(.invalidArgument, file: path, object: ActivationPaths.tokens(depth),
                                       "createTokens must be called before writing")
        }
        let per = shape.tokens * shape.features
        guard per > 0, values.count % per == 0 else {
            throw ActivationStoreError(.invalidArgument, file: path, object: ActivationPaths.tokens(depth),
                                       "\(values.count) values is not a whole number of clips of \(shape.tokens)x\(shape.features)")
        }
        try f.write(ActivationPaths.tokens(depth), values, start: [firstClip, 0, 0],
                    count: [values.count / per, shape.tokens, shape.features])
    }

    /// Creates and fills one depth's tokens, row-major [clips, tokens, features].
    public func writeTokens(depth: Int, values: [Float], clips: Int, tokens: Int, features: Int,
                            type: ElementType = .float32) throws {
        try createTokens(depth: depth, clips: clips, tokens: tokens, features: features, type: type)
        try writeTokens(depth: depth, firstClip: 0, values: values)
    }

    /// Writes one layer's softmax attention, row-major [clips, heads, tokens, tokens].
    public func writeAttention(depth: Int, values: [Float], clips: Int, heads: Int, tokens: Int) throws {
        let f = try open()
        let object = ActivationPaths.attention(depth)
        let c = max(1, min(clips, (1 << 20) / max(1, heads * tokens * tokens * 4)))
        try f.createDataset(object, shape: [clips, heads, tokens, tokens], type: .float32,
                            chunk: [c, heads, tokens, tokens])
        try f.write(object, values)
    }

    /// Writes the token centres (frame, row, col), row-major [tokens, 3].
    public func writePositions(_ values: [Float]) throws {
        let f = try open()
        guard values.count % 3 == 0 else {
            throw ActivationStoreError(.invalidArgument, file: path, object: ActivationPaths.positions,
                                       "positions must be [T, 3]")
        }
        try f.createDataset(ActivationPaths.positions, shape: [values.count / 3, 3], type: .float32)
        try f.write(ActivationPaths.positions, values)
    }

    /// Writes one target's class indices (one per clip).
    public func writeLabels(_ target: String, _ values: [Int]) throws {
        let f = try open()
        guard !target.isEmpty, !target.contains("/") else {
            throw ActivationStoreError(.invalidArgument, file: path, object: "/labels",
                                       "target name \"\(target)\" must be non-empty and contain no '/'")
        }
        try f.createDataset(ActivationPaths.labels(target), shape: [values.count], type: .int64)
        try f.write(ActivationPaths.labels(target), values.map { Int64($0) })
    }

    /// Writes the local loss per block per logged step; `loss` is row-major [steps.count, blocks].
    public func writeTrainingCurve(_ curve: TrainingCurve) throws {
        let f = try open()
        guard curve.loss.count == curve.steps.count * curve.blocks else {
            throw ActivationStoreError(.invalidArgument, file: path, object: "/training",
                                       "loss must hold steps × blocks values")
        }
        try f.createDataset(ActivationPaths.trainingStep, shape: [curve.steps.count], type: .int64)
        try f.write(ActivationPaths.trainingStep, curve.steps.map { Int64($0) })
        try f.createDataset(ActivationPaths.trainingLoss, shape: [curve.steps.count, curve.blocks], type: .float32)
        try f.write(ActivationPaths.trainingLoss, curve.loss)
    }

    /// Closes the file, checks its structure, flushes it and renames it to the destination.
    ///
    /// - Throws: when the file breaks the schema (e.g. a missing layer); nothing is left under `path`.
    public func commit() throws {
        let f = try open()
        do {
            try f.close()
            file = nil
            let check = SchemaInspection(try HDF5File.openReadOnly(path: temporaryPath, displayName: path))
            if let first = check.blockingViolations.first {
                throw ActivationStoreError(.schema, file: path, object: first.object,
                                           "refusing to write an invalid file: \(first.message)")
            }
            try AtomicFile.commit(temporaryPath, to: path)
            committed = true
        } catch {
            abandon()
            throw error
        }
    }

    /// Drops the file: the temporary is removed and the destination left as it was.
    public func abandon() {
        guard !committed else { return }
        if let file { try? file.close() }
        file = nil
        unlink(temporaryPath)
    }
}
