import Foundation
import TestSupport
import XCTest

/// The bwact Python package (python/): its own tests, run with the venv the test command installs it
/// into (BWACT_PYTHON), against the built bwanalyze.
final class PythonPackageTests: XCTestCase {
    func testPackageTestsPass() throws {
        guard let python = ProcessInfo.processInfo.environment["BWACT_PYTHON"],
              FileManager.default.isExecutableFile(atPath: python) else {
            if pythonRequired { XCTFail("BWACT_PYTHON must name the venv python with the bwact package installed (scripts/test.sh sets it)") }
            throw XCTSkip("BWACT_PYTHON is not set; run scripts/test.sh")
        }
        let tests = repositoryRoot.appendingPathComponent("python/tests").path
        var environment = ["BWANALYZE": productsDirectory.appendingPathComponent("bwanalyze").path]
        if pythonRequired { environment["BWACT_REQUIRE"] = "1" }
        let r = try runProcess(python, ["-m", "unittest", "discover", "-v", "-s", tests], environment: environment)
        print(r.stderr)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("\nOK"), r.stderr)
        if pythonRequired { XCTAssertFalse(r.stderr.contains("skipped"), "no package test may be skipped here:\n" + r.stderr) }
        // The package under test is the installed one, not the source folder.
        let where_ = try runProcess(python, ["-c", "import bwact, os; print(os.path.dirname(bwact.__file__))"])
        XCTAssertFalse(where_.stdout.hasPrefix(repositoryRoot.appendingPathComponent("python").path), where_.stdout)
        let ran = r.stderr.components(separatedBy: "\n").first { $0.hasPrefix("Ran ") } ?? ""
        XCTAssertGreaterThanOrEqual(Int(ran.split(separator: " ").dropFirst().first ?? "") ?? 0, 7, ran)
    }
}
