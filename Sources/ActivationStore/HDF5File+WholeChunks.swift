import CHDF5
import Synchronization

/// One stored chunk of a 3-D float32 dataset, as `HDF5File.forEachStoredChunk` hands it over: valid
/// only during the call.
public struct StoredChunk {
    /// The chunk's values, row-major in the chunk's full shape (an edge chunk is stored whole; the
    /// values beyond the dataset are padding).
    public let values: UnsafeBufferPointer<Float>
    /// Dataset coordinates of the chunk's first value (row, middle, last).
    public let origin: [Int]
    /// The chunk's shape.
    public let chunk: [Int]
    /// The dataset's shape.
    public let shape: [Int]
    /// The rows of the chunk inside the requested rows.
    public let rows: Range<Int>

    /// Copies the chunk's values in `rows` to their places in `out`, which holds whole rows of the dataset
    /// (row-major, `shape[1] × shape[2]` values a row) from row `firstRow` on.
    public func copy(into out: UnsafeMutablePointer<Float>, firstRow: Int) {
        let width = min(chunk[2], shape[2] - origin[2]), height = min(chunk[1], shape[1] - origin[1])
        for i in rows {
            for j in 0..<height {
                let from = ((i - origin[0]) * chunk[1] + j) * chunk[2]
                let to = ((i - firstRow) * shape[1] + origin[1] + j) * shape[2] + origin[2]
                (out + to).update(from: values.baseAddress! + from, count: width)
            }
        }
    }
}

extension HDF5File {
    /// Visits the stored chunks of rows `rows` of the 3-D dataset at `path` ([rows, middle, last]) when
    /// it is float32 in unfiltered chunks (see `readWholeChunks`); false when it is not stored that way,
    /// or a chunk turns out to be missing, in which case `body` may have seen some chunks and the caller
    /// discards what it made of them. The chunks are read a slab (`slabBytes`) at a time under the library's
    /// lock and handed to `body` after it is released, in row-major chunk order, so several threads can
    /// read and use different datasets at once.
    func forEachStoredChunk(_ path: String, rows: Range<Int>, middle: Int, last: Int, _ body: (StoredChunk) -> Void) throws -> Bool {
        guard !rows.isEmpty else { return true }
        let start = [rows.lowerBound, 0, 0], count = [rows.count, middle, last]
        // The dataset stays open across the slabs below (H5Handle closes under the library's lock).
        guard let (ds, layout) = try HDF5Library.sync({ () -> (H5Handle, WholeChunkLayout)? in
            let ds = try openDataset(path)
            return wholeChunkLayout(ds, start: start, count: count).map { (ds, $0) }
        }), layout.rank == 3, layout.shape[1] == middle, layout.shape[2] == last else { return false }
        let c = layout.chunk, d = layout.shape
        let across = (d[1] + c[1] - 1) / c[1], down = (d[2] + c[2] - 1) / c[2]
        // Slab buffers (one chunk when a chunk exceeds `slabBytes`) come from mmap and are zeroed page by
        // page when fresh; reuse them.
        var block = HDF5File.blockBuffers.withLock { $0.popLast() } ?? []
        defer {
            let kept = block
            HDF5File.blockBuffers.withLock { if $0.count < 4 { $0.append(kept) } }
        }
        let slab = max(1, HDF5File.slabBytes / max(1, layout.elements * MemoryLayout<Float>.stride))
        let slabElements = min(slab, across * down) * layout.elements
        if block.count < slabElements { block = [Float](repeating: 0, count: slabElements) }
        // The chunks of a block of rows go in slabs of about `slabBytes`, each read under the lock and
        // visited right after, while it is still in this core's cache (a whole block of rows, 13.5 MB
        // for h5py's default chunks of a [1100, 128, 384] dataset, would be visited from memory).
        let origins = stride(from: 0, to: d[1], by: c[1]).flatMap { o1 in stride(from: 0, to: d[2], by: c[2]).map { (o1, $0) } }
        var o0 = rows.lowerBound / c[0] * c[0]
        while o0 < rows.upperBound {
            let chunkRows = max(o0, rows.lowerBound)..<min(o0 + c[0], rows.upperBound)
            var first = 0
            while first < origins.count {
                let part = origins[first..<min(first + slab, origins.count)]
                let read = block.withUnsafeMutableBufferPointer { b in
                    HDF5Library.sync { () -> Bool in
                        for (slot, (o1, o2)) in part.enumerated() {
                            guard readChunk(ds, layout, origin: [o0, o1, o2], into: b.baseAddress! + slot * layout.elements) else { return false }
                        }
                        return true
                    }
                }
                guard read else { return false }
                block.withUnsafeBufferPointer { b in
                    for (slot, (o1, o2)) in part.enumerated() {
                        body(StoredChunk(values: UnsafeBufferPointer(rebasing: b[(slot * layout.elements)..<((slot + 1) * layout.elements)]),
                                         origin: [o0, o1, o2], chunk: c, shape: d, rows: chunkRows))
                    }
                }
                first += part.count
            }
            o0 += c[0]
        }
        return true
    }

    /// Bytes of chunks `forEachStoredChunk` reads under the lock before visiting them: half of the
    /// 1 MiB L2 cache per core of the project's machine.
    static let slabBytes = 512 << 10

    /// Slab buffers of `forEachStoredChunk`, kept between calls (at most four).
    static let blockBuffers = Mutex<[[Float]]>([])

    /// Reads the rows `start[0] ..< start[0] + count[0]` of a float32 dataset whose other dimensions are
    /// read whole, chunk by chunk with `H5Dread_chunk`, and copies each chunk's part into `out`
    /// (row-major, `count`'s shape). Must be called inside `HDF5Library.sync`.
    ///
    /// Why: h5py's default chunks are small (for [1100, 128, 384] float32 they are (69, 8, 48), 106 KB),
    /// and `H5Dread` of a box spends most of its time in the selection and chunk-cache machinery around
    /// each chunk; reading the stored chunks themselves runs at memory speed from the page cache (7 GB/s
    /// against 1 GB/s on the project's machine, BENCHMARKS.md). This is exact for the datasets it
    /// accepts: unfiltered chunks hold the values as stored, and the stored type is the native float.
    ///
    /// Returns false, having read nothing the caller may keep, when the dataset is not stored that way:
    /// not chunked, filtered (compressed), another element type, rank above 3, a selection that is
    /// not whole rows, a chunk never written (HDF5 supplies its fill value), or a chunk whose stored
    /// size is not the chunk's (a damaged index is never trusted with the buffer). The caller then
    /// reads through `H5Dread`, which handles every case.
    func readWholeChunks(_ ds: H5Handle, start: [Int], count: [Int], into out: UnsafeMutableBufferPointer<Float>) -> Bool {
        forEachWholeChunk(ds, start: start, count: count) { $0.copy(into: out.baseAddress!, firstRow: start[0]) }
    }

    /// How a dataset's chunks tile a selection of whole rows, as three dimensions (rank 1 and 2 get
    /// unit dimensions).
    struct WholeChunkLayout {
        var rank: Int
        var shape: [Int]
        var chunk: [Int]
        var elements: Int
        var chunkBytes: hsize_t
    }

    /// The layout when the dataset is float32 in unfiltered chunks and the selection is whole rows
    /// (see `readWholeChunks`), else nil. Must be called inside `HDF5Library.sync`.
    func wholeChunkLayout(_ ds: H5Handle, start: [Int], count: [Int]) -> WholeChunkLayout? {
        let plist = H5Handle(H5Dget_create_plist(ds.id), .plist)
        guard plist.id >= 0, H5Pget_layout(plist.id) == H5D_CHUNKED, H5Pget_nfilters(plist.id) == 0 else { return nil }
        let type = H5Handle(H5Dget_type(ds.id), .datatype)
        guard type.id >= 0, H5Tequal(type.id, bw_H5T_NATIVE_FLOAT()) > 0 else { return nil }
        let space = H5Handle(H5Dget_space(ds.id), .dataspace)
        let dims = shape(of: space.id)
        let rank = dims.count
        guard (1...3).contains(rank), start.count == rank, count.count == rank,
              (1..<rank).allSatisfy({ start[$0] == 0 && count[$0] == dims[$0] }),
              start[0] >= 0, count[0] > 0, start[0] + count[0] <= dims[0] else { return nil }
        var chunk = [hsize_t](repeating: 0, count: rank)
        guard H5Pget_chunk(plist.id, Int32(rank), &chunk) == Int32(rank), chunk.allSatisfy({ $0 > 0 }) else { return nil }
        let d = rank == 3 ? dims : rank == 2 ? [dims[0], 1, dims[1]] : [dims[0], 1, 1]
        let c = (rank == 3 ? chunk : rank == 2 ? [chunk[0], 1, chunk[1]] : [chunk[0], 1, 1]).map { Int($0) }
        guard let elements = HDF5File.product(c), elements <= (1 << 28) else { return nil }
        return WholeChunkLayout(rank: rank, shape: d, chunk: c, elements: elements,
                                chunkBytes: hsize_t(elements * MemoryLayout<Float>.size))
    }

    /// Reads the stored chunk at `origin` (three dimensions) into `buffer` (`layout.elements` floats);
    /// false when it was never written or its stored size is not the chunk's. Must be called inside
    /// `HDF5Library.sync`; clears HDF5's error stack on failure.
    func readChunk(_ ds: H5Handle, _ layout: WholeChunkLayout, origin: [Int], into buffer: UnsafeMutablePointer<Float>) -> Bool {
        let offset: [hsize_t] = (layout.rank == 3 ? origin : layout.rank == 2 ? [origin[0], origin[2]] : [origin[0]]).map { hsize_t($0) }
        var stored: hsize_t = 0
        var filters: UInt32 = 0
        guard H5Dget_chunk_storage_size(ds.id, offset, &stored) >= 0, stored == layout.chunkBytes,
              H5Dread_chunk(ds.id, bw_H5P_DEFAULT(), offset, &filters, buffer) >= 0 else {
            _ = HDF5Library.lastErrorMessage()
            return false
        }
        return true
    }

    /// Calls `body` for every stored chunk that holds rows of `start[0] ..< start[0] + count[0]`, in
    /// row-major chunk order, shapes as three dimensions (rank 1 and 2 get unit dimensions); the chunk's
    /// `rows` are those inside the selection. False when the dataset is not stored as `readWholeChunks`
    /// needs (see there); `body` may have seen some chunks.
    private func forEachWholeChunk(_ ds: H5Handle, start: [Int], count: [Int], _ body: (StoredChunk) -> Void) -> Bool {
        guard let layout = wholeChunkLayout(ds, start: start, count: count) else { return false }
        let c = layout.chunk, d = layout.shape
        var scratch = [Float](repeating: 0, count: layout.elements)
        let first = start[0], end = start[0] + count[0]
        return scratch.withUnsafeMutableBufferPointer { s in
            var o0 = first / c[0] * c[0]
            while o0 < end {
                for o1 in stride(from: 0, to: d[1], by: c[1]) {
                    for o2 in stride(from: 0, to: d[2], by: c[2]) {
                        guard readChunk(ds, layout, origin: [o0, o1, o2], into: s.baseAddress!) else { return false }
                        body(StoredChunk(values: UnsafeBufferPointer(s), origin: [o0, o1, o2], chunk: c, shape: d,
                                         rows: max(o0, first)..<min(o0 + c[0], end)))
                    }
                }
                o0 += c[0]
            }
            return true
        }
    }
}
