import CHDF5
import Foundation

/// Reading string datasets and the source files of virtual datasets (shard indexes).
extension HDF5File {
    private func openDatasetForExtension(_ path: String) throws -> H5Handle {
        guard isDataset(path) else { throw error(.schema, path, exists(path) ? "is not a dataset" : "missing") }
        let id = H5Dopen2(fileID, path, bw_H5P_DEFAULT())
        guard id >= 0 else { throw error(.io, path, "cannot open dataset") }
        return H5Handle(id, .dataset)
    }

    /// True when the dataset's elements are strings (variable- or fixed-length).
    func isStringDataset(_ path: String) throws -> Bool {
        try HDF5Library.sync {
            let ds = try openDatasetForExtension(path)
            let type = H5Handle(H5Dget_type(ds.id), .datatype)
            return H5Tget_class(type.id) == H5T_STRING
        }
    }

    /// A one-dimensional dataset of strings, variable- or fixed-length, as Swift strings.
    ///
    /// With `preread` (a file past the structure guard) the strings, or the error, are the guard's
    /// child's; a string dataset it did not read is refused.
    func readStrings(_ path: String) throws -> [String] {
        if let preread {
            if let values = preread.datasets[path] { return values }
            try throwPrereadFailure(path)
            throw error(.damaged, path, "was not read by the file's structure check")
        }
        return try recorded(path, { try readStringsFromFile(path) }) { $0.datasets[path] = $1 }
    }

    private func readStringsFromFile(_ path: String) throws -> [String] {
        try HDF5Library.sync {
            let ds = try openDatasetForExtension(path)
            let fileType = H5Handle(H5Dget_type(ds.id), .datatype)
            guard H5Tget_class(fileType.id) == H5T_STRING else { throw error(.schema, path, "expected strings") }
            let space = H5Handle(H5Dget_space(ds.id), .dataspace)
            let count = Int(H5Sget_simple_extent_npoints(space.id))
            if count == 0 { return [] }
            if H5Tis_variable_str(fileType.id) > 0 {
                let mem = H5Handle(H5Tcopy(bw_H5T_C_S1()), .datatype)
                H5Tset_size(mem.id, bw_H5T_VARIABLE())
                H5Tset_cset(mem.id, H5Tget_cset(fileType.id))
                var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
                guard H5Dread(ds.id, mem.id, bw_H5S_ALL(), bw_H5S_ALL(), bw_H5P_DEFAULT(), &ptrs) >= 0 else {
                    throw error(.io, path, "cannot read (the file may be truncated or damaged)")
                }
                defer { H5Dvlen_reclaim(mem.id, space.id, bw_H5P_DEFAULT(), &ptrs) }
                return ptrs.map { $0.map { String(cString: $0) } ?? "" }
            }
            let size = H5Tget_size(fileType.id)
            var buf = [CChar](repeating: 0, count: size * count)
            guard H5Dread(ds.id, fileType.id, bw_H5S_ALL(), bw_H5S_ALL(), bw_H5P_DEFAULT(), &buf) >= 0 else {
                throw error(.io, path, "cannot read (the file may be truncated or damaged)")
            }
            return (0..<count).map { i in
                String(decoding: buf[(i * size)..<((i + 1) * size)].prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
    }

    /// The source file names of a virtual dataset as stored (often relative), or nil when the
    /// dataset is not virtual. `.` names the file itself.
    func virtualSourceNames(_ path: String) throws -> [String]? {
        try HDF5Library.sync {
            let ds = try openDatasetForExtension(path)
            let plist = H5Handle(H5Dget_create_plist(ds.id), .plist)
            guard H5Pget_layout(plist.id) == H5D_VIRTUAL else { return nil }
            var count = 0
            guard H5Pget_virtual_count(plist.id, &count) >= 0 else { throw error(.io, path, "cannot read the virtual dataset's mapping") }
            var names: [String] = []
            for i in 0..<count {
                let size = H5Pget_virtual_filename(plist.id, i, nil, 0)
                guard size >= 0 else { throw error(.io, path, "cannot read the virtual dataset's mapping") }
                var buf = [CChar](repeating: 0, count: Int(size) + 1)
                H5Pget_virtual_filename(plist.id, i, &buf, Int(size) + 1)
                let name = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !names.contains(name) { names.append(name) }
            }
            return names
        }
    }
}
