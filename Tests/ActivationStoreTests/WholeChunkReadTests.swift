@testable import ActivationStore
import TestSupport
import XCTest

/// Reads straight from stored chunks (HDF5File+WholeChunks) against values known in closed form, on
/// chunk shapes that leave partial chunks in every dimension, and the cases that must fall back to
/// H5Dread.
final class WholeChunkReadTests: XCTestCase {
    /// The value stored at (row, middle, last): exact in float32.
    func value(_ i: Int, _ j: Int, _ k: Int) -> Float { Float(i * 1000 + j * 10 + k) + 0.25 }

    /// A [rows, middle, last] dataset at /x holding `value`, chunked as given (nil: contiguous).
    func makeFile(_ path: String, shape: [Int], chunk: [Int]?, type: ElementType = .float32, writtenRows: Int? = nil) throws -> HDF5File {
        let f = try HDF5File.create(path: path, displayName: path)
        try f.createDataset("/x", shape: shape, type: type, chunk: chunk)
        let rows = writtenRows ?? shape[0]
        let rest = shape.dropFirst().reduce(1, *)
        var v: [Float] = []
        for i in 0..<rows {
            for r in 0..<rest {
                v.append(shape.count == 3 ? value(i, r / shape[2], r % shape[2]) : shape.count == 2 ? value(i, 0, r) : value(i, 0, 0))
            }
        }
        try f.write("/x", v, start: [0] + shape.dropFirst().map { _ in 0 }, count: [rows] + Array(shape.dropFirst()))
        return f
    }

    func expected(_ shape: [Int], rows: Range<Int>) -> [Float] {
        var out: [Float] = []
        for i in rows {
            for r in 0..<shape.dropFirst().reduce(1, *) {
                out.append(shape.count == 3 ? value(i, r / shape[2], r % shape[2]) : shape.count == 2 ? value(i, 0, r) : value(i, 0, 0))
            }
        }
        return out
    }

    /// Whether the direct path accepts rows `rows` of /x (and what it read).
    func direct(_ f: HDF5File, _ shape: [Int], rows: Range<Int>) throws -> [Float]? {
        try HDF5Library.sync {
            let ds = try f.openDataset("/x")
            var out = [Float](repeating: -1, count: rows.count * shape.dropFirst().reduce(1, *))
            let ok = out.withUnsafeMutableBufferPointer {
                f.readWholeChunks(ds, start: [rows.lowerBound] + shape.dropFirst().map { _ in 0 },
                                  count: [rows.count] + Array(shape.dropFirst()), into: $0)
            }
            return ok ? out : nil
        }
    }

    func testRowsOfPartialChunksReadExactly() throws {
        let dir = TemporaryDirectory()
        for (shape, chunk) in [([10, 7, 12], [3, 2, 5]), ([10, 7, 12], [10, 7, 12]), ([5, 4, 3], [1, 1, 1]),
                               ([9, 11], [4, 5]), ([8], [3])] {
            let f = try makeFile(dir.file("c\(shape.count)-\(chunk.reduce(1, *)).h5"), shape: shape, chunk: chunk)
            for rows in [0..<shape[0], 0..<1, 1..<2, 2..<shape[0] - 1, (shape[0] - 1)..<shape[0], 3..<min(7, shape[0])] {
                let want = expected(shape, rows: rows)
                XCTAssertEqual(try direct(f, shape, rows: rows), want, "shape \(shape) chunk \(chunk) rows \(rows): direct path")
                let start = [rows.lowerBound] + shape.dropFirst().map { _ in 0 }
                XCTAssertEqual(try f.read("/x", as: Float.self, start: start, count: [rows.count] + Array(shape.dropFirst())), want,
                               "shape \(shape) chunk \(chunk) rows \(rows): read")
            }
        }
    }

    /// The visited chunks, put back in place, are the dataset's rows; they come in row-major chunk order.
    func testStoredChunksCoverTheRowsInOrder() throws {
        let dir = TemporaryDirectory()
        let shape = [10, 7, 12]
        let f = try makeFile(dir.file("m.h5"), shape: shape, chunk: [3, 2, 5])
        for rows in [0..<10, 4..<9] {
            var rebuilt = [Float](repeating: .nan, count: rows.count * 7 * 12)
            var origins: [[Int]] = []
            let visited = try f.forEachStoredChunk("/x", rows: rows, middle: 7, last: 12) { chunk in
                origins.append(chunk.origin)
                XCTAssertEqual(chunk.chunk, [3, 2, 5])
                XCTAssertEqual(chunk.values.count, 30)
                for i in chunk.rows {
                    for j in 0..<min(2, 7 - chunk.origin[1]) {
                        for k in 0..<min(5, 12 - chunk.origin[2]) {
                            rebuilt[((i - rows.lowerBound) * 7 + chunk.origin[1] + j) * 12 + chunk.origin[2] + k] =
                                chunk.values[((i - chunk.origin[0]) * 2 + j) * 5 + k]
                        }
                    }
                }
            }
            XCTAssertTrue(visited)
            XCTAssertEqual(rebuilt, expected(shape, rows: rows), "rows \(rows)")
            XCTAssertEqual(origins, origins.sorted { $0.lexicographicallyPrecedes($1) }, "row-major chunk order")
            XCTAssertEqual(origins.count, Set(origins.map { $0[0] }).count * 4 * 3)
        }
        let contiguous = try makeFile(dir.file("c.h5"), shape: shape, chunk: nil)
        XCTAssertFalse(try contiguous.forEachStoredChunk("/x", rows: 0..<10, middle: 7, last: 12) { _ in XCTFail("visited") })
    }

    /// Chunks of 512 KiB: a block of rows spans several slabs (`HDF5File.slabBytes`), read and visited
    /// in turn; the visit is still complete and in row-major chunk order.
    func testLargeChunksAreVisitedSlabBySlab() throws {
        let dir = TemporaryDirectory()
        let shape = [3, 300, 1000], chunk = [2, 128, 512]
        XCTAssertGreaterThanOrEqual(chunk.reduce(1, *) * 4, HDF5File.slabBytes, "one chunk per slab")
        let f = try makeFile(dir.file("big.h5"), shape: shape, chunk: chunk)
        for rows in [0..<3, 1..<3] {
            var rebuilt = [Float](repeating: .nan, count: rows.count * 300 * 1000)
            var origins: [[Int]] = []
            XCTAssertTrue(try f.forEachStoredChunk("/x", rows: rows, middle: 300, last: 1000) { c in
                origins.append(c.origin)
                for i in c.rows {
                    for j in 0..<min(128, 300 - c.origin[1]) {
                        for k in 0..<min(512, 1000 - c.origin[2]) {
                            rebuilt[((i - rows.lowerBound) * 300 + c.origin[1] + j) * 1000 + c.origin[2] + k] =
                                c.values[((i - c.origin[0]) * 128 + j) * 512 + k]
                        }
                    }
                }
            })
            XCTAssertEqual(rebuilt, expected(shape, rows: rows), "rows \(rows)")
            XCTAssertEqual(origins, origins.sorted { $0.lexicographicallyPrecedes($1) }, "row-major chunk order")
            XCTAssertEqual(origins.count, Set(origins.map { $0[0] }).count * 3 * 2)
        }
    }

    func testDatasetsNotStoredInPlainFloatChunksFallBack() throws {
        let dir = TemporaryDirectory()
        let shape = [6, 4, 5]
        let contiguous = try makeFile(dir.file("contiguous.h5"), shape: shape, chunk: nil)
        XCTAssertNil(try direct(contiguous, shape, rows: 0..<6))
        XCTAssertEqual(try contiguous.read("/x", as: Float.self, start: [1, 0, 0], count: [3, 4, 5]), expected(shape, rows: 1..<4))

        let wide = try makeFile(dir.file("float64.h5"), shape: shape, chunk: [2, 4, 5], type: .float64)
        XCTAssertNil(try direct(wide, shape, rows: 0..<6))
        XCTAssertEqual(try wide.read("/x", as: Float.self, start: [1, 0, 0], count: [3, 4, 5]), expected(shape, rows: 1..<4))

        // Rows 3..<6 were never written: their chunks do not exist, HDF5 supplies the fill value 0.
        let sparse = try makeFile(dir.file("sparse.h5"), shape: shape, chunk: [3, 4, 5], writtenRows: 3)
        XCTAssertEqual(try direct(sparse, shape, rows: 0..<3), expected(shape, rows: 0..<3))
        XCTAssertNil(try direct(sparse, shape, rows: 2..<6))
        XCTAssertEqual(try sparse.read("/x", as: Float.self, start: [2, 0, 0], count: [4, 4, 5]),
                       expected(shape, rows: 2..<3) + [Float](repeating: 0, count: 3 * 20))

        // Part of a row is not whole rows.
        let f = try makeFile(dir.file("part.h5"), shape: shape, chunk: [2, 2, 2])
        let partial = try HDF5Library.sync { () -> Bool in
            let ds = try f.openDataset("/x")
            var out = [Float](repeating: 0, count: 2 * 2 * 5)
            return out.withUnsafeMutableBufferPointer { f.readWholeChunks(ds, start: [0, 1, 0], count: [2, 2, 5], into: $0) }
        }
        XCTAssertFalse(partial)
        XCTAssertEqual(try f.read("/x", as: Float.self, start: [0, 1, 0], count: [2, 2, 5]),
                       (0..<2).flatMap { i in (1..<3).flatMap { j in (0..<5).map { k in value(i, j, k) } } })
    }
}
