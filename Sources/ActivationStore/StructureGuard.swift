import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Reads an untrusted file's structure in a child process first, so that libhdf5 crashing, hanging or
/// exhausting memory on damaged metadata ends as a one-line error instead of taking the tool down.
///
/// libhdf5 1.10 can dereference corrupt addresses or loop forever while parsing damaged object headers,
/// global heaps or chunk indexes; nothing in-process can catch that. So before a file is opened for
/// real, a helper process (the same executable, see `helper`) opens it, runs the whole structural pass
/// (`SchemaInspection`: attributes, every dataset header and chunk index, labels and positions, string
/// clip ids) under a CPU-time and address-space limit, and exits. A helper killed by a signal, past its
/// time limit or out of memory makes the file "damaged".
///
/// The helper writes back what the parent must not read itself (`Preread`): every variable-length
/// string it read (root attributes, string datasets), the link names of every group it listed, and the
/// identity of the file it had open. Those
/// strings are the reads that can corrupt memory without failing (a global-heap object larger than its
/// descriptor says is copied whole), so a helper surviving them proves nothing about the parent; the
/// parent takes them from the helper instead. The parent then opens the file and checks that the file
/// it has open is the one the helper read (device, inode, size, change time, from the descriptors), so
/// a file swapped between the check and the open is refused. Its other structural reads repeat the
/// helper's; data reads follow indexes the helper already walked, through the type conversions it
/// already exercised on one clip of every dataset.
///
/// Library users who trust their files (and the library's own tests) leave `helper` nil: no child.
public enum StructureGuard {
    /// argv of the helper, to which the file path is appended; nil disables the guard.
    nonisolated(unsafe) public static var helper: [String]? = nil
    /// Wall-clock and CPU limit of the helper, in seconds. Healthy files need well under a second; the
    /// parent repeats the pass, so twice the limit must stay well below the 10 s that count as a hang.
    nonisolated(unsafe) public static var timeLimit: Double = 3
    /// Address-space limit of the helper, in bytes.
    nonisolated(unsafe) public static var memoryLimit: Int = 2 << 30

    /// Exit status of a helper that finished its pass (schema findings are reported by the parent).
    static let passed: Int32 = 0
    /// Exit status of a helper in which libhdf5 failed to allocate memory within the limit.
    static let outOfMemory: Int32 = 3

    /// What the helper read for the parent: the variable-length strings, and the file it read them from.
    public struct Preread: Codable, Sendable, Equatable {
        /// `FileIdentity.description` of the file the helper had open; nil when it could not open it.
        public var identity: String?
        /// Root string attributes by name.
        public var attributes: [String: String] = [:]
        /// String datasets by path.
        public var datasets: [String: [String]] = [:]
        /// Attributes (by name) and datasets (by path) the helper could not read, with the error it met.
        public var failures: [String: Failure] = [:]
        /// The link names of every group the helper listed, by group path: walking a damaged link table
        /// can corrupt libhdf5's heap without failing, so the parent takes the names from here.
        public var links: [String: [String]] = [:]
        /// The root attributes' names, which exist, the lookup errors met (by name), each attribute's shape
        /// and type, and integer values: a damaged attribute message can be decoded out of bounds without
        /// failing, so past the guard the parent decodes none itself that the helper decoded.
        public var attributeNames: [String]? = nil
        public var exists: [String: Bool] = [:]
        public var lookupErrors: [String: String] = [:]
        public var infos: [String: AttributeInfo] = [:]
        public var ints: [String: [Int]] = [:]

        /// An attribute's shape and stored type, as the helper found them.
        public struct AttributeInfo: Codable, Sendable, Equatable {
            public var shape: [Int]
            public var typeClass: String
            public var bytes: Int
            public var variableString: Bool
        }

        public init(identity: String? = nil) { self.identity = identity }

        /// A read that failed in the helper: the parent reports the same error.
        public struct Failure: Codable, Sendable, Equatable {
            public var kind: String
            public var object: String?
            public var message: String

            init(_ e: ActivationStoreError) {
                kind = e.kind.rawValue
                object = e.object
                message = e.message
            }

            func error(file: String) -> ActivationStoreError {
                ActivationStoreError(ActivationStoreError.Kind(rawValue: kind) ?? .damaged, file: file, object: object, message)
            }
        }
    }

    /// Largest output a helper may write back (the strings it read): 64 MiB.
    static let maxPrereadBytes = 64 << 20

    /// Runs the structural pass of `path` in the helper, when one is configured.
    ///
    /// - Returns: what the helper read for the parent; nil without a helper.
    /// - Throws: `ActivationStoreError(.damaged)` naming the file when the helper died, hung or ran out of memory.
    static func check(_ path: String) throws -> Preread? {
        guard let helper, !helper.isEmpty else { return nil }
        // A file already passed in this process (same device, inode, size and change time) is not re-read.
        if let identity = FileIdentity(path: path), let known = passedFiles.withLock({ $0[identity] }) { return known }
        guard let preread = try run(helper + [path], path) else { return nil }
        if let text = preread.identity, let identity = FileIdentity(argument: text) {
            passedFiles.withLock { $0[identity] = preread }
        }
        return preread
    }

    private static let passedFiles = Mutex<[FileIdentity: Preread]>([:])

    /// Runs the helper on `path`; its output decoded, or nil when no helper could be started.
    private static func run(_ argv: [String], _ path: String) throws -> Preread? {
        var ends: [Int32] = [-1, -1]
        // A socket pair, close-on-exec from the start: helpers started concurrently on other threads must
        // not inherit it (the helper's end becomes its standard output).
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw damaged(path, "its structure check could not be started (\(String(cString: strerror(errno))))")
        }
        let (readEnd, writeEnd) = (ends[0], ends[1])
        defer { close(readEnd) }
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
        let spawned = spawnHelper(argv, output: writeEnd)
        close(writeEnd)
        guard let pid = spawned else {
            // No helper, no guard: reading goes on in-process rather than refusing every file.
            return nil
        }
        var output = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var received = false
        /// Reads what the helper wrote so far; false when it wrote more than allowed.
        func drain() -> Bool {
            while true {
                let n = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                if n > 0 {
                    output += chunk[0..<n]
                    received = true
                    if output.count > maxPrereadBytes { return false }
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    return true
                }
            }
        }
        var wstatus: Int32 = 0
        let deadline = ContinuousClock.now + .seconds(timeLimit)
        var pause: useconds_t = 500
        while true {
            let r = waitpid(pid, &wstatus, WNOHANG)
            let waitError = errno
            received = false
            let withinBound = drain()
            if r == pid { break }
            if r < 0 && waitError != EINTR {
                // The helper's fate is unknown (e.g. SIGCHLD ignored): refuse rather than read unguarded.
                kill(pid, SIGKILL)
                throw damaged(path, "its structure check could not be waited for (\(String(cString: strerror(waitError))))")
            }
            if !withinBound {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &wstatus, 0)
                throw damaged(path, "its strings exceed \(maxPrereadBytes >> 20) MiB")
            }
            if ContinuousClock.now > deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &wstatus, 0)
                throw damaged(path, "reading its structure did not finish within \(Int(timeLimit)) s")
            }
            if received {
                pause = 500
                continue
            }
            usleep(pause)
            pause = min(pause * 2, 20_000)
        }
        guard drain() else { throw damaged(path, "its strings exceed \(maxPrereadBytes >> 20) MiB") }
        let exited = (wstatus & 0x7F) == 0
        if exited {
            let code = (wstatus >> 8) & 0xFF
            if code == passed {
                guard let preread = try? JSONDecoder().decode(Preread.self, from: Data(output)) else {
                    throw damaged(path, "reading its structure gave no readable result")
                }
                return preread
            }
            if code == outOfMemory {
                throw damaged(path, "reading its structure needs more than \(memoryLimit >> 30) GiB of memory")
            }
            throw damaged(path, "reading its structure failed (exit status \(code))")
        }
        let signal = wstatus & 0x7F
        switch signal {
        case SIGXCPU, SIGKILL: throw damaged(path, "reading its structure did not finish within \(Int(timeLimit)) s")
        default: throw damaged(path, "reading its structure crashed the HDF5 library (signal \(signal))")
        }
    }

    /// Starts `argv` (argv[0] a path) as a helper process: standard input and error on /dev/null,
    /// standard output on `output` (default /dev/null), this process's environment with Swift's crash
    /// backtrace off (a helper's death is expected on damaged files, and only its status or its output
    /// counts). Returns its pid, or nil when it cannot be started. Descriptors of this process that are
    /// not close-on-exec are inherited.
    public static func spawnHelper(_ argv: [String], output: Int32? = nil) -> pid_t? {
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let output {
            posix_spawn_file_actions_adddup2(&actions, output, 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var env: [UnsafeMutablePointer<CChar>?] = [strdup("SWIFT_BACKTRACE=enable=no")]
        var e = environ
        while let entry = e.pointee {
            if strncmp(entry, "SWIFT_BACKTRACE=", 16) != 0 { env.append(strdup(entry)) }
            e += 1
        }
        env.append(nil)
        defer { for p in env { free(p) } }
        return posix_spawn(&pid, argv[0], &actions, nil, &cargs, &env) == 0 ? pid : nil
    }

    private static func damaged(_ path: String, _ why: String) -> ActivationStoreError {
        ActivationStoreError(.damaged, file: path, "damaged HDF5 file: \(why)")
    }

    /// The helper's side: limits itself, runs the structural pass of `path`, and returns the exit status.
    ///
    /// Only crashes matter here: schema violations and HDF5 errors are the parent's to report.
    ///
    /// The strings it read, and the identity of the file it had open, go to standard output as JSON
    /// (`Preread`) when the pass finishes.
    public static func runHelper(path: String) -> Int32 {
        var cpu = rlimit(rlim_cur: rlim_t(max(1, timeLimit.rounded(.up))), rlim_max: rlim_t(max(1, timeLimit.rounded(.up)) + 1))
        setrlimit(Int32(RLIMIT_CPU.rawValue), &cpu)
        var memory = rlimit(rlim_cur: rlim_t(memoryLimit), rlim_max: rlim_t(memoryLimit))
        setrlimit(Int32(RLIMIT_AS.rawValue), &memory)
        var core = rlimit(rlim_cur: 0, rlim_max: 0)
        setrlimit(Int32(RLIMIT_CORE.rawValue), &core)
        HDF5File.recorder = Preread()
        defer {
            if let record = HDF5File.recorder, let json = try? JSONEncoder().encode(record) {
                json.withUnsafeBytes { bytes in
                    var offset = 0
                    while offset < bytes.count {
                        let n = write(1, bytes.baseAddress! + offset, bytes.count - offset)
                        if n < 0 && errno == EINTR { continue }
                        if n <= 0 { break }
                        offset += n
                    }
                }
            }
        }
        guard let file = try? HDF5File.openReadOnly(path: path, displayName: path) else { return passed }
        HDF5File.recorder?.identity = file.openIdentity?.description
        // The readers called below open the file themselves; in here they must not start helpers of their own.
        helper = nil
        // Every root string attribute, whatever the kind of file (a checkpoint's s_* strings among them).
        for name in file.attributeNames() { _ = try? file.readStringAttribute(name) }
        // Training inputs, read in full by the same code the parent will run: a checkpoint (small), or a
        // clip file's structure, labels and every clip.
        if (try? file.readStringAttribute("format")) == "bwckpt" {
            _ = try? CheckpointFile.read(from: path)
            return HDF5Library.allocationFailed ? outOfMemory : passed
        }
        if file.isDataset(ClipFile.clipsPath) {
            if let clips = try? ClipFile(path: path) {
                for t in clips.targets { _ = try? clips.labels(t) }
                // Every clip, a few at a time: the parent reads them all for training, and a damaged
                // layout can crash the read of any range of them.
                for start in stride(from: 0, to: clips.count, by: 64) { _ = try? clips.pixels(clips: start..<min(start + 64, clips.count)) }
            }
            return HDF5Library.allocationFailed ? outOfMemory : passed
        }
        let inspection = SchemaInspection(file)
        // A virtual dataset mapped into its own file is refused by the parent before any data read;
        // reading it here would only recurse inside libhdf5 until the stack overflows.
        if (try? VirtualSources.sources(of: file, path: path)) == nil { return HDF5Library.allocationFailed ? outOfMemory : passed }
        if file.isDataset(ActivationPaths.clipIDs), (try? file.isStringDataset(ActivationPaths.clipIDs)) == true {
            _ = try? file.readStrings(ActivationPaths.clipIDs)
        }
        // One clip of every token and attention dataset, and the loss curve, through the same type
        // conversion the parent will use for all of them (damaged datatypes crash in conversion).
        if inspection.clips > 0 {
            for depth in 0...inspection.layerCount {
                _ = try? file.read(ActivationPaths.tokens(depth), as: Double.self, start: [0, 0, 0],
                                   count: [1, inspection.tokens, inspection.features])
                _ = try? file.read(ActivationPaths.tokens(depth), as: Float.self, start: [0, 0, 0],
                                   count: [1, inspection.tokens, inspection.features])
            }
        }
        for (depth, a) in inspection.attention where a.clips > 0 {
            _ = try? file.read(ActivationPaths.attention(depth), as: Float.self, start: [0, 0, 0, 0],
                               count: [1, a.heads, a.tokens, a.tokens])
        }
        if inspection.trainingSteps != nil {
            _ = try? file.read(ActivationPaths.trainingStep, as: Int64.self)
            _ = try? file.read(ActivationPaths.trainingLoss, as: Float.self)
        }
        return HDF5Library.allocationFailed ? outOfMemory : passed
    }
}
