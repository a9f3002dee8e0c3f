import CHDF5

extension HDF5File {
    /// Reads the rows `runs` (ascending, non-overlapping ranges along the first dimension) of a
    /// dataset in one HDF5 read, concatenated in that order and converted to T.
    ///
    /// One read with a union of hyperslabs visits each storage chunk once, where one read per run
    /// would decompress a compressed chunk again for every run that touches it.
    func read<T: HDF5MemoryScalar & Numeric>(_ path: String, as: T.Type, rowRuns runs: [Range<Int>]) throws -> [T] {
        try HDF5Library.sync {
            guard isDataset(path) else { throw error(.schema, path, exists(path) ? "is not a dataset" : "missing") }
            let dsID = H5Dopen2(fileID, path, bw_H5P_DEFAULT())
            guard dsID >= 0 else { throw error(.io, path, "cannot open dataset") }
            let ds = H5Handle(dsID, .dataset)
            let space = H5Handle(H5Dget_space(ds.id), .dataspace)
            let rank = Int(H5Sget_simple_extent_ndims(space.id))
            var dims = [hsize_t](repeating: 0, count: max(rank, 1))
            H5Sget_simple_extent_dims(space.id, &dims, nil)
            guard rank >= 1 else { throw error(.invalidArgument, path, "cannot select rows of a scalar dataset") }
            let rowElements = dims.dropFirst().reduce(1) { $0 * Int($1) }
            let rows = runs.reduce(0) { $0 + $1.count }
            var out = [T](repeating: 0, count: rows * rowElements)
            if rows == 0 { return out }
            guard runs.allSatisfy({ $0.lowerBound >= 0 && $0.upperBound <= Int(dims[0]) }) else {
                throw error(.invalidArgument, path, "rows outside 0..<\(dims[0])")
            }
            H5Sselect_none(space.id)
            for r in runs where !r.isEmpty {
                var start = [hsize_t](repeating: 0, count: rank)
                var count = dims
                start[0] = hsize_t(r.lowerBound)
                count[0] = hsize_t(r.count)
                guard H5Sselect_hyperslab(space.id, H5S_SELECT_OR, &start, nil, &count, nil) >= 0 else {
                    throw error(.io, path, "cannot select clips")
                }
            }
            var memDims = dims
            memDims[0] = hsize_t(rows)
            let mem = H5Handle(H5Screate_simple(Int32(rank), &memDims, nil), .dataspace)
            let status = out.withUnsafeMutableBufferPointer { p in
                H5Dread(ds.id, T.memoryType, mem.id, space.id, bw_H5P_DEFAULT(), p.baseAddress)
            }
            guard status >= 0 else { throw error(.io, path, "cannot read (the file may be truncated or damaged)") }
            return out
        }
    }
}
