import CHDF5
import Foundation

/// Serialises every HDF5 call: the library (Debian's serial build) is not thread-safe.
///
/// The lock is recursive so that a wrapper holding it may call another wrapper.
/// HDF5's automatic error printing is switched off on every thread that calls in;
/// failures come back as `ActivationStoreError`s that name the file and the object.
enum HDF5Library {
    private static let lock: NSRecursiveLock = {
        let l = NSRecursiveLock()
        l.name = "bwssl.hdf5"
        return l
    }()
    nonisolated(unsafe) private static var initialised = false

    static func sync<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        if !initialised {
            // No clean-up at exit: HDF5's would close every identifier still open, and a file whose close
            // already failed (a full disk) makes it crash. Writers close or abandon their files
            // themselves, and nothing read needs flushing.
            H5dont_atexit()
            H5open()
            initialised = true
        }
        // Automatic error printing is a per-thread setting when libhdf5 is built thread-safe (Debian's
        // is), so it is switched off on whichever thread calls in: analyses read on worker threads.
        H5Eset_auto2(bw_H5E_DEFAULT(), nil, nil)
        return try body()
    }

    /// Set once an HDF5 error stack reported a failed memory allocation (read by the guard's helper,
    /// whose address space is limited: the parent, unlimited, would allocate that memory).
    nonisolated(unsafe) static var allocationFailed = false

    /// An HDF5 error description as one short line: the low-level file driver's (`file write failed: time =
    /// …, filename = …, errno = 28, error message = 'No space left on device', …`, with a line break in
    /// it) becomes `file write failed: No space left on device`; other line breaks become spaces.
    static func oneLine(_ message: String) -> String {
        if let tag = message.range(of: "error message = '"),
           let end = message[tag.upperBound...].firstIndex(of: "'") {
            let head = message[..<tag.lowerBound].split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
            let reason = String(message[tag.upperBound..<end])
            return head.isEmpty || head.contains("=") ? reason : "\(head.trimmingCharacters(in: .whitespacesAndNewlines)): \(reason)"
        }
        return message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// The innermost message on HDF5's error stack, if any (e.g. "unable to open file").
    static func lastErrorMessage() -> String? {
        final class Box { var message: String? }
        let box = Box()
        let walker: H5E_walk2_t = { _, desc, data in
            guard let desc, let data else { return 0 }
            let box = Unmanaged<Box>.fromOpaque(data).takeUnretainedValue()
            if let m = desc.pointee.desc {
                box.message = HDF5Library.oneLine(String(cString: m))
                if box.message!.contains("allocat") { HDF5Library.allocationFailed = true }
            }
            return 0
        }
        let opaque = Unmanaged.passUnretained(box).toOpaque()
        H5Ewalk2(bw_H5E_DEFAULT(), H5E_WALK_DOWNWARD, walker, opaque)
        H5Eclear2(bw_H5E_DEFAULT())
        return box.message
    }
}

/// An owned HDF5 identifier, closed with the matching H5?close when released.
final class H5Handle: @unchecked Sendable {
    enum Kind { case file, group, dataset, dataspace, datatype, attribute, plist }
    let id: hid_t
    let kind: Kind

    init(_ id: hid_t, _ kind: Kind) {
        self.id = id
        self.kind = kind
    }

    /// Closes now (idempotence is the caller's concern: call at most once, then drop the handle).
    private var closed = false
    @discardableResult
    func close() -> herr_t {
        HDF5Library.sync {
            guard !closed else { return 0 }
            closed = true
            switch kind {
            case .file: return H5Fclose(id)
            case .group: return H5Gclose(id)
            case .dataset: return H5Dclose(id)
            case .dataspace: return H5Sclose(id)
            case .datatype: return H5Tclose(id)
            case .attribute: return H5Aclose(id)
            case .plist: return H5Pclose(id)
            }
        }
    }

    deinit { close() }
}
