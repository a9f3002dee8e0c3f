import ActivationStore
import Foundation

extension ReportInputs {
    /// For every candidate that is a shard behind another candidate (a shard index over virtual
    /// datasets), the index's path, keyed by the shard's canonical path.
    static func shardIndexes(_ candidates: [String]) -> [String: String] {
        func canonical(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }
        var out: [String: String] = [:]
        for path in candidates {
            for source in VirtualSources.files(behind: path) where canonical(source) != canonical(path) {
                out[canonical(source)] = path
            }
        }
        return out
    }
}
