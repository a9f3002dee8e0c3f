import ActivationStore
import AnalysisCommands
import ArgumentParser
import Collective
import Foundation
import LinearAlgebra
import SyntheticFixtures
import ToolSupport

@main
struct BWAnalyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bwanalyze",
        abstract: "Analyse per-layer activations (bwact/1 HDF5 files) of blockwise and end-to-end video transformers.",
        discussion: """
        Activation files follow the bwact/1 format (docs/activation-format.md). Start with
        `bwanalyze inspect FILE` to see what a file holds and `bwanalyze validate FILE` to check it.
        """,
        version: bwsslVersion,
        subcommands: [Inspect.self, Validate.self, CKA.self, Similarity.self, Spectrum.self, Probe.self, RetrievalCommand.self, OccDrop.self, Tokens.self, Attention.self, Report.self, Bench.self, Fixtures.self, Synth.self, CheckStructure.self, ClipVectors.self]
    )

    /// Runs the command, then checks that standard output was written in full.
    ///
    /// Every activation file is first read structurally by a child process (`StructureGuard`), so damaged
    /// HDF5 metadata ends as one error line. A write error on standard output (a full disk) ends with
    /// one error line and status 1; a closed pipe ends the process quietly by SIGPIPE, as Unix tools do.
    static func main() {
        signal(SIGPIPE, SIG_DFL)
        // The structure guard waits for its helpers; an inherited SIGCHLD = SIG_IGN would reap them first.
        signal(SIGCHLD, SIG_DFL)
        let environment = ProcessInfo.processInfo.environment
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            if environment["BWSSL_STRUCTURE_GUARD"] != "off" {
                StructureGuard.helper = [exe, CheckStructure.configuration.commandName!]
            }
            if environment["BWSSL_CLIP_VECTOR_HELPER"] != "off" {
                ClipVectorHelper.helper = [exe, ClipVectors.configuration.commandName!]
            }
        }
        if let limit = environment["BWSSL_STRUCTURE_TIME_LIMIT"].flatMap(Double.init), limit > 0 {
            StructureGuard.timeLimit = limit
        }
        do {
            var command = try parseAsRoot()
            // Started as several processes (mpirun, srun), a command that is not one job over the ranks
            // would run once per rank and write its output as many times.
            if !(command is DistributedCommand), !(command is CheckStructure), !(command is ClipVectors), Collective.launchedProcesses() > 1 {
                let name = type(of: command).configuration.commandName ?? String(describing: type(of: command)).lowercased()
                printError("\(name) runs as one process; start it without mpirun or srun (the analyses and report run under MPI, see docs/mpi.md)")
                Glibc.exit(1)
            }
            try command.run()
        } catch {
            finishStandardOutput()
            // An option value the library rejects (`validate()` of a typed option) ends like an analysis
            // error: one line, status 1. Usage errors print as ArgumentParser formats them.
            if let message = libraryMessage(for: error) {
                printError(message)
                Glibc.exit(ExitCode.failure.rawValue)
            }
            exit(withError: error)
        }
        finishStandardOutput()
    }

    /// Flushes standard output; on failure prints one error line and exits with status 1.
    static func finishStandardOutput() {
        if let code = StandardOutput.failure {
            printError("cannot write to standard output (\(String(cString: strerror(code))))")
            Glibc.exit(1)
        }
    }
}

/// Prints one line to standard error, with control characters (from file contents or names) escaped.
func printError(_ message: String) {
    let line = TerminalText.escaped(message)
    FileHandle.standardError.write(Data(("bwanalyze: error: " + line + "\n").utf8))
}

/// `synth --dtype`: the token types an activation file may hold.
enum TokenType: String, CaseIterable, ExpressibleByArgument {
    case float16, float32, float64

    var elementType: ElementType {
        switch self {
        case .float16: return .float16
        case .float32: return .float32
        case .float64: return .float64
        }
    }
}

extension BWAnalyze {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Summarise activation files: run, regime, blocks, layers, N/T/D, targets, attention, size.")

        @Argument(help: "Activation files (.h5).")
        var files: [String]

        @Flag(help: "Print a JSON array instead of text.")
        var json = false

        func run() throws {
            var summaries: [FileSummary] = []
            var failed = false
            for path in files {
                do {
                    let s = try FileSummary(ActivationFile(path: path))
                    summaries.append(s)
                    if !json { StandardOutput.print(s.text + (path == files.last ? "" : "\n")) }
                } catch {
                    printError("\(error)")
                    failed = true
                }
            }
            if json { StandardOutput.print(try encodeJSON(summaries)) }
            if failed { throw ExitCode.failure }
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check files against the bwact/1 schema and list every violation.",
            discussion: "Checks attributes, layer ranks and shapes, N across layers and labels, attention and positions, and counts NaN/Inf per layer. Exit status 0 when every file is clean, 1 otherwise.")

        @Argument(help: "Activation files (.h5).")
        var files: [String]

        @Flag(help: "Print a JSON array of reports instead of text.")
        var json = false

        @Flag(help: "Skip the NaN/Inf scan of token values (structure only).")
        var noValues = false

        func run() throws {
            let reports = files.map { ActivationValidator.validate(path: $0, scanValues: !noValues) }
            if json {
                StandardOutput.print(try encodeJSON(reports))
            } else {
                for r in reports {
                    if r.isValid {
                        StandardOutput.print("\(r.file): ok")
                    } else {
                        StandardOutput.print("\(r.file): \(r.violations.count) problem\(r.violations.count == 1 ? "" : "s")")
                        for v in r.violations { StandardOutput.print("  - \(TerminalText.escaped(v.description))") }
                    }
                }
            }
            if reports.contains(where: { !$0.isValid }) { throw ExitCode.failure }
        }
    }

    /// The structural pass of `StructureGuard`, run in a child process; not for direct use.
    struct CheckStructure: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check-structure", abstract: "Internal: read a file's structure (run in a limited child process).",
            shouldDisplay: false)

        @Argument var file: String

        func run() throws {
            let status = StructureGuard.runHelper(path: file)
            if status != 0 { throw ExitCode(status) }
        }
    }

    struct ClipVectors: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clip-vectors",
            abstract: "Internal: write the clip vectors of some depths of a file to standard output (the helper of a two-file read).",
            shouldDisplay: false)

        @Option(help: "The file's identity when the parent opened it (device:inode:size:ctime seconds:nanoseconds); another file at the path is refused.")
        var identity: String?
        @Argument var file: String
        @Argument var depths: [Int]

        func run() throws {
            // The parent opened this file, past the structure guard, before starting this helper; the
            // identity check makes sure it is still that file.
            StructureGuard.helper = nil
            do {
                let expected = try identity.map { argument in
                    guard let parsed = FileIdentity(argument: argument) else { throw ValidationError("--identity: not device:inode:size:seconds:nanoseconds") }
                    return parsed
                }
                try ClipVectorHelper.serve(path: file, identity: expected, depths: depths, to: STDOUT_FILENO)
            } catch {
                printError("\(error)")
                throw ExitCode.failure
            }
        }
    }

    struct Fixtures: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the deterministic synthetic test fixtures (see Fixtures/README.md).")

        @Option(help: "Directory to write into (created if missing).")
        var out: String = "Fixtures"

        func run() throws {
            do {
                for path in try FixtureSet.write(to: out) { StandardOutput.print(path) }
            } catch {
                printError("\(error)")
                throw ExitCode.failure
            }
        }
    }

    struct Synth: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a random Gaussian activation file of any size (for benchmarks), streamed in clip batches.")

        @Option(help: "Output file.")
        var out: String
        @Option(help: "Clips N.") var clips = 2048
        @Option(help: "Tokens per clip T.") var tokens = 128
        @Option(help: "Features D.") var features = 384
        @Option(help: "Layers L (depths 0...L are written).") var layers = 12
        @Option(help: "Random seed.") var seed: UInt64 = 0
        @Option(help: "Token dtype: float16, float32 or float64.") var dtype: TokenType = .float32
        @Flag(help: "Do not print progress.") var quiet = false

        func validate() throws {
            guard clips > 0, tokens > 0, features > 0, layers > 0 else {
                throw ValidationError("--clips, --tokens, --features and --layers must be positive")
            }
        }

        func run() throws {
            let bytes = clips * tokens * features * (layers + 1) * dtype.elementType.byteCount
            if !quiet { FileHandle.standardError.write(Data("writing \(out) (\(FileSummary.formatBytes(bytes)) of tokens)\n".utf8)) }
            let isTTY = isatty(STDERR_FILENO) != 0
            var lastShown = -1
            do {
                try RandomActivations.write(path: out, clips: clips, tokens: tokens, features: features, layers: layers,
                                            seed: seed, type: dtype.elementType) { fraction in
                    guard !quiet else { return }
                    let pct = Int(fraction * 100)
                    if isTTY {
                        FileHandle.standardError.write(Data("\r  \(pct)%".utf8))
                    } else if pct / 10 != lastShown / 10 || pct == 100 {
                        FileHandle.standardError.write(Data("  \(pct)%\n".utf8))
                    }
                    lastShown = pct
                }
                if !quiet && isTTY { FileHandle.standardError.write(Data("\n".utf8)) }
            } catch {
                printError("\(error)")
                throw ExitCode.failure
            }
        }
    }
}
