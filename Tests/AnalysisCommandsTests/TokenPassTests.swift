import ActivationStore
@testable import AnalysisCommands
import Foundation
import LinearAlgebra
import RepresentationMetrics
import TestSupport
import XCTest

/// The one-process token pass (`TokenPass`): its numbers are those of single accumulators fed every clip
/// in order, to the bit, and its clip vectors those `DepthStream` pools, whatever the slabs and chunks.
final class TokenPassTests: XCTestCase {
    let n = 23, t = 6, d = 10, depths = 5

    /// Random tokens at depths 0...4, stored as `type` (float32 by default) in chunks of [4, 4, 3] (h5py-like:
    /// every dimension split, partial chunks at every edge); depth `nanDepth` gets a NaN in clip `nanClip`.
    /// Returns the values written (before any rounding to the stored type).
    func writeFile(_ path: String, type: ElementType = .float32, nanDepth: Int? = nil, nanClip: Int = 10) throws -> [[Float]] {
        var rng = SeededGenerator(seed: 11)
        let w = try ActivationWriter(path: path, metadata: ActivationMetadata(run: "tp", regime: "e2e", blockEnds: [2, 4],
                                                                             probeSet: "p", step: 1, seed: 1, config: "{}"))
        var all: [[Float]] = []
        for depth in 0..<depths {
            var v = (0..<(n * t * d)).map { _ in Float.random(in: -1..<1, using: &rng) + (depth == 2 ? 0.5 : 0) }
            if depth == nanDepth { v[nanClip * t * d + 7] = .nan }
            try w.createTokens(depth: depth, clips: n, tokens: t, features: d, type: type, chunk: [4, 4, 3])
            try w.writeTokens(depth: depth, firstClip: 0, values: v)
            all.append(v)
        }
        try w.writeLabels("c", (0..<n).map { $0 % 3 })
        try w.commit()
        return all
    }

    func testSlabsGiveTheNumbersOfOneAccumulatorFedEveryClipInOrder() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("tp.h5")
        let tokens = try writeFile(path)
        let f = try ActivationFile(path: path)
        XCTAssertEqual(f.chunkClips, 4)
        // 1 KB slabs: 4 clips each (one chunk of clips), so 6 slabs, the last partial.
        var pass = TokenPass(file: f, depths: Array(0..<depths), keepsClipValues: true, keepsClipVectors: true)
        pass.slabBytes = 1000
        XCTAssertEqual(pass.slabs().count, 6)
        let m = try pass.run(progress: nil)
        for i in 0..<depths {
            var one = PatchSimilarityAccumulator(keepsClipValues: true)
            try one.add(tokens[i], clips: n, tokens: t, features: d)
            XCTAssertEqual(try m.patch[i].value(), try one.value(), "depth \(i)")
            XCTAssertEqual(m.patch[i].clipValues, one.clipValues)
            XCTAssertNil(m.patchErrors[i])
            // The clip vectors are DepthStream's, bit for bit.
            XCTAssertEqual(m.clipVectors[i], try DepthStream.tokenMeans(f, depth: i, clips: 0..<n), "depth \(i)")
            XCTAssertEqual(m.clipVectors[i], DepthStream.tokenMeans(tokens[i], clips: n, tokens: t, features: d))
        }
        for i in 0..<(depths - 1) {
            var one = TokenShiftAccumulator()
            try one.add(from: tokens[i], to: tokens[i + 1], clips: n, tokens: t, features: d)
            XCTAssertEqual(try m.shifts[i].result(), try one.result(), "pair \(i)")
        }
        // The patch similarity of depth 0 against the definition evaluated directly (float64, by pairs).
        var total = 0.0
        for c in 0..<n {
            var z: [[Double]] = []
            for j in 0..<t {
                let x = (0..<d).map { Double(tokens[0][(c * t + j) * d + $0]) }
                let mean = x.reduce(0, +) / Double(d)
                let y = x.map { $0 - mean }
                let norm = y.map { $0 * $0 }.reduce(0, +).squareRoot()
                z.append(y.map { $0 / norm })
            }
            var s = 0.0
            for a in 0..<t { for b in 0..<t where a != b { s += zip(z[a], z[b]).map(*).reduce(0, +) } }
            total += s / Double(t * (t - 1))
        }
        XCTAssertEqual(try m.patch[0].value(), total / Double(n), accuracy: 1e-13)
    }

    func testTheSharedClipVectorsReplaceReadingTheTokens() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("tp.h5")
        _ = try writeFile(path)
        let f = try ActivationFile(path: path)
        var tokens = TokenAnalysis()
        tokens.depthSelection = .layers
        let (report, shared) = try tokens.runSharingClipVectors(f)
        XCTAssertEqual(report.records, try tokens.run(f).records)
        XCTAssertEqual(Set(shared.knownClipVectors.keys), Set(0..<depths))
        XCTAssertTrue(f.knownClipVectors.isEmpty, "the original file is left as it was")
        let part = try DepthStream.load(shared, depth: 3, clips: 5..<9, pooling: .mean)
        XCTAssertEqual(part.storage, try DepthStream.tokenMeans(f, depth: 3, clips: 5..<9))
        // Analyses of clip vectors give the same records from the shared vectors as from the tokens.
        var spectrum = SpectrumAnalysis()
        spectrum.depthSelection = .layers
        XCTAssertEqual(try spectrum.run(shared).records, try spectrum.run(f).records)
        var probe = ProbeAnalysis()
        probe.depthSelection = .layers
        XCTAssertEqual(try probe.run(shared).records, try probe.run(f).records)
        var cka = CKAAnalysis()
        cka.depthSelection = .layers
        cka.pairs = .all
        XCTAssertEqual(try cka.run(shared).records, try cka.run(f).records)
        // That the shared vectors are the ones used: vectors that differ change the answer.
        let zeroed = f.sharingClipVectors([3: [Double](repeating: 0, count: n * d)])
        XCTAssertEqual(try DepthStream.load(zeroed, depth: 3, clips: 0..<n, pooling: .mean).storage, [Double](repeating: 0, count: n * d))
    }

    /// The pass's numbers on `f` against single accumulators fed every clip in order, as `S` read back.
    func assertMatchesOneAccumulator<S: TokenScalar>(_ m: TokenAnalysis.Measured, _ f: ActivationFile, as: S.Type,
                                                     file: StaticString = #filePath, line: UInt = #line) throws {
        func read(_ depth: Int) throws -> [S] {
            S.self == Double.self ? try f.tokens(depth: depth, clips: 0..<n, as: Double.self) as! [S]
                                  : try f.tokens(depth: depth, clips: 0..<n, as: Float.self) as! [S]
        }
        let x = try (0..<depths).map(read)
        for i in 0..<depths {
            var one = PatchSimilarityAccumulator(keepsClipValues: true)
            if let v = x[i] as? [Double] { try one.add(v, clips: n, tokens: t, features: d) }
            else { try one.add(x[i] as! [Float], clips: n, tokens: t, features: d) }
            XCTAssertEqual(try m.patch[i].value(), try one.value(), "depth \(i)", file: file, line: line)
            XCTAssertEqual(m.patch[i].clipValues, one.clipValues, file: file, line: line)
            XCTAssertEqual(m.clipVectors[i], try DepthStream.tokenMeans(f, depth: i, clips: 0..<n), "depth \(i)", file: file, line: line)
        }
        for i in 0..<(depths - 1) {
            var one = TokenShiftAccumulator()
            if let a = x[i] as? [Double] { try one.add(from: a, to: x[i + 1] as! [Double], clips: n, tokens: t, features: d) }
            else { try one.add(from: x[i] as! [Float], to: x[i + 1] as! [Float], clips: n, tokens: t, features: d) }
            XCTAssertEqual(try m.shifts[i].result(), try one.result(), "pair \(i)", file: file, line: line)
        }
    }

    func testFloat16AndFloat64FilesGiveTheNumbersOfOneAccumulator() throws {
        let dir = TemporaryDirectory()
        for type in [ElementType.float16, .float64] {
            let path = dir.file("tp-\(type).h5")
            let written = try writeFile(path, type: type)
            let f = try ActivationFile(path: path)
            var pass = TokenPass(file: f, depths: Array(0..<depths), keepsClipValues: true, keepsClipVectors: true)
            pass.slabBytes = 1000
            XCTAssertEqual(pass.isWide, type == .float64)
            // float16 is read through HDF5's conversion (the chunks are not float32); float64 as float64,
            // so a slab of 1000 bytes holds 2 clips there (480 bytes a clip), 4 (one chunk) for float16.
            XCTAssertEqual(pass.slabs().count, type == .float64 ? 12 : 6)
            let m = try pass.run(progress: nil)
            if type == .float64 {
                try assertMatchesOneAccumulator(m, f, as: Double.self)
                // float64 stores the written float32 values exactly.
                XCTAssertEqual(try f.tokens(depth: 1, clips: 0..<n, as: Double.self), written[1].map(Double.init))
            } else {
                try assertMatchesOneAccumulator(m, f, as: Float.self)
                // The values read are the float32 written rounded to float16, not the float32 values themselves.
                let read = try f.tokens(depth: 1, clips: 0..<n)
                XCTAssertEqual(read, written[1].map { Float(Float16($0)) })
                XCTAssertTrue(zip(read, written[1]).contains { $0 != $1 })
            }
        }
    }

    func testSlabsFollowTheBatchBudgetEvenBelowAChunk() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("tp.h5")
        let written = try writeFile(path)
        let f = try ActivationFile(path: path)
        // The values read back are the ones written (so the comparisons below are with the file's contents).
        for i in 0..<depths { XCTAssertEqual(try f.tokens(depth: i, clips: 0..<n), written[i]) }
        var pass = TokenPass(file: f, depths: Array(0..<depths), keepsClipValues: true, keepsClipVectors: true)
        // 500 bytes hold 2 clips of 240 bytes, less than a chunk of 4 clips: each chunk of clips is split
        // in two instead of rounding the slab up to it; the last chunk (3 clips) into 1 + 2.
        pass.slabBytes = 500
        XCTAssertEqual(pass.slabs(), stride(from: 0, to: 20, by: 2).map { $0..<($0 + 2) } + [20..<21, 21..<23])
        try assertMatchesOneAccumulator(try pass.run(progress: nil), f, as: Float.self)
        // One clip a slab.
        pass.slabBytes = 1
        XCTAssertEqual(pass.slabs(), (0..<n).map { $0..<($0 + 1) })
        try assertMatchesOneAccumulator(try pass.run(progress: nil), f, as: Float.self)
        // Through the analysis: the budget sets the slabs (two depths of a slab per core within it), and
        // changes no record.
        func slabCount(_ budget: Int) throws -> (count: Int, records: [MetricRecord]) {
            var a = TokenAnalysis()
            a.depthSelection = .layers
            a.maxBatchBytes = budget
            var total = 0
            let records = try a.run(f) { _, all in total = all }.records
            return (total, records)
        }
        var expected = pass
        expected.slabBytes = TokenPass.slabBytes(budget: 2000)
        XCTAssertEqual(TokenPass.slabBytes(budget: 2000), 2000 / (2 * Parallel.threads))
        let small = try slabCount(2000), large = try slabCount(64 << 20)
        XCTAssertEqual(small.count, expected.slabs().count)
        XCTAssertGreaterThanOrEqual(small.count, 12)
        XCTAssertEqual(large.count, 1)
        XCTAssertEqual(small.records, large.records)
    }

    func testAFailingReadFailsThePassNamingTheFile() throws {
        // A gzip-compressed file with one damaged chunk at depth 1 (Tests/HostileCorpus, written by
        // scripts/make-hostile-corpus.py): its chunks are filtered, so the pass reads through HDF5, which fails.
        let path = repositoryRoot.appendingPathComponent("Tests/HostileCorpus/gzip-damaged-chunk.h5").path
        let f = try ActivationFile(path: path)
        let pass = TokenPass(file: f, depths: Array(f.depths), keepsClipValues: false, keepsClipVectors: true)
        XCTAssertThrowsError(try pass.run(progress: nil)) { error in
            XCTAssertTrue("\(error)".contains("gzip-damaged-chunk.h5"), "\(error)")
        }
    }

    func testANonFiniteValueUndefinesItsDepthAndPairsOnlyNamingItsSlab() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("nan.h5")
        let tokens = try writeFile(path, nanDepth: 2, nanClip: 10)
        let f = try ActivationFile(path: path)
        var pass = TokenPass(file: f, depths: Array(0..<depths), keepsClipValues: false, keepsClipVectors: false)
        pass.slabBytes = 1000
        let m = try pass.run(progress: nil)
        XCTAssertEqual(m.patchErrors.map { $0 != nil }, [false, false, true, false, false])
        XCTAssertTrue(m.patchErrors[2]!.hasPrefix("in clips 8..<12: "), m.patchErrors[2]!)
        XCTAssertTrue(m.patchErrors[2]!.contains("clip 2 of the chunk, token 0, feature 7"), m.patchErrors[2]!)
        XCTAssertEqual(m.shiftErrors.map { $0 != nil }, [false, true, true, false])
        var one = PatchSimilarityAccumulator()
        try one.add(tokens[4], clips: n, tokens: t, features: d)
        XCTAssertEqual(try m.patch[4].value(), try one.value())
        XCTAssertTrue(m.clipVectors.isEmpty)
    }
}
