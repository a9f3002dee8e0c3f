import ActivationStore
import LinearAlgebra

/// Large random activation files for benchmarks and robustness tests.
public enum RandomActivations {
    /// Writes an N×T×D Gaussian file with depths 0...layers, streaming `batch` clips at a time,
    /// so files much larger than memory can be produced. Depth ℓ is depth ℓ−1 plus fresh noise,
    /// which gives neighbouring depths a realistic similarity.
    ///
    /// - Parameter progress: called with the fraction done after each batch.
    public static func write(path: String, clips: Int, tokens: Int, features: Int, layers: Int,
                             seed: UInt64 = 0, type: ElementType = .float32, labels: [String: Int] = ["class": 10],
                             progress: ((Double) -> Void)? = nil) throws {
        let blockEnds = layers >= 4 && layers % 4 == 0 ? stride(from: layers / 4, through: layers, by: layers / 4).map { $0 } : [layers]
        let meta = ActivationMetadata(run: "random-\(seed)", regime: Regime.external.rawValue, blockEnds: blockEnds,
                                      probeSet: "random", step: 0, seed: Int(seed),
                                      config: "{\"generator\":\"RandomActivations\",\"clips\":\(clips),\"tokens\":\(tokens),\"features\":\(features),\"layers\":\(layers)}")
        let w = try ActivationWriter(path: path, metadata: meta)
        for depth in 0...layers {
            try w.createTokens(depth: depth, clips: clips, tokens: tokens, features: features, type: type)
        }
        let batch = max(1, (8 << 20) / max(1, tokens * features * 4))
        var rng = SeededGenerator(seed: seed)
        var done = 0
        while done < clips {
            let count = min(batch, clips - done)
            var x = (0..<(count * tokens * features)).map { _ in Float(rng.nextGaussian()) }
            for depth in 0...layers {
                if depth > 0 { for i in x.indices { x[i] = 0.9 * x[i] + 0.45 * Float(rng.nextGaussian()) } }
                try w.writeTokens(depth: depth, firstClip: done, values: x)
            }
            done += count
            progress?(Double(done) / Double(clips))
        }
        for (name, classes) in labels.sorted(by: { $0.key < $1.key }) {
            try w.writeLabels(name, (0..<clips).map { _ in Int(rng.next() % UInt64(max(1, classes))) })
        }
        try w.writePositions((0..<tokens).flatMap { [Float($0), 0, 0] })
        try w.commit()
    }
}
