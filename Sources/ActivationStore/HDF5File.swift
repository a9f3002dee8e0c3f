import CHDF5
import Glibc

/// Element types that the store reads and writes.
public enum ElementType: String, Sendable, Codable, CaseIterable {
    case float16, float32, float64, int64, uint8

    public var byteCount: Int {
        switch self {
        case .float16: return 2
        case .float32: return 4
        case .float64: return 8
        case .int64: return 8
        case .uint8: return 1
        }
    }
}

/// What a dataset or attribute holds, as HDF5 reports it.
struct StoredType: Equatable {
    enum Class: String, Equatable { case float, integer, string, other }
    var typeClass: Class
    var bytes: Int
    var isVariableString = false

    var elementType: ElementType? {
        switch (typeClass, bytes) {
        case (.float, 2): return .float16
        case (.float, 4): return .float32
        case (.float, 8): return .float64
        case (.integer, 8): return .int64
        case (.integer, 1): return .uint8
        default: return nil
        }
    }

    var readable: String {
        switch typeClass {
        case .float: return "float\(bytes * 8)"
        case .integer: return "int\(bytes * 8)"
        case .string: return isVariableString ? "variable-length string" : "fixed-length string"
        case .other: return "unsupported type"
        }
    }
}

/// Native memory types for Swift scalars.
protocol HDF5MemoryScalar { static var memoryType: hid_t { get } }
extension Float: HDF5MemoryScalar { static var memoryType: hid_t { bw_H5T_NATIVE_FLOAT() } }
extension Double: HDF5MemoryScalar { static var memoryType: hid_t { bw_H5T_NATIVE_DOUBLE() } }
extension Int64: HDF5MemoryScalar { static var memoryType: hid_t { bw_H5T_NATIVE_INT64() } }
extension UInt8: HDF5MemoryScalar { static var memoryType: hid_t { bw_H5T_NATIVE_UINT8() } }

/// A thin wrapper over one open HDF5 file. Internal: only the store touches HDF5.
///
/// Every method takes the library lock. Errors name `displayName` and the object path.
final class HDF5File: @unchecked Sendable {
    /// Largest string attribute read (bytes): the config JSON is the longest the format has.
    static let maxStringBytes = 4 << 20
    /// Largest integer attribute read (values): block_ends is the only array attribute.
    static let maxAttributeElements = 1 << 16

    let displayName: String
    private let file: H5Handle
    /// Variable-length strings (root attributes, string datasets) already read by the structure guard's
    /// child process (`StructureGuard.Preread`): answered from here, they are never converted in this
    /// process. libhdf5 1.10 copies a global-heap object of the size the heap declares into a buffer
    /// of the size the string's descriptor declares, so a damaged file can overwrite memory while the
    /// read "succeeds"; in the child that harms nothing the parent relies on.
    var preread: StructureGuard.Preread?
    /// Set in the guard's child: every variable-length string read successfully is recorded here.
    nonisolated(unsafe) static var recorder: StructureGuard.Preread? = nil

    private init(file: H5Handle, displayName: String) {
        self.file = file
        self.displayName = displayName
    }

    var fileID: hid_t { file.id }

    func close() throws {
        let status = file.close()
        if status < 0 { throw error(.io, nil, "could not close the file cleanly") }
    }

    func error(_ kind: ActivationStoreError.Kind, _ object: String?, _ message: String) -> ActivationStoreError {
        ActivationStoreError(kind, file: displayName, object: object, message)
    }

    private func hdf5Error(_ object: String?, _ what: String) -> ActivationStoreError {
        let detail = HDF5Library.lastErrorMessage().map { " (\($0))" } ?? ""
        return error(.io, object, what + detail)
    }

    /// The product of `xs`, or nil when it overflows Int (or a factor is negative).
    static func product(_ xs: [Int]) -> Int? {
        var p = 1
        for x in xs {
            guard x >= 0 else { return nil }
            let (r, overflow) = p.multipliedReportingOverflow(by: x)
            if overflow { return nil }
            p = r
        }
        return p
    }

    // MARK: opening

    static func create(path: String, displayName: String) throws -> HDF5File {
        try HDF5Library.sync {
            let fcpl = H5Handle(H5Pcreate(bw_H5P_FILE_CREATE()), .plist)
            // No timestamps in object headers: identical content gives identical bytes.
            H5Pset_obj_track_times(fcpl.id, false)
            // The HDF5 1.10 file format: superblock, object headers and indexes carry checksums, so a
            // damaged file is refused with an error instead of being parsed (h5py reads it as usual).
            let fapl = H5Handle(H5Pcreate(bw_H5P_FILE_ACCESS()), .plist)
            H5Pset_libver_bounds(fapl.id, H5F_LIBVER_V110, H5F_LIBVER_V110)
            let id = H5Fcreate(path, bw_H5F_ACC_EXCL(), fcpl.id, fapl.id)
            guard id >= 0 else {
                let detail = HDF5Library.lastErrorMessage().map { " (\($0))" } ?? ""
                throw ActivationStoreError(.io, file: displayName, "cannot create file\(detail)")
            }
            return HDF5File(file: H5Handle(id, .file), displayName: displayName)
        }
    }

    /// The identity (device, inode, size, change time) of the file this handle has open, from the
    /// descriptor libhdf5 holds; nil when the driver keeps none.
    /// (Files are opened with the default driver, sec2, whose handle is the int descriptor.)
    var openIdentity: FileIdentity? {
        HDF5Library.sync {
            let fapl = H5Handle(H5Fget_access_plist(file.id), .plist)
            guard H5Pget_driver(fapl.id) == bw_H5FD_SEC2() else { return nil }
            var handle: UnsafeMutableRawPointer? = nil
            guard H5Fget_vfd_handle(file.id, bw_H5P_DEFAULT(), &handle) >= 0, let handle else { return nil }
            return FileIdentity(descriptor: handle.load(as: Int32.self))
        }
    }

    static func openReadOnly(path: String, displayName: String) throws -> HDF5File {
        try HDF5Library.sync {
            let isHDF5 = H5Fis_hdf5(path)
            if isHDF5 == 0 {
                throw ActivationStoreError(.notHDF5, file: displayName, "not an HDF5 file")
            }
            let id = H5Fopen(path, bw_H5F_ACC_RDONLY(), bw_H5P_DEFAULT())
            guard isHDF5 > 0, id >= 0 else {
                let detail = HDF5Library.lastErrorMessage().map { " (\($0))" } ?? ""
                throw ActivationStoreError(.cannotOpen, file: displayName,
                                           "cannot open as HDF5; the file may be truncated or damaged\(detail)")
            }
            return HDF5File(file: H5Handle(id, .file), displayName: displayName)
        }
    }

    // MARK: structure

    /// True when every component of `path` exists (H5Lexists needs each step checked).
    func exists(_ path: String) -> Bool {
        HDF5Library.sync {
            var prefix = ""
            for part in path.split(separator: "/") {
                prefix += "/" + part
                let r = H5Lexists(file.id, prefix, bw_H5P_DEFAULT())
                if r < 0 { noteDamage() }
                if r <= 0 { return false }
            }
            return true
        }
    }

    /// Why `path` looks absent: nil when it is simply not there, else the HDF5 error met while looking
    /// (damaged metadata, e.g. an incorrect checksum).
    func damageHiding(_ path: String) -> String? {
        HDF5Library.sync {
            damage = nil
            defer { damage = nil }
            if exists(path) {
                _ = isGroup(path)
                if isGroup(path) { _ = childNames(of: path) }
            }
            return damage
        }
    }

    private var damage: String? = nil
    private func noteDamage() {
        let message = HDF5Library.lastErrorMessage() ?? "unreadable metadata"
        if damage == nil { damage = message }
    }

    func isGroup(_ path: String) -> Bool {
        HDF5Library.sync {
            guard path == "/" || exists(path) else { return false }
            var info = H5O_info_t()
            guard H5Oget_info_by_name1(file.id, path, &info, bw_H5P_DEFAULT()) >= 0 else { noteDamage(); return false }
            return info.type == H5O_TYPE_GROUP
        }
    }

    func isDataset(_ path: String) -> Bool {
        HDF5Library.sync {
            guard exists(path) else { return false }
            var info = H5O_info_t()
            guard H5Oget_info_by_name1(file.id, path, &info, bw_H5P_DEFAULT()) >= 0 else { noteDamage(); return false }
            return info.type == H5O_TYPE_DATASET
        }
    }

    /// Link names already read, by group path (under the library lock). libhdf5 1.10 can corrupt its heap
    /// walking a damaged compact link table and crash only on a later walk of the same table; the
    /// structure guard's helper walks each group once, so the parent walks each group once too.
    /// The damage noted during the walk is kept with the names and noted again on every later call.
    private var linkNames: [String: (names: [String]?, damage: String?)] = [:]

    /// Names of the links in a group, in name order; nil if the group does not exist. Read from the file
    /// once per group and open file.
    func childNames(of path: String) -> [String]? {
        HDF5Library.sync {
            if let known = linkNames[path] {
                if damage == nil { damage = known.damage }
                return known.names
            }
            // Past the structure guard: the names of a group its helper listed come from the helper.
            if let names = preread?.links[path] {
                linkNames[path] = (names, nil)
                return names
            }
            let before = damage
            damage = nil
            let names = readChildNames(of: path)
            if let names, damage == nil { HDF5File.recorder?.links[path] = names }
            linkNames[path] = (names, damage)
            if damage == nil { damage = before }
            return names
        }
    }

    private func readChildNames(of path: String) -> [String]? {
        HDF5Library.sync {
            guard isGroup(path) else { return nil }
            let g = H5Gopen2(file.id, path, bw_H5P_DEFAULT())
            guard g >= 0 else { noteDamage(); return nil }
            let group = H5Handle(g, .group)
            var info = H5G_info_t()
            guard H5Gget_info(group.id, &info) >= 0 else { noteDamage(); return nil }
            var names: [String] = []
            for i in 0..<info.nlinks {
                let size = H5Lget_name_by_idx(group.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, bw_H5P_DEFAULT())
                guard size >= 0 else { continue }
                var buf = [CChar](repeating: 0, count: Int(size) + 1)
                H5Lget_name_by_idx(group.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, Int(size) + 1, bw_H5P_DEFAULT())
                names.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            return names
        }
    }

    // MARK: types and shapes

    private func describe(type t: hid_t) -> StoredType {
        let cls = H5Tget_class(t)
        let size = H5Tget_size(t)
        switch cls {
        case H5T_FLOAT: return StoredType(typeClass: .float, bytes: size)
        case H5T_INTEGER: return StoredType(typeClass: .integer, bytes: size)
        case H5T_STRING: return StoredType(typeClass: .string, bytes: size, isVariableString: H5Tis_variable_str(t) > 0)
        default: return StoredType(typeClass: .other, bytes: size)
        }
    }

    func shape(of space: hid_t) -> [Int] {
        (try? shape(of: space, nil)) ?? []
    }

    /// The extent of a dataspace; dimensions beyond Int are refused rather than wrapped.
    private func shape(of space: hid_t, _ object: String?) throws -> [Int] {
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank > 0 else { return [] }
        guard rank <= 32 else { throw error(.schema, object, "has rank \(rank), more than HDF5 allows") }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        H5Sget_simple_extent_dims(space, &dims, nil)
        guard dims.allSatisfy({ $0 <= hsize_t(Int32.max) * 1024 }) else {
            throw error(.schema, object, "declares a dimension of \(dims.max()!), too large to address")
        }
        return dims.map { Int($0) }
    }

    struct DatasetInfo {
        enum Layout { case contiguous, chunked, compact, virtual, other }
        struct Filter { var id: Int32; var name: String; var available: Bool }
        var shape: [Int]
        var type: StoredType
        var chunk: [Int]?
        var layout: Layout = .other
        var filters: [Filter] = []
        /// Bytes allocated in the file for the data (H5Dget_storage_size).
        var storageBytes: Int = 0
        /// Chunks actually stored (chunked layout; walking the chunk index to count them).
        var storedChunks: Int? = nil
        /// Address of contiguous data, when allocated.
        var offset: UInt64? = nil
        /// True for signed integer types.
        var signed = true
    }

    /// Shape, type and storage of a dataset, read from its header and chunk index only.
    func datasetInfo(_ path: String) throws -> DatasetInfo {
        try HDF5Library.sync {
            let ds = try openDataset(path)
            let space = H5Handle(H5Dget_space(ds.id), .dataspace)
            let type = H5Handle(H5Dget_type(ds.id), .datatype)
            let plist = H5Handle(H5Dget_create_plist(ds.id), .plist)
            guard space.id >= 0, type.id >= 0, plist.id >= 0 else { throw hdf5Error(path, "cannot read the dataset header") }
            var info = DatasetInfo(shape: try shape(of: space.id, path), type: describe(type: type.id), chunk: nil)
            if H5Tget_class(type.id) == H5T_INTEGER { info.signed = H5Tget_sign(type.id) != H5T_SGN_NONE }
            switch H5Pget_layout(plist.id) {
            case H5D_CHUNKED:
                info.layout = .chunked
                var dims = [hsize_t](repeating: 0, count: 32)
                let rank = H5Pget_chunk(plist.id, 32, &dims)
                if rank > 0 { info.chunk = dims.prefix(Int(rank)).map { Int(clamping: $0) } }
                var n: hsize_t = 0
                guard H5Dget_num_chunks(ds.id, space.id, &n) >= 0 else {
                    throw hdf5Error(path, "cannot read the chunk index (the file may be truncated or damaged)")
                }
                info.storedChunks = Int(clamping: n)
            case H5D_CONTIGUOUS:
                info.layout = .contiguous
                let address = H5Dget_offset(ds.id)
                if address != haddr_t.max { info.offset = UInt64(address) }
            case H5D_COMPACT: info.layout = .compact
            case H5D_VIRTUAL: info.layout = .virtual
            default: info.layout = .other
            }
            let nfilters = H5Pget_nfilters(plist.id)
            if nfilters > 0 {
                for i in 0..<UInt32(nfilters) {
                    var flags: UInt32 = 0, nelements = 0, config: UInt32 = 0
                    var name = [CChar](repeating: 0, count: 256)
                    let id = H5Pget_filter2(plist.id, i, &flags, &nelements, nil, name.count, &name, &config)
                    guard id >= 0 else { continue }
                    let text = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    info.filters.append(.init(id: id, name: text, available: H5Zfilter_avail(id) > 0))
                }
            }
            info.storageBytes = Int(clamping: H5Dget_storage_size(ds.id))
            return info
        }
    }

    /// Size of the file in bytes, as HDF5 sees it.
    func fileSize() -> Int {
        HDF5Library.sync {
            var size: hsize_t = 0
            return H5Fget_filesize(file.id, &size) >= 0 ? Int(clamping: size) : 0
        }
    }

    func openDataset(_ path: String) throws -> H5Handle {
        guard isDataset(path) else {
            throw error(.schema, path, exists(path) ? "is not a dataset" : "missing")
        }
        let id = H5Dopen2(file.id, path, bw_H5P_DEFAULT())
        guard id >= 0 else { throw hdf5Error(path, "cannot open dataset") }
        return H5Handle(id, .dataset)
    }

    // MARK: attributes (on the root group)

    func attributeExists(_ name: String) -> Bool { lookUpAttribute(name).exists }

    /// The HDF5 error met looking up a root attribute (damaged metadata), nil when the lookup worked.
    func attributeLookupError(_ name: String) -> String? { lookUpAttribute(name).error }

    /// One `H5Aexists` of a root attribute (past the guard, the helper's): whether it exists, and the
    /// error met when the lookup failed.
    private func lookUpAttribute(_ name: String) -> (exists: Bool, error: String?) {
        if let preread, let exists = preread.exists[name] { return (exists, preread.lookupErrors[name]) }
        let (exists, message): (Bool, String?) = HDF5Library.sync {
            let found = H5Aexists(file.id, name)
            return (found > 0, found < 0 ? HDF5Library.lastErrorMessage() ?? "unreadable metadata" : nil)
        }
        HDF5File.recorder?.exists[name] = exists
        if let message { HDF5File.recorder?.lookupErrors[name] = message }
        return (exists, message)
    }

    /// Reads through `read` and, in the structure guard's helper, records the value (`store`) or the
    /// error (under `key` in `failures`) for the parent.
    func recorded<T>(_ key: String, _ read: () throws -> T, store: (inout StructureGuard.Preread, T) -> Void) throws -> T {
        do {
            let value = try read()
            if HDF5File.recorder != nil { store(&HDF5File.recorder!, value) }
            return value
        } catch let e as ActivationStoreError {
            HDF5File.recorder?.failures[key] = .init(e)
            throw e
        }
    }

    /// Past the guard: throws the error the helper met under `key`, if it met one.
    func throwPrereadFailure(_ key: String) throws {
        if let failure = preread?.failures[key] { throw failure.error(file: displayName) }
    }

    private func attributeLabel(_ name: String) -> String { "/ attr \(name)" }

    /// Names of the root group's attributes.
    func attributeNames() -> [String] {
        if let known = preread?.attributeNames { return known }
        let names = readAttributeNames()
        HDF5File.recorder?.attributeNames = names
        return names
    }

    private func readAttributeNames() -> [String] {
        HDF5Library.sync {
            var info = H5O_info_t()
            guard H5Oget_info1(file.id, &info) >= 0 else { return [] }
            var names: [String] = []
            for i in 0..<info.num_attrs {
                let size = H5Aget_name_by_idx(file.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, bw_H5P_DEFAULT())
                guard size >= 0 else { continue }
                var buf = [CChar](repeating: 0, count: Int(size) + 1)
                H5Aget_name_by_idx(file.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, Int(size) + 1, bw_H5P_DEFAULT())
                names.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            return names
        }
    }

    func attributeInfo(_ name: String) throws -> (shape: [Int], type: StoredType) {
        let key = "info:" + name
        if let i = preread?.infos[name] {
            return (i.shape, StoredType(typeClass: StoredType.Class(rawValue: i.typeClass) ?? .other, bytes: i.bytes, isVariableString: i.variableString))
        }
        try throwPrereadFailure(key)
        return try recorded(key, { try readAttributeInfo(name) }) { record, info in
            record.infos[name] = .init(shape: info.shape, typeClass: info.type.typeClass.rawValue, bytes: info.type.bytes,
                                       variableString: info.type.isVariableString)
        }
    }

    private func readAttributeInfo(_ name: String) throws -> (shape: [Int], type: StoredType) {
        try HDF5Library.sync {
            let a = try openAttribute(name)
            let space = H5Handle(H5Aget_space(a.id), .dataspace)
            let type = H5Handle(H5Aget_type(a.id), .datatype)
            return (shape(of: space.id), describe(type: type.id))
        }
    }

    private func openAttribute(_ name: String) throws -> H5Handle {
        let found = H5Aexists(file.id, name)
        if found < 0 {
            let detail = HDF5Library.lastErrorMessage() ?? "unreadable metadata"
            throw error(.schema, attributeLabel(name), "cannot be read: damaged HDF5 metadata (\(detail))")
        }
        guard found > 0 else { throw error(.schema, attributeLabel(name), "missing") }
        let id = H5Aopen(file.id, name, bw_H5P_DEFAULT())
        guard id >= 0 else { throw hdf5Error(attributeLabel(name), "cannot open attribute") }
        return H5Handle(id, .attribute)
    }

    /// A scalar string attribute, variable- or fixed-length.
    ///
    /// With `preread` (a file past the structure guard) the value, or the error, is the guard's child's:
    /// a string attribute is never converted in this process. An attribute the child did not read is
    /// refused, unless it does not exist (the usual "missing" error).
    func readStringAttribute(_ name: String) throws -> String {
        if let preread {
            if let value = preread.attributes[name] { return value }
            try throwPrereadFailure(name)
            guard attributeExists(name) else { _ = try openAttribute(name); throw error(.schema, attributeLabel(name), "missing") }
            throw error(.damaged, attributeLabel(name), "was not read by the file's structure check")
        }
        return try recorded(name, { try readStringAttributeFromFile(name) }) { $0.attributes[name] = $1 }
    }

    private func readStringAttributeFromFile(_ name: String) throws -> String {
        try HDF5Library.sync {
            let a = try openAttribute(name)
            let space = H5Handle(H5Aget_space(a.id), .dataspace)
            guard H5Sget_simple_extent_npoints(space.id) == 1 else {
                throw error(.schema, attributeLabel(name), "expected one string, found an array")
            }
            let fileType = H5Handle(H5Aget_type(a.id), .datatype)
            guard H5Tget_class(fileType.id) == H5T_STRING else {
                throw error(.schema, attributeLabel(name), "expected a string, found \(describe(type: fileType.id).readable)")
            }
            if H5Tis_variable_str(fileType.id) > 0 {
                let mem = H5Handle(H5Tcopy(bw_H5T_C_S1()), .datatype)
                H5Tset_size(mem.id, bw_H5T_VARIABLE())
                H5Tset_cset(mem.id, H5Tget_cset(fileType.id))
                var ptr: UnsafeMutablePointer<CChar>? = nil
                guard H5Aread(a.id, mem.id, &ptr) >= 0 else { throw hdf5Error(attributeLabel(name), "cannot read") }
                defer { if let ptr { H5free_memory(ptr) } }
                guard let ptr else { return "" }
                let length = strnlen(ptr, HDF5File.maxStringBytes + 1)
                guard length <= HDF5File.maxStringBytes else {
                    throw error(.schema, attributeLabel(name), "holds a string longer than the \(HDF5File.maxStringBytes) bytes allowed")
                }
                return String(decoding: UnsafeRawBufferPointer(start: ptr, count: length), as: UTF8.self)
            } else {
                let size = H5Tget_size(fileType.id)
                guard size <= HDF5File.maxStringBytes else {
                    throw error(.schema, attributeLabel(name), "declares a string of \(size) bytes, more than the \(HDF5File.maxStringBytes) allowed")
                }
                var buf = [CChar](repeating: 0, count: size + 1)
                guard H5Aread(a.id, fileType.id, &buf) >= 0 else { throw hdf5Error(attributeLabel(name), "cannot read") }
                return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
    }

    /// An integer attribute, scalar or one-dimensional, converted to Int64 (past the guard, the helper's).
    func readIntAttribute(_ name: String) throws -> [Int] {
        let key = "int:" + name
        if let values = preread?.ints[name] { return values }
        try throwPrereadFailure(key)
        return try recorded(key, { try readIntAttributeFromFile(name) }) { $0.ints[name] = $1 }
    }

    private func readIntAttributeFromFile(_ name: String) throws -> [Int] {
        try HDF5Library.sync {
            let a = try openAttribute(name)
            let fileType = H5Handle(H5Aget_type(a.id), .datatype)
            guard H5Tget_class(fileType.id) == H5T_INTEGER else {
                throw error(.schema, attributeLabel(name), "expected int64, found \(describe(type: fileType.id).readable)")
            }
            let space = H5Handle(H5Aget_space(a.id), .dataspace)
            let count = Int(H5Sget_simple_extent_npoints(space.id))
            guard (0...HDF5File.maxAttributeElements).contains(count) else {
                throw error(.schema, attributeLabel(name), "declares \(count) values; an integer attribute holds at most \(HDF5File.maxAttributeElements)")
            }
            var values = [Int64](repeating: 0, count: count)
            if count > 0 {
                guard H5Aread(a.id, bw_H5T_NATIVE_INT64(), &values) >= 0 else {
                    throw hdf5Error(attributeLabel(name), "cannot read")
                }
            }
            return values.map { Int($0) }
        }
    }

    func writeStringAttribute(_ name: String, _ value: String) throws {
        try HDF5Library.sync {
            let type = H5Handle(H5Tcopy(bw_H5T_C_S1()), .datatype)
            H5Tset_size(type.id, bw_H5T_VARIABLE())
            H5Tset_cset(type.id, H5T_CSET_UTF8)
            let space = H5Handle(H5Screate(H5S_SCALAR), .dataspace)
            let aid = H5Acreate2(file.id, name, type.id, space.id, bw_H5P_DEFAULT(), bw_H5P_DEFAULT())
            guard aid >= 0 else { throw hdf5Error(attributeLabel(name), "cannot create attribute") }
            let attr = H5Handle(aid, .attribute)
            let status: herr_t = value.withCString { cstr in
                var p: UnsafePointer<CChar>? = cstr
                return H5Awrite(attr.id, type.id, &p)
            }
            guard status >= 0 else { throw hdf5Error(attributeLabel(name), "cannot write attribute") }
        }
    }

    /// Writes an int64 attribute: scalar when `shape` is nil, else one-dimensional.
    func writeIntAttribute(_ name: String, _ values: [Int], scalar: Bool) throws {
        try HDF5Library.sync {
            precondition(!scalar || values.count == 1)
            let space: H5Handle
            if scalar {
                space = H5Handle(H5Screate(H5S_SCALAR), .dataspace)
            } else {
                var dims = [hsize_t(values.count)]
                space = H5Handle(H5Screate_simple(1, &dims, nil), .dataspace)
            }
            let aid = H5Acreate2(file.id, name, bw_H5T_STD_I64LE(), space.id, bw_H5P_DEFAULT(), bw_H5P_DEFAULT())
            guard aid >= 0 else { throw hdf5Error(attributeLabel(name), "cannot create attribute") }
            let attr = H5Handle(aid, .attribute)
            var v = values.map { Int64($0) }
            guard H5Awrite(attr.id, bw_H5T_NATIVE_INT64(), &v) >= 0 else {
                throw hdf5Error(attributeLabel(name), "cannot write attribute")
            }
        }
    }

    // MARK: datasets

    private func fileType(for element: ElementType) -> H5Handle {
        switch element {
        case .float16: return H5Handle(bw_make_float16_type(), .datatype)
        case .float32: return H5Handle(H5Tcopy(bw_H5T_IEEE_F32LE()), .datatype)
        case .float64: return H5Handle(H5Tcopy(bw_H5T_IEEE_F64LE()), .datatype)
        case .int64: return H5Handle(H5Tcopy(bw_H5T_STD_I64LE()), .datatype)
        case .uint8: return H5Handle(H5Tcopy(bw_H5T_NATIVE_UINT8()), .datatype)
        }
    }

    /// Creates a dataset (and any missing parent groups); chunked when `chunk` is given.
    func createDataset(_ path: String, shape: [Int], type element: ElementType, chunk: [Int]? = nil) throws {
        try HDF5Library.sync {
            var dims = shape.map { hsize_t($0) }
            let space = H5Handle(H5Screate_simple(Int32(dims.count), &dims, nil), .dataspace)
            // Parent groups are made here rather than as HDF5 intermediates, so that they too carry no
            // timestamps (the 1.10 format's object headers would store them).
            let gcpl = H5Handle(H5Pcreate(bw_H5P_GROUP_CREATE()), .plist)
            H5Pset_obj_track_times(gcpl.id, false)
            var prefix = ""
            for part in path.split(separator: "/").dropLast() {
                prefix += "/" + part
                if H5Lexists(file.id, prefix, bw_H5P_DEFAULT()) > 0 { continue }
                let g = H5Gcreate2(file.id, prefix, bw_H5P_DEFAULT(), gcpl.id, bw_H5P_DEFAULT())
                guard g >= 0 else { throw hdf5Error(prefix, "cannot create group") }
                H5Gclose(g)
            }
            let lcpl = H5Handle(H5Pcreate(bw_H5P_LINK_CREATE()), .plist)
            let dcpl = H5Handle(H5Pcreate(bw_H5P_DATASET_CREATE()), .plist)
            H5Pset_obj_track_times(dcpl.id, false)
            if let chunk, shape.allSatisfy({ $0 > 0 }) {
                var c = chunk.map { hsize_t($0) }
                H5Pset_chunk(dcpl.id, Int32(c.count), &c)
            }
            let type = fileType(for: element)
            let id = H5Dcreate2(file.id, path, type.id, space.id, lcpl.id, dcpl.id, bw_H5P_DEFAULT())
            guard id >= 0 else { throw hdf5Error(path, "cannot create dataset") }
            H5Dclose(id)
        }
    }

    /// Writes `values` into the box `start ..< start+count` of a dataset (the whole dataset when nil).
    ///
    /// Floats going into a float16 dataset are rounded here (to nearest, ties to even, as IEEE 754 and
    /// numpy do) and written as they are stored. HDF5 1.10.8's own float32 → float16 conversion rounds
    /// ties up, clamps values past the largest half (65504) instead of giving infinity, and inside long
    /// arrays halves some values just below a power of two (0.4999 becomes 0.25: 41 of 100,000 uniform
    /// values in [−1, 1] written through it, RoundTripTests).
    func write<T: HDF5MemoryScalar>(_ path: String, _ values: [T], start: [Int]? = nil, count: [Int]? = nil) throws {
        try HDF5Library.sync {
            let ds = try openDataset(path)
            let (fileSpace, memSpace) = try selection(ds, path, start: start, count: count, elements: values.count)
            func put(_ memoryType: hid_t, _ p: UnsafeRawPointer?) -> herr_t {
                H5Dwrite(ds.id, memoryType, memSpace?.id ?? bw_H5S_ALL(), fileSpace?.id ?? bw_H5S_ALL(), bw_H5P_DEFAULT(), p)
            }
            let stored = H5Handle(H5Dget_type(ds.id), .datatype)
            let status: herr_t
            if stored.id >= 0, H5Tget_class(stored.id) == H5T_FLOAT, H5Tget_size(stored.id) == 2,
               H5Tget_order(stored.id) == H5T_ORDER_LE, let halves = HDF5File.halfPrecision(values) {
                status = halves.withUnsafeBytes { put(stored.id, $0.baseAddress) }
            } else {
                status = values.withUnsafeBytes { put(T.memoryType, $0.baseAddress) }
            }
            guard status >= 0 else { throw hdf5Error(path, "cannot write") }
        }
    }

    /// Float or Double values rounded to float16 (IEEE 754 round to nearest, ties to even); nil for
    /// other element types.
    static func halfPrecision<T>(_ values: [T]) -> [Float16]? {
        if let v = values as? [Float] { return v.map { Float16($0) } }
        if let v = values as? [Double] { return v.map { Float16($0) } }
        return nil
    }

    /// Reads the box `start ..< start+count` of a dataset (the whole dataset when nil), converted to T.
    func read<T: HDF5MemoryScalar & Numeric>(_ path: String, as: T.Type, start: [Int]? = nil, count: [Int]? = nil) throws -> [T] {
        try HDF5Library.sync {
            let ds = try openDataset(path)
            let space = H5Handle(H5Dget_space(ds.id), .dataspace)
            guard let total = count.map(HDF5File.product) ?? Int(exactly: H5Sget_simple_extent_npoints(space.id)),
                  total >= 0, total <= Int.max / 8 else {
                throw error(.schema, path, "the selection is too large to address")
            }
            var out = [T](repeating: 0, count: total)
            if total == 0 { return out }
            let (fileSpace, memSpace) = try selection(ds, path, start: start, count: count, elements: total)
            // Whole rows of float32 in unfiltered chunks: straight from the chunks (HDF5File+WholeChunks).
            if T.self == Float.self, let start, let count,
               out.withUnsafeMutableBufferPointer({ p in
                   p.withMemoryRebound(to: Float.self) { readWholeChunks(ds, start: start, count: count, into: $0) }
               }) {
                return out
            }
            let status = out.withUnsafeMutableBufferPointer { p in
                H5Dread(ds.id, T.memoryType, memSpace?.id ?? bw_H5S_ALL(), fileSpace?.id ?? bw_H5S_ALL(),
                        bw_H5P_DEFAULT(), p.baseAddress)
            }
            guard status >= 0 else { throw hdf5Error(path, "cannot read (the file may be truncated or damaged)") }
            return out
        }
    }

    private func selection(_ ds: H5Handle, _ path: String, start: [Int]?, count: [Int]?, elements: Int) throws
        -> (H5Handle?, H5Handle?)
    {
        let space = H5Handle(H5Dget_space(ds.id), .dataspace)
        let dims = shape(of: space.id)
        guard let start, let count else {
            guard HDF5File.product(dims) == elements else { throw error(.invalidArgument, path, "expected \(dims) values, got \(elements)") }
            return (nil, nil)
        }
        guard start.count == dims.count, count.count == dims.count,
              zip(zip(start, count), dims).allSatisfy({ $0.0 >= 0 && $0.1 >= 0 && $0.0 <= $1 - $0.1 }) else {
            throw error(.invalidArgument, path, "selection start \(start) count \(count) outside shape \(dims)")
        }
        guard HDF5File.product(count) == elements else {
            throw error(.invalidArgument, path, "selection holds \(count) values, buffer \(elements)")
        }
        var s = start.map { hsize_t($0) }
        var c = count.map { hsize_t($0) }
        guard H5Sselect_hyperslab(space.id, H5S_SELECT_SET, &s, nil, &c, nil) >= 0 else {
            throw hdf5Error(path, "cannot select clips")
        }
        let mem = H5Handle(H5Screate_simple(Int32(c.count), &c, nil), .dataspace)
        return (space, mem)
    }
}
