import Foundation

/// The repository root (found from this file's location).
public let repositoryRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
    }
    fatalError("Package.swift not found above \(#filePath)")
}()

/// Path of a committed fixture.
public func fixturePath(_ name: String) -> String {
    repositoryRoot.appendingPathComponent("Fixtures").appendingPathComponent(name).path
}

/// A fresh temporary directory, removed when the returned object is released.
public final class TemporaryDirectory {
    public let path: String
    public init() {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("bwssl-test-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    public func file(_ name: String) -> String { path + "/" + name }
    public var contents: [String] { (try? FileManager.default.contentsOfDirectory(atPath: path))?.sorted() ?? [] }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The result of running a process to completion.
public struct ProcessResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// The directory holding the built products (the test bundle sits beside the executables).
public let productsDirectory: URL = {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [bundle, bundle.deletingLastPathComponent()] where
        FileManager.default.fileExists(atPath: candidate.appendingPathComponent("bwanalyze").path) {
        return candidate
    }
    return repositoryRoot.appendingPathComponent(".build/debug")
}()

/// Runs an executable with arguments and waits for it.
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if let environment { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Read both pipes before waiting so a large output cannot block the child.
    var outData = Data(), errData = Data()
    let group = DispatchGroup()
    let q = DispatchQueue(label: "pipes", attributes: .concurrent)
    nonisolated(unsafe) var o = Data(), e = Data()
    group.enter(); q.async { o = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter(); q.async { e = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.wait()
    outData = o; errData = e
    p.waitUntilExit()
    return ProcessResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// Runs the built `bwanalyze`.
public func bwanalyze(_ arguments: String...) throws -> ProcessResult {
    try runProcess(productsDirectory.appendingPathComponent("bwanalyze").path, arguments)
}

public func bwanalyze(arguments: [String]) throws -> ProcessResult {
    try runProcess(productsDirectory.appendingPathComponent("bwanalyze").path, arguments)
}

/// Debian's Python with h5py/numpy (the test command installs them), or nil when unavailable.
/// With BWSSL_REQUIRE_PYTHON=1 (set by the test command) a missing Python is a failure, not a skip.
public func debianPython(modules: [String]) -> String? {
    let python = "/usr/bin/python3"
    guard FileManager.default.isExecutableFile(atPath: python),
          let r = try? runProcess(python, ["-c", modules.map { "import \($0)" }.joined(separator: "; ")]), r.status == 0 else {
        return nil
    }
    return python
}

public var pythonRequired: Bool { ProcessInfo.processInfo.environment["BWSSL_REQUIRE_PYTHON"] == "1" }
