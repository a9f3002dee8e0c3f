@testable import BlockwiseTraining
import ActivationStore
import Foundation
import LinearAlgebra
import TestSupport
import XCTest

/// A process splits its batch over its threads, one model replica per part (Trainer.replicaParts): the
/// same training as one replica on the whole batch, up to the order of float additions.
final class ReplicaTests: XCTestCase {
    override func tearDown() { ThreadSetting.set(ThreadSetting.machineCores) }

    func train(_ c: TrainingConfig, threads: Int) throws -> Trainer {
        ThreadSetting.set(threads)
        let dir = TemporaryDirectory()
        let t = try Trainer(config: c, directory: dir.path, resume: false)
        try t.run()
        return t
    }

    func testPartsSplitTheShareLikeRanks() {
        ThreadSetting.set(2)
        XCTAssertEqual(Trainer.replicaParts(0..<7), [0..<4, 4..<7])
        XCTAssertEqual(Trainer.replicaParts(3..<4), [3..<4])
        ThreadSetting.set(3)
        XCTAssertEqual(Trainer.replicaParts(0..<8), [0..<3, 3..<6, 6..<8])
        ThreadSetting.set(1)
        XCTAssertEqual(Trainer.replicaParts(0..<8), [0..<8])
    }

    /// Two replicas against one in every regime (and three in the simultaneous one), an uneven split (7 clips: 4 + 3, 3 + 2 + 2),
    /// 20 steps: losses within 1e-4 relative at every step, parameters within 1e-5 relative at the end.
    func testReplicasTrainLikeOneModel() throws {
        for regime in Regime.trainable {
            var c = try smallConfig(regime, steps: 20)
            c.batchSize = 7
            c.logEvery = 1
            c.dumpSteps = []
            let one = try train(c, threads: 1)
            for threads in regime == .simultaneous ? [2, 3] : [2] {
                let split = try train(c, threads: threads)
                XCTAssertEqual(split.curveSteps, one.curveSteps)
                var worst: Float = 0
                for (a, b) in zip(split.curveLosses, one.curveLosses) where !b.isNaN {
                    worst = max(worst, abs(a - b) / abs(b))
                }
                XCTAssertLessThanOrEqual(worst, 1e-4, "\(regime), \(threads) replicas: losses")
                let p = split.model.params.array, q = one.model.params.array
                var diff: Float = 0, norm: Float = 0
                for i in p.indices { diff += (p[i] - q[i]) * (p[i] - q[i]); norm += q[i] * q[i] }
                XCTAssertLessThanOrEqual((diff / norm).squareRoot(), 1e-5, "\(regime), \(threads) replicas: parameters")
                print("replicas: \(regime) \(threads) threads: losses \(worst), parameters \((diff / norm).squareRoot())")
            }
        }
    }
}
