@testable import ActivationStore
import Foundation
import TestSupport
import XCTest

/// Hostile input (docs/hostile-input.md): the committed corpus of malformed files with their expected
/// errors, the child-process guard, output safety, standard-output errors, the atomic report folder and
/// a bounded run of the mutation fuzzer.
final class HostileInputTests: XCTestCase {
    static let corpus = repositoryRoot.appendingPathComponent("Tests/HostileCorpus").path

    struct Case {
        var file: String
        var command: [String]
        var status: Int32
        var text: String?
    }

    static func cases() throws -> [Case] {
        let table = try String(contentsOfFile: corpus + "/expected.tsv", encoding: .utf8)
        return table.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return Case(file: f[0], command: f[1].split(separator: " ").map(String.init), status: Int32(f[2])!,
                        text: f[3] == "-" ? nil : f[3])
        }
    }

    /// Every corpus case: the expected exit status, and on failure one error line naming the file and
    /// saying what is wrong (validate lists its findings on standard output); the input is left as it was.
    func testCorpusGivesTheExpectedErrors() throws {
        let cases = try Self.cases()
        XCTAssertGreaterThanOrEqual(cases.count, 30)
        let dir = TemporaryDirectory()
        for c in cases {
            let path = Self.corpus + "/" + c.file
            let before = try Data(contentsOf: URL(fileURLWithPath: path))
            let args = c.command.map { $0 == "FILE" ? path : $0 == "OUTDIR" ? dir.file("report") : $0 }
            let r = try bwanalyze(arguments: args)
            let what = "\(c.file): \(c.command.joined(separator: " "))"
            XCTAssertEqual(r.status, c.status, "\(what)\n\(r.stderr)\(r.stdout.prefix(500))")
            XCTAssertFalse(r.stderr.contains("HDF5-DIAG"), what)
            let errorLines = r.stderr.split(separator: "\n")
            if c.status == 0 {
                XCTAssertTrue(errorLines.isEmpty, "\(what): \(r.stderr)")
            } else if c.command[0] == "validate" {
                XCTAssertTrue(r.stdout.hasPrefix(path + ": "), "\(what): \(r.stdout.prefix(300))")
                if let text = c.text { XCTAssertTrue(r.stdout.contains(text), "\(what): \(r.stdout.prefix(500))") }
            } else {
                XCTAssertEqual(errorLines.count, 1, "\(what): \(r.stderr)")
                let line = String(errorLines.first ?? "")
                XCTAssertTrue(line.hasPrefix("bwanalyze: error: ") && line.contains(path), "\(what): \(line)")
                if let text = c.text { XCTAssertTrue(line.contains(text), "\(what): \(line)") }
                XCTAssertFalse(line.unicodeScalars.contains { $0.value < 0x20 }, "\(what): control character printed")
            }
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before, "\(what): the input changed")
            try? FileManager.default.removeItem(atPath: dir.file("report"))
        }
    }

    /// A helper that crashes or hangs makes the file "damaged"; one that finishes lets reading go on.
    func testStructureGuardTurnsADeadHelperIntoAnError() throws {
        let path = fixturePath("run-a.h5")
        let saved = (StructureGuard.helper, StructureGuard.timeLimit)
        defer { (StructureGuard.helper, StructureGuard.timeLimit) = saved }

        StructureGuard.helper = ["/bin/sh", "-c", "kill -SEGV $$", "sh"]
        XCTAssertThrowsError(try ActivationFile(path: path)) { error in
            let e = error as? ActivationStoreError
            XCTAssertEqual(e?.kind, .damaged)
            XCTAssertEqual(e?.description, "\(path): damaged HDF5 file: reading its structure crashed the HDF5 library (signal 11)")
        }
        StructureGuard.helper = ["/bin/sh", "-c", "exec sleep 60", "sh"]
        StructureGuard.timeLimit = 0.2
        XCTAssertThrowsError(try ActivationFile(path: path)) { error in
            XCTAssertEqual((error as? ActivationStoreError)?.kind, .damaged)
            XCTAssertTrue("\(error)".contains("did not finish"), "\(error)")
        }
        // A helper that finishes without saying what it read is no proof either.
        StructureGuard.helper = ["/bin/true"]
        XCTAssertThrowsError(try ActivationFile(path: path)) { error in
            XCTAssertEqual((error as? ActivationStoreError)?.kind, .damaged)
            XCTAssertTrue("\(error)".contains("gave no readable result"), "\(error)")
        }
        StructureGuard.helper = [productsDirectory.appendingPathComponent("bwanalyze").path, "check-structure"]
        XCTAssertEqual(try ActivationFile(path: path).clipCount, 80)
    }

    /// The parent takes the variable-length strings from the helper, and refuses a file swapped between
    /// the helper's check and its own opening.
    func testTheParentReadsTheCheckedFileAndTakesItsStringsFromTheHelper() throws {
        let saved = StructureGuard.helper
        defer { StructureGuard.helper = saved }
        StructureGuard.helper = [productsDirectory.appendingPathComponent("bwanalyze").path, "check-structure"]
        let dir = TemporaryDirectory()
        let path = dir.file("a.h5")
        try FileManager.default.copyItem(atPath: fixturePath("run-a.h5"), toPath: path)
        let preread = try XCTUnwrap(try StructureGuard.check(path))
        XCTAssertEqual(preread.identity, FileIdentity(path: path)?.description)
        XCTAssertEqual(preread.attributes["run"], "fixture-run-a")
        XCTAssertEqual(preread.attributes["format"], "bwact")
        XCTAssertNotNil(preread.attributes["config"])
        // The helper's strings are the ones the parent uses: a planted value shows through.
        var planted = preread
        planted.attributes["probe_set"] = "from-the-helper"
        let f = try ActivationFile.openChecked(path, preread: planted)
        XCTAssertEqual(try f.readStringAttribute("probe_set"), "from-the-helper")
        try f.close()
        // Swapped between check and open: another file renamed over the path.
        let other = dir.file("b.h5")
        try FileManager.default.copyItem(atPath: fixturePath("run-b.h5"), toPath: other)
        XCTAssertEqual(rename(other, path), 0)
        XCTAssertThrowsError(try ActivationFile.openChecked(path, preread: preread)) { error in
            XCTAssertEqual((error as? ActivationStoreError)?.kind, .cannotOpen)
            XCTAssertTrue("\(error)".contains("changed between its structure check and its opening"), "\(error)")
        }
        // Checked afresh, the new file opens, with its own strings.
        XCTAssertEqual(try ActivationFile(path: path).metadata.run, "fixture-run-b")
        // String clip ids are read by the helper too.
        let ids = dir.file("ids.h5")
        try FileManager.default.copyItem(atPath: fixturePath("run-a.h5"), toPath: ids)
        let r = try runProcess("/usr/bin/python3", ["-c", "import h5py, sys; f = h5py.File(sys.argv[1], 'a'); n = f['layers/00/tokens'].shape[0]; f.create_dataset('clip_ids', data=['c%d' % i for i in range(n)], dtype=h5py.string_dtype())", ids])
        if r.status == 0 {
            let p = try XCTUnwrap(try StructureGuard.check(ids))
            XCTAssertEqual(p.datasets[ActivationPaths.clipIDs]?.first, "c0")
            XCTAssertEqual(try ActivationFile(path: ids).clipIDs()?.last, "c79")
        } else if pythonRequired {
            XCTFail("h5py is required: \(r.stderr)")
        }
    }

    /// bwtrain's readers are behind the same guard: a damaged checkpoint or clip file ends with one
    /// `bwtrain: error:` line naming it, and a failing resume leaves the checkpoint as it was.
    func testBwtrainRefusesDamagedCheckpointsAndClipFilesCleanly() throws {
        let bwtrain = productsDirectory.appendingPathComponent("bwtrain").path
        let dir = TemporaryDirectory()
        let run = dir.file("run")
        let options = ["--preset", "quick", "--regime", "e2e", "--blocks", "2", "--run", "t", "--steps", "2", "--dump-steps", "",
                       "--probe-sets", "", "--training-clips", "16", "--batch-size", "4", "--quiet"]
        XCTAssertEqual(try runProcess(bwtrain, options + ["--out", run]).status, 0)
        try FileManager.default.removeItem(atPath: run + "/done.json")
        let checkpoint = run + "/checkpoint.h5"
        let good = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        // Load-only: a resume with no steps left loads the checkpoint and ends.
        XCTAssertEqual(try runProcess(bwtrain, options + ["--out", run, "--resume"]).status, 0)
        try FileManager.default.removeItem(atPath: run + "/done.json")
        func assertRefused(_ damaged: Data, _ what: String) throws {
            try damaged.write(to: URL(fileURLWithPath: checkpoint))
            let r = try runProcess(bwtrain, options + ["--out", run, "--resume"])
            XCTAssertEqual(r.status, 1, "\(what): \(r.stderr)")
            let lines = r.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(what): \(r.stderr)")
            XCTAssertTrue(lines.first?.hasPrefix("bwtrain: error: ") == true && r.stderr.contains("checkpoint.h5"), "\(what): \(r.stderr)")
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: checkpoint)), damaged, "\(what): the checkpoint changed")
        }
        try assertRefused(good.prefix(good.count / 3), "truncated")
        var zeroed = good
        if let r = zeroed.range(of: Data("OHDR".utf8), in: 200..<zeroed.count) { zeroed.replaceSubrange(r.lowerBound..<(r.lowerBound + 24), with: Data(count: 24)) }
        try assertRefused(zeroed, "object header zeroed")
        // Checkpoints that load but hold impossible values (found by the structure fuzzer): a negative step
        // once trapped in the batch order, a parameter vector of the wrong length gave an error without the
        // file's name. Written with h5py from the good checkpoint.
        if let python = debianPython(modules: ["h5py", "numpy"]) {
            for (edit, what) in [("f['ints/step'][...] = [-1]", "negative step"), ("f['ints/step'][...] = [-(2**63)]", "step at Int64.min"),
                                 ("v = f['arrays/params'][:1]; del f['arrays/params']; f['arrays/params'] = v", "one parameter")] {
                let copy = dir.file("edited.h5")
                try good.write(to: URL(fileURLWithPath: copy))
                let r = try runProcess(python, ["-c", "import h5py, numpy\nwith h5py.File('\(copy)', 'r+') as f:\n    \(edit)"])
                XCTAssertEqual(r.status, 0, r.stderr)
                try assertRefused(try Data(contentsOf: URL(fileURLWithPath: copy)), what)
            }
            // A clip file whose label is Int64.max: the class count (largest + 1) once overflowed.
            let clips = dir.file("clips.h5")
            let w = try runProcess(python, ["-c", """
            import h5py, numpy
            with h5py.File('\(clips)', 'w') as f:
                f['clips'] = numpy.zeros((8, 16, 32, 32, 3), dtype=numpy.uint8)
                f['labels/kind'] = numpy.array([2**63 - 1] + [0] * 7, dtype=numpy.int64)
            """])
            XCTAssertEqual(w.status, 0, w.stderr)
            let huge = try runProcess(bwtrain, options + ["--out", dir.file("run3"), "--data", clips])
            XCTAssertEqual(huge.status, 1, huge.stderr)
            XCTAssertEqual(huge.stderr.split(separator: "\n").count, 1, huge.stderr)
            XCTAssertTrue(huge.stderr.contains(clips) && huge.stderr.contains("/labels/kind"), huge.stderr)
        } else if pythonRequired {
            XCTFail("/usr/bin/python3 with h5py is required")
        }
        // The corpus file whose damaged global heap overwrote memory, given as a checkpoint and as clips.
        let hostile = try Data(contentsOf: URL(fileURLWithPath: Self.corpus + "/heap-overflow-vlen-attribute.h5"))
        try hostile.write(to: URL(fileURLWithPath: checkpoint))
        let asCheckpoint = try runProcess(bwtrain, options + ["--out", run, "--resume"])
        XCTAssertEqual(asCheckpoint.status, 1, asCheckpoint.stderr)
        XCTAssertTrue(asCheckpoint.stderr.contains("not a bwssl checkpoint"), asCheckpoint.stderr)
        let asClips = try runProcess(bwtrain, options + ["--out", dir.file("run2"), "--data", Self.corpus + "/heap-overflow-vlen-attribute.h5"])
        XCTAssertEqual(asClips.status, 1, asClips.stderr)
        XCTAssertEqual(asClips.stderr.split(separator: "\n").count, 1, asClips.stderr)
        XCTAssertTrue(asClips.stderr.contains("heap-overflow-vlen-attribute.h5"), asClips.stderr)
    }

    /// The executable's own helper passes every fixture (the guard costs time, never a healthy file).
    func testHelperPassesEveryFixture() throws {
        for name in ["run-a.h5", "attention.h5", "precision-f16.h5"] {
            let r = try bwanalyze("check-structure", fixturePath(name))
            XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
        }
    }

    // MARK: outputs

    func testOutputGoesOnlyToRegularFilesThatAreNotInputs() throws {
        let dir = TemporaryDirectory()
        let input = dir.file("in.h5")
        try FileManager.default.copyItem(atPath: fixturePath("run-a.h5"), toPath: input)
        let original = try Data(contentsOf: URL(fileURLWithPath: input))
        func refused(_ out: String, _ text: String) throws {
            let r = try bwanalyze("cka", input, "-o", out)
            XCTAssertEqual(r.status, 1, out)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(out) && r.stderr.contains(text), r.stderr)
        }
        try refused(input, "is an input of this command")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: input)), original)
        XCTAssertEqual(link(input, dir.file("hard.h5")), 0)
        try refused(dir.file("hard.h5"), "is an input of this command")
        let device = try XCTUnwrap(["/dev/full", "/dev/zero", "/dev/null"].first { d in
            var st = stat()
            return stat(d, &st) == 0 && (st.st_mode & S_IFMT) == S_IFCHR
        }, "no character device to try")
        try refused(device, "is a device")
        XCTAssertEqual(mkfifo(dir.file("fifo"), 0o600), 0)
        try refused(dir.file("fifo"), "is a fifo")
        try "keep".write(toFile: dir.file("target.txt"), atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir.file("link.csv"), withDestinationPath: dir.file("target.txt"))
        try refused(dir.file("link.csv"), "is a symbolic link")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: dir.file("link.csv")), dir.file("target.txt"))
        XCTAssertEqual(try String(contentsOfFile: dir.file("target.txt"), encoding: .utf8), "keep")
        try refused(dir.path, "is a directory")
        // A regular file (new or old) is written.
        try "old".write(toFile: dir.file("out.csv"), atomically: false, encoding: .utf8)
        let ok = try bwanalyze("cka", input, "--format", "csv", "-o", dir.file("out.csv"))
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(try String(contentsOfFile: dir.file("out.csv"), encoding: .utf8).hasPrefix("metric,run,file"))
    }

    func testStandardOutputErrors() throws {
        let path = fixturePath("run-a.h5")
        let exe = productsDirectory.appendingPathComponent("bwanalyze").path
        let full = try runProcess("/bin/sh", ["-c", "exec \"$0\" cka \"$1\" > /dev/full", exe, path])
        XCTAssertEqual(full.status, 1)
        XCTAssertEqual(full.stderr, "bwanalyze: error: cannot write to standard output (No space left on device)\n")
        let inspect = try runProcess("/bin/sh", ["-c", "exec \"$0\" inspect \"$1\" > /dev/full", exe, path])
        XCTAssertEqual(inspect.status, 1, inspect.stderr)
        // A reader that goes away: the writer ends quietly by SIGPIPE (status 141 in the shell).
        let many = Array(repeating: path, count: 300)
        let pipe = try runProcess("/bin/bash", ["-c", "\"$0\" inspect --json \"$@\" | head -c 10 | wc -c; echo \"${PIPESTATUS[0]}\"", exe] + many)
        XCTAssertEqual(pipe.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }, ["10", "141"])
        XCTAssertEqual(pipe.stderr, "")
    }

    /// report --out: built whole and swapped in; a failure leaves the earlier report as it was.
    func testReportFolderIsReplacedOnlyWhole() throws {
        let dir = TemporaryDirectory()
        let runs = dir.file("runs")
        try FileManager.default.createDirectory(atPath: runs, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixturePath("run-a.h5"), toPath: runs + "/run-a.h5")
        // --out inside the input folder, twice: the second run replaces the first.
        let out = runs + "/report"
        for _ in 0..<2 {
            let r = try bwanalyze("report", runs, "--out", out, "--quick", "--quiet")
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let files = try FileManager.default.subpathsOfDirectory(atPath: out).sorted()
        XCTAssertTrue(files.contains("summary.json") && files.contains("report.ipynb"), "\(files)")
        let summary = try Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: runs).sorted(), ["report", "run-a.h5"])

        // A damaged input: exit 1, one line naming it, the earlier report untouched, nothing staged left.
        let bad = runs + "/run-b.h5"
        var data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("run-b.h5")))
        data = data.prefix(data.count / 2)
        try data.write(to: URL(fileURLWithPath: bad))
        let failed = try bwanalyze("report", runs, "--out", out, "--quick", "--quiet")
        XCTAssertEqual(failed.status, 1)
        XCTAssertEqual(failed.stderr.split(separator: "\n").count, 1, failed.stderr)
        XCTAssertTrue(failed.stderr.contains(bad), failed.stderr)
        XCTAssertEqual(try FileManager.default.subpathsOfDirectory(atPath: out).sorted(), files)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/summary.json")), summary)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: runs).sorted(), ["report", "run-a.h5", "run-b.h5"])
        try FileManager.default.removeItem(atPath: bad)

        // --out at a regular file, at a folder of other files, at a folder holding an input: refused as they are.
        try "notes".write(toFile: dir.file("notes.txt"), atomically: false, encoding: .utf8)
        let other = dir.file("other")
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try "mine".write(toFile: other + "/mine.txt", atomically: false, encoding: .utf8)
        for (target, text) in [(dir.file("notes.txt"), "is not a folder"), (other, "is not a report folder"), (runs, "holds the input")] {
            let r = try bwanalyze("report", runs + "/run-a.h5", "--out", target, "--quick", "--quiet")
            XCTAssertEqual(r.status, 1, target)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(target) && r.stderr.contains(text), r.stderr)
        }
        XCTAssertEqual(try String(contentsOfFile: dir.file("notes.txt"), encoding: .utf8), "notes")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: other), ["mine.txt"])
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: dir.path).contains { $0.contains(".tmp-") })
    }

    // MARK: fuzzing

    /// The mutation fuzzer over the fixtures, bounded: 500 mutants, fixed seed, one command each in turn
    /// (validate among them), every run clean. `make fuzz` runs 10,000 fresh mutants through more commands.
    func testBoundedMutationFuzz() throws {
        guard let python = debianPython(modules: ["h5py"]) else {
            if pythonRequired { XCTFail("/usr/bin/python3 with h5py is required") }
            throw XCTSkip("Debian's python3-h5py is not installed")
        }
        let r = try runProcess(python, [repositoryRoot.appendingPathComponent("scripts/fuzz.py").path,
                                        "--binary", productsDirectory.appendingPathComponent("bwanalyze").path,
                                        "--fixtures", repositoryRoot.appendingPathComponent("Fixtures").path,
                                        "--mutants", "500", "--seed", "11", "--rotate", "--jobs", "2", "--quiet",
                                        "--bwtrain", productsDirectory.appendingPathComponent("bwtrain").path])
        let summary = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        print(summary)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(summary.hasPrefix("fuzz: 500 mutants (seed 11)") && summary.contains(" 0 crashes, 0 hangs, 0 abort exits, 0 other failures"),
                      summary)
    }
}
