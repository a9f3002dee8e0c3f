import ArgumentParser
import Foundation
import Collective
import LinearAlgebra

// What both executables share of their command lines. Kept out of the libraries, which do not
// depend on swift-argument-parser.

/// A typed option value (`Checked` over an `ArgumentSyntax` type) as an ArgumentParser argument: it
/// always parses; the command's `validate()` calls `check()` to report a malformed value.
extension Checked: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
    public var defaultValueDescription: String { text }
}

extension ParsableCommand {
    /// The message of an error that a command's `validate()` threw from the library (a typed option's
    /// parse error, not an ArgumentParser usage error), or nil. The tools print it as their other
    /// errors: one `<tool>: error:` line, status 1.
    public static func libraryMessage(for error: any Error) -> String? {
        let message = message(for: error)
        return exitCode(for: error) == .failure && !message.isEmpty ? message : nil
    }
}

/// How this process takes part in a job: its thread count, and its place in an MPI job. Both tools
/// include it (`bwtrain train|bench`, every `bwanalyze` command that reads activations).
public struct JobOptions: ParsableArguments {
    @Option(help: "Threads of this process: in bwtrain each takes a part of every batch with its own replica of the model and one BLAS thread; in bwanalyze they run BLAS and the parallel reads and fits (default: the machine's cores; 1 per rank under MPI).")
    public var threads: Int?

    public init() {}

    /// Joins the job (one process, or MPI's world), sets the thread count and runs `body`. An error
    /// becomes one `<tool>: error:` line (through `printError`) and exit status 1. Under MPI the line
    /// names the failing rank (`rank R of N: message`) and the whole job ends (MPI_Abort): a rank whose
    /// own work threw prints and aborts (ranks other than 0 after a second, so that an error of every
    /// rank is printed once, by rank 0); after `Communicator.together` reported a rank's failure to
    /// all, rank 0 prints it and aborts while the others wait to be ended.
    public func run(printError: (String) -> Void, _ body: (any Communicator) throws -> Void) throws {
        var comm: (any Communicator)? = nil
        do {
            let world = try Collective.world()
            comm = world
            ThreadSetting.set(threads ?? (world.size > 1 ? 1 : ThreadSetting.machineCores))
            try body(world)
        } catch let e as ExitCode {
            throw e
        } catch {
            if let comm, comm.size > 1 {
                if let failure = error as? RankFailure {
                    if comm.isRoot {
                        printError("rank \(failure.rank) of \(failure.size): \(failure.message)")
                        comm.abort(status: 1)
                    }
                    comm.barrier()
                    comm.abort(status: 1)
                }
                // An error every rank meets (a bad option value, say) is printed once: rank 0 prints at
                // once and its abort ends the others while they wait a moment before printing theirs.
                if !comm.isRoot { Thread.sleep(forTimeInterval: 1) }
                printError("rank \(comm.rank) of \(comm.size): \(error)")
                comm.abort(status: 1)
            }
            printError("\(error)")
            throw ExitCode.failure
        }
    }
}
