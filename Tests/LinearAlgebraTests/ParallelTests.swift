import Foundation
import LinearAlgebra
import XCTest

/// The suite's concurrency helper, its one list parser and its typed option values.
final class ParallelTests: XCTestCase {
    func testForEachRangeCoversEveryIndexOnce() {
        for (count, grain) in [(0, 1), (1, 1), (7, 1), (1000, 1), (1000, 300), (1000, 2000)] {
            let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
            hits.initialize(repeating: 0)
            defer { hits.deallocate() }
            Parallel.forEachRange(count, grain: grain) { range in
                for i in range { hits[i] += 1 }
            }
            XCTAssertTrue(hits.prefix(count).allSatisfy { $0 == 1 }, "count \(count), grain \(grain)")
        }
    }

    func testMapKeepsIndexOrderAndReportsEachJobOnceInCompletionOrder() {
        var seen: [Int] = []
        var counts: [Int] = []
        let squares = Parallel.map(50, { i in i * i }, finished: { i, value, done in
            XCTAssertEqual(value, i * i)
            seen.append(i)
            counts.append(done)
        })
        XCTAssertEqual(squares, (0..<50).map { $0 * $0 })
        XCTAssertEqual(seen.sorted(), Array(0..<50))
        XCTAssertEqual(counts, Array(1...50), "done counts up by one per call: the calls never overlap")
        XCTAssertEqual(Parallel.map(0, { $0 }), [])
    }

    /// Jobs run at most `ThreadSetting.count` at a time, each once, even when the machine has more cores
    /// (Dispatch alone would start one worker per core).
    func testConcurrentJobsStayWithinTheThreadSetting() {
        let before = ThreadSetting.count
        defer { ThreadSetting.set(before) }
        for threads in [2, 3] {
            ThreadSetting.set(threads)
            let state = NSLock()
            var running = 0, most = 0
            var runs = [Int](repeating: 0, count: 24)
            ThreadSetting.concurrently(24) { i in
                state.lock(); running += 1; most = max(most, running); runs[i] += 1; state.unlock()
                Thread.sleep(forTimeInterval: 0.005)
                state.lock(); running -= 1; state.unlock()
            }
            XCTAssertEqual(runs, [Int](repeating: 1, count: 24), "\(threads) threads")
            XCTAssertLessThanOrEqual(most, threads)
            XCTAssertGreaterThanOrEqual(most, 1)
        }
    }

    func testDurationSeconds() {
        XCTAssertEqual(Duration.seconds(2).seconds, 2)
        XCTAssertEqual(Duration.milliseconds(1500).seconds, 1.5, accuracy: 1e-12)
    }

    func testParseList() {
        XCTAssertEqual(parseList("1,5,10", as: Int.self), [1, 5, 10])
        XCTAssertEqual(parseList(" 1 , 5 ", as: Int.self), [1, 5])
        XCTAssertEqual(parseList("0.1,1", as: Double.self), [0.1, 1])
        XCTAssertNil(parseList("1,x", as: Int.self))
        XCTAssertNil(parseList("", as: Int.self))
        XCTAssertEqual(parseList("", as: Int.self, allowingEmpty: true), [])
        XCTAssertEqual(parseList("a, b", as: String.self), ["a", "b"])
    }

    struct Even: ArgumentSyntax {
        var n: Int
        init(parsing text: String) throws {
            guard let n = Int(text), n % 2 == 0 else { throw TestError(description: "'\(text)' is not even") }
            self.n = n
        }
    }
    struct TestError: Error, CustomStringConvertible { var description: String }

    func testCheckedKeepsTheTextAndThrowsTheParseErrorWhenChecked() throws {
        let good = Checked<Even>("4")
        XCTAssertNoThrow(try good.check())
        XCTAssertEqual(good.value.n, 4)
        XCTAssertEqual(good.text, "4")
        let bad = Checked<Even>("3")
        XCTAssertThrowsError(try bad.check()) { XCTAssertEqual("\($0)", "'3' is not even") }
    }
}
