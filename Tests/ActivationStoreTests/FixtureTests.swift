@testable import ActivationStore
import Foundation
import LinearAlgebra
import SyntheticFixtures
import TestSupport
import XCTest

final class FixtureTests: XCTestCase {
    /// Every attribute and dataset of two files, read through the store.
    func contents(_ path: String) throws -> [String: [Double]] {
        let f = try ActivationFile(path: path)
        var out: [String: [Double]] = [:]
        let m = f.metadata
        out["meta"] = [Double(m.step), Double(m.seed)] + m.blockEnds.map(Double.init)
        out["strings"] = (m.run + m.regime + m.probeSet + m.config).unicodeScalars.map { Double($0.value) }
        for d in f.depths {
            out["tokens\(d)"] = try f.tokens(depth: d, clips: 0..<f.clipCount, as: Double.self)
            if f.attentionShapes[d] != nil { out["attention\(d)"] = try f.attention(depth: d).map(Double.init) }
        }
        for t in f.targets { out["labels/\(t)"] = try f.labels(t).map(Double.init) }
        out["positions"] = try f.positions()?.map(Double.init)
        if let c = try f.trainingCurve() { out["training"] = c.steps.map(Double.init) + c.loss.map(Double.init) }
        out["types"] = f.tokenTypes.map { Double($0.byteCount) }
        return out
    }

    func testRegeneratingGivesTheCommittedFixtures() throws {
        let dir = TemporaryDirectory()
        let r = try bwanalyze("fixtures", "--out", dir.path)
        XCTAssertEqual(r.status, 0, r.stderr)
        let committed = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("Fixtures").path)
            .filter { $0.hasSuffix(".h5") }.sorted()
        XCTAssertEqual(dir.contents, committed)
        XCTAssertEqual(committed.count, 7)
        for name in committed {
            XCTAssertEqual(try contents(dir.file(name)), try contents(fixturePath(name)), "\(name) differs from the committed fixture")
            // Object headers carry no timestamps, so the bytes match too.
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir.file(name))),
                           try Data(contentsOf: URL(fileURLWithPath: fixturePath(name))), "\(name): bytes differ")
        }
        let total = try committed.reduce(0) { $0 + ((try FileManager.default.attributesOfItem(atPath: fixturePath($1))[.size] as? Int) ?? 0) }
        XCTAssertLessThan(total, 5 << 20)
    }

    func testCommittedFixturesValidate() throws {
        let r = try bwanalyze(arguments: ["validate"] + FixtureSet.all().map { fixturePath($0.name) })
        XCTAssertEqual(r.status, 0, r.stdout)
        XCTAssertEqual(r.stdout.split(separator: "\n").count, 7)
    }

    /// Clip vector of every clip at one depth, in float64.
    func clipVectors(_ f: ActivationFile, _ depth: Int) throws -> Matrix<Double> {
        let x = try f.tokens(depth: depth, clips: 0..<f.clipCount, as: Double.self)
        let t = f.tokenCount, d = f.featureCount
        return Matrix(rows: f.clipCount, cols: d) { i, k in (0..<t).reduce(0) { $0 + x[(i * t + $1) * d + k] } / Double(t) }
    }

    func testGeometryFixtureHoldsItsPlantedTransforms() throws {
        let f = try ActivationFile(path: fixturePath("geometry.h5"))
        let n = f.clipCount * f.tokenCount, d = f.featureCount
        let x0 = Matrix(rows: n, cols: d, storage: try f.tokens(depth: 0, clips: 0..<f.clipCount, as: Double.self))
        let x1 = Matrix(rows: n, cols: d, storage: try f.tokens(depth: 1, clips: 0..<f.clipCount, as: Double.self))
        let x2 = Matrix(rows: n, cols: d, storage: try f.tokens(depth: 2, clips: 0..<f.clipCount, as: Double.self))
        let x3 = Matrix(rows: n, cols: d, storage: try f.tokens(depth: 3, clips: 0..<f.clipCount, as: Double.self))
        for i in 0..<n {
            let a = x0.row(i), b = x1.row(i)
            let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
            let na = a.reduce(0) { $0 + $1 * $1 }.squareRoot(), nb = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
            // float32 storage: cosine and norms hold to ~1e-6.
            XCTAssertEqual(dot / (na * nb), cos(Double.pi / 6), accuracy: 1e-5)
            XCTAssertEqual(nb / na, 1, accuracy: 1e-5)
            for k in 0..<d { XCTAssertEqual(x2[i, k], 2.5 * x0[i, k], accuracy: 1e-5 * max(1, abs(x2[i, k]))) }
        }
        // Depth 3 is an orthogonal transform: the Gram matrices of rows agree.
        let g0 = Matrix.gramOfRows(x0.rows(0..<50)), g3 = Matrix.gramOfRows(x3.rows(0..<50))
        XCTAssertLessThan(zip(g0.storage, g3.storage).map { abs($0 - $1) }.max()!, 1e-3)
    }

    func testSpectrumFixtureHasExactCovariances() throws {
        let f = try ActivationFile(path: fixturePath("spectrum.h5"))
        for (depth, lambdas) in FixtureSet.spectrumEigenvalues.enumerated() {
            let v = try clipVectors(f, depth)
            var cov = Matrix.gramOfColumns(v.centeredColumns())
            for i in cov.storage.indices { cov.storage[i] /= Double(f.clipCount - 1) }
            for i in 0..<8 {
                for j in 0..<8 {
                    XCTAssertEqual(cov[i, j], i == j ? lambdas[i] : 0, accuracy: 2e-5, "depth \(depth) (\(i),\(j))")
                }
            }
        }
    }

    func testAttentionFixtureRowsSumToOne() throws {
        let f = try ActivationFile(path: fixturePath("attention.h5"))
        XCTAssertEqual(f.attentionShapes.keys.sorted(), [1, 2, 3])
        for depth in 1...3 {
            let a = try f.attention(depth: depth)
            for row in stride(from: 0, to: a.count, by: 8) {
                XCTAssertEqual(a[row..<(row + 8)].reduce(0, +), 1, accuracy: 1e-6)
            }
        }
        let p = try XCTUnwrap(f.positions())
        XCTAssertEqual(Array(p.prefix(6)), [0.5, 7.5, 7.5, 0.5, 7.5, 23.5])
        XCTAssertEqual(Array(p.suffix(3)), [2.5, 23.5, 23.5])
    }
}
