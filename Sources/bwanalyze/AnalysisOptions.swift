import ActivationStore
import AnalysisCommands
import ArgumentParser
import Collective
import Foundation
import LinearAlgebra
import ToolSupport

extension OutputFormat: ExpressibleByArgument {}
extension Pooling: ExpressibleByArgument {}

/// `--c-grid`: positive C values such as 0.1,1,10.
struct CGrid: ArgumentSyntax {
    var values: [Double]
    init(parsing text: String) throws {
        guard let values = parseList(text, as: Double.self), values.allSatisfy({ $0 > 0 }) else {
            throw AnalysisError("--c-grid must list positive numbers such as 0.1,1,10")
        }
        self.values = values
    }
}

/// `--ks`: positive k values such as 1,5,10.
struct TopKList: ArgumentSyntax {
    var values: [Int]
    init(parsing text: String) throws {
        guard let values = parseList(text, as: Int.self), values.allSatisfy({ $0 >= 1 }) else {
            throw AnalysisError("--ks must be positive integers such as 1,5,10")
        }
        self.values = values
    }
}

/// `--layers`: layer numbers such as 1,2,3.
struct LayerList: ArgumentSyntax {
    var values: [Int]
    init(parsing text: String) throws {
        guard let values = parseList(text, as: Int.self) else {
            throw AnalysisError("--layers must be a comma-separated list of layer numbers")
        }
        self.values = values
    }
}

/// `--depth`, the one definition every analysis subcommand includes.
struct DepthOption: ParsableArguments {
    @Option(help: "Depths: 'blocks' (the embedding and each block's last layer), 'layers' (every depth 0...L) or a list such as 0,3,6.")
    var depth = Checked<DepthSelection>("blocks")

    func validate() throws { try depth.check() }

    var selection: DepthSelection { depth.value }
}

/// Output options shared by the analysis subcommands.
struct OutputOptions: ParsableArguments {
    @Option(help: "Output format: table (readable), csv (tidy rows) or json (with parameters and conventions).")
    var format: OutputFormat = .table

    @Option(name: [.short, .customLong("output")], help: "Write to this file (atomically) instead of standard output.")
    var output: String?

    @Flag(help: "No progress on standard error.")
    var quiet = false

    /// Writes the report on rank 0 (the only rank that writes outputs); the other ranks write nothing.
    func write(_ report: MetricReport, table: (MetricReport) -> String, job: any Communicator) throws {
        guard job.isRoot else { return }
        let text: String
        switch format {
        case .table: text = table(report)
        case .csv: text = report.csv
        case .json: text = try report.json()
        }
        try emit(text, to: output)
    }

    /// A progress callback on rank 0: a live line on a terminal, nothing otherwise.
    func progress(_ label: String, job: any Communicator) -> ((Int, Int) -> Void)? {
        guard !quiet, job.isRoot, isatty(STDERR_FILENO) != 0 else { return nil }
        return { done, total in
            let text = done == total ? "\r\u{1B}[K" : "\r\(label): \(done)/\(total)"
            FileHandle.standardError.write(Data(text.utf8))
        }
    }
}

/// Depth selection and pooling shared by the analysis subcommands.
struct DepthOptions: ParsableArguments {
    @OptionGroup var depth: DepthOption

    @Option(help: "Rows: 'mean' (one clip vector per clip) or 'tokens' (every token a row).")
    var pool: Pooling = .mean

    @Option(help: "Memory budget for one batch of clips (all selected depths, as float64), in MiB.")
    var batchMib = 64.0

    var selection: DepthSelection { depth.selection }
    var batchBytes: Int { max(1, Int(batchMib * 1_048_576)) }
}

/// A subcommand that runs as one job over MPI's ranks when started by mpirun or srun (docs/mpi.md);
/// the others refuse to start as several processes.
protocol DistributedCommand {}

/// Opens a command's activation files on every rank. When one cannot be opened, every rank learns it
/// at once (`Communicator.together`), so the job ends with one error line, printed by rank 0.
func openInputs(_ paths: [String], job: any Communicator) throws -> [ActivationFile] {
    try job.together { try ActivationFile.open(paths) }
}

/// Runs an analysis, turning its errors into one line on standard error and exit status 1.
func runAnalysis(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch {
        printError("\(error)")
        throw ExitCode.failure
    }
}
