import ActivationStore
import AnalysisCommands
import ArgumentParser
import Foundation
import LinearAlgebra
import SyntheticFixtures

extension BWAnalyze {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time every analysis on a realistic file and print achieved GFLOP/s beside the machine's dgemm rate.",
            discussion: "Without --file, writes a random file of the given size to --dir first (the default, 2048 x 128 x 384 x 13 depths, is 5.2 GB) and removes it afterwards. Build with -c release for meaningful figures.")

        @Option(help: "An existing activation file to time (default: generate one).")
        var file: String?
        @Option(help: "Directory for the generated file.") var dir: String = "."
        @Option(help: "Clips N of the generated file.") var clips = 2048
        @Option(help: "Tokens T.") var tokens = 128
        @Option(help: "Features D.") var features = 384
        @Option(help: "Layers L (depths 0...L).") var layers = 12
        @Flag(help: "Keep the generated file.") var keep = false

        func run() throws {
            try runAnalysis {
                func say(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
                say("measuring dgemm (2048^3) ...")
                let dgemm = GEMMRate.measure(Double.self)
                let sgemm = GEMMRate.measure(Float.self)
                var path = file
                var generated: String? = nil
                if path == nil {
                    let p = URL(fileURLWithPath: dir).appendingPathComponent("bwssl-bench-\(clips)x\(tokens)x\(features)x\(layers).h5").path
                    say("writing \(p) ...")
                    let s = try Benchmark.time {
                        try RandomActivations.write(path: p, clips: clips, tokens: tokens, features: features, layers: layers, seed: 7,
                                                    labels: ["class": 10, "coarse": 3])
                    }
                    say(String(format: "  %.1f s", s))
                    path = p
                    generated = p
                }
                defer { if let generated, !keep { try? FileManager.default.removeItem(atPath: generated) } }
                let f = try ActivationFile(path: path!)
                say("timing analyses on \(f.path) (N = \(f.clipCount), T = \(f.tokenCount), D = \(f.featureCount), depths 0-\(f.layerCount)) ...")
                let rows = try Benchmark().run(f) { say($0) }
                StandardOutput.print(String(format: "machine: dgemm %.1f GFLOP/s, sgemm %.1f GFLOP/s (best of 3, 2048^3, %d cores)",
                             dgemm, sgemm, ProcessInfo.processInfo.activeProcessorCount))
                StandardOutput.print("file: \(f.path)  N = \(f.clipCount)  T = \(f.tokenCount)  D = \(f.featureCount)  depths 0-\(f.layerCount)  \(FileSummary.formatBytes(f.fileSize))")
                StandardOutput.write(Benchmark.table(rows, dgemm: dgemm))
            }
        }
    }
}
