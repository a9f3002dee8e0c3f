import ActivationStore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The report folder, built whole in a hidden staging folder beside `--out` and swapped in on success.
///
/// `--out` may be missing, an empty folder, or the folder of an earlier report (it holds a
/// `summary.json` written by `bwanalyze report`); anything else (a file, a link, a folder of other
/// files or one holding an input) is refused before any analysis runs. A failure at any point removes
/// the staging folder and leaves the earlier report as it was.
struct ReportOutput {
    let out: String
    let notebook: String
    /// Where the report's files are written until `commit()`.
    let staging: String
    /// The notebook's staging path: inside `staging` when it belongs in the report folder, else a
    /// hidden temporary file beside its destination.
    let stagedNotebook: String
    private let notebookInside: Bool

    /// Checks `out` and the notebook path against the inputs; throws `ReportError` naming the path.
    static func check(out: String, notebook: String, inputs: [String]) throws {
        var st = stat()
        if lstat(out, &st) == 0 {
            switch st.st_mode & S_IFMT {
            case S_IFDIR: break
            case S_IFLNK: throw ReportError("\(out): is a symbolic link; give the report folder itself")
            default: throw ReportError("\(out): exists and is not a folder; refusing to replace it")
            }
            let outPath = canonical(out)
            for input in inputs where canonical(input).hasPrefix(outPath + "/") {
                throw ReportError("\(out): holds the input \(input); refusing to replace it")
            }
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
            if !entries.isEmpty && !isReport(out) {
                throw ReportError("\(out): exists and is not a report folder (no summary.json of bwanalyze report); refusing to replace it")
            }
        }
        do { try OutputPolicy.checkOutput(notebook) } catch let e as ActivationStoreError {
            throw ReportError("\(notebook): \(e.message)")
        }
    }

    /// True when `dir/summary.json` was written by `bwanalyze report`.
    static func isReport(_ dir: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: (dir as NSString).appendingPathComponent("summary.json")),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return object["tool"] as? String == "bwanalyze report"
    }

    static func canonical(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// Creates the staging folder (and `out`'s parent folders).
    init(out: String, notebook: String) throws {
        self.out = out
        self.notebook = notebook
        let url = URL(fileURLWithPath: out).standardizedFileURL
        let parent = url.deletingLastPathComponent().path
        let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        staging = (parent as NSString).appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(suffix)")
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: (staging as NSString).appendingPathComponent("figures"),
                                                    withIntermediateDirectories: true)
        } catch {
            throw ReportError("\(out): cannot create the output folder (\(Self.reason(error)))")
        }
        let outPath = Self.canonical(out), notebookPath = Self.canonical(notebook)
        notebookInside = notebookPath.hasPrefix(outPath + "/")
        if notebookInside {
            stagedNotebook = (staging as NSString).appendingPathComponent(String(notebookPath.dropFirst(outPath.count + 1)))
        } else {
            let n = URL(fileURLWithPath: notebook)
            stagedNotebook = n.deletingLastPathComponent().appendingPathComponent(".\(n.lastPathComponent).tmp-\(getpid())-\(suffix)").path
        }
        do {
            try FileManager.default.createDirectory(atPath: (stagedNotebook as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
        } catch {
            discard()
            throw ReportError("\(notebook): cannot create its folder (\(Self.reason(error)))")
        }
    }

    /// The staging path of a report file named relative to `out`.
    func path(_ name: String) -> String { (staging as NSString).appendingPathComponent(name) }

    /// Swaps the finished report in: the earlier report folder is removed only once the new one is in place.
    func commit() throws {
        let fm = FileManager.default
        var old: String? = nil
        if fm.fileExists(atPath: out) {
            let aside = staging + "-old"
            guard rename(out, aside) == 0 else {
                let why = String(cString: strerror(errno))
                discard()
                throw ReportError("\(out): cannot replace the earlier report (\(why))")
            }
            old = aside
        }
        guard rename(staging, out) == 0 else {
            let why = String(cString: strerror(errno))
            if let old { rename(old, out) }
            discard()
            throw ReportError("\(out): cannot move the finished report into place (\(why))")
        }
        if let old { try? fm.removeItem(atPath: old) }
        if !notebookInside {
            guard rename(stagedNotebook, notebook) == 0 else {
                let why = String(cString: strerror(errno))
                unlink(stagedNotebook)
                throw ReportError("\(notebook): cannot move the notebook into place (\(why))")
            }
        }
    }

    /// Removes what was staged.
    func discard() {
        try? FileManager.default.removeItem(atPath: staging)
        if !notebookInside { unlink(stagedNotebook) }
    }

    static func reason(_ error: Error) -> String {
        if let e = error as? ActivationStoreError { return e.message }
        if let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError,
           underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return (error as NSError).localizedFailureReason ?? "\((error as NSError).localizedDescription)"
    }
}
