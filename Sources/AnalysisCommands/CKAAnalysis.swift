import ActivationStore
import Collective
import Foundation
import LinearAlgebra
import RepresentationMetrics

/// `bwanalyze cka`: CKA between depths of one file, or between the depths of two files of the same clips.
public struct CKAAnalysis {
    public enum Pairs: String, Sendable, CaseIterable {
        /// One file: each depth with the next selected depth.
        case consecutive
        /// One file: every pair i < j. Two files: every depth of A with every depth of B.
        case all
        /// Two files: the same depth in both.
        case matching
    }

    public var depthSelection: DepthSelection = .blocks
    public var pairs: Pairs? = nil
    public var kernel: CKAKernel = .linear
    public var estimator: CKAEstimator = .biased
    public var bandwidth: RBFBandwidth = .paperMedian
    public var batchSize = 256
    public var pooling: Pooling = .mean
    public var allowDifferentProbeSets = false
    /// Largest number of rows for which N×N Gram matrices are formed (RBF, or linear with D > N).
    public var maxGramRows = 8192
    /// Memory budget of one streamed batch (bytes of float64 tokens over all selected depths).
    public var maxBatchBytes = 64 << 20
    /// When set (linear kernel, biased estimator, mean pooling), CKA values get bootstrap intervals over
    /// clips (`CKA.linearBootstrap`). With `--pairs all` on one file only the pairs a report reads get
    /// them: consecutive selected depths, consecutive block boundaries, and the first with the last depth.
    public var bootstrap: Bootstrap? = nil
    /// Largest N for the bootstrap (its cost is O(N²·B) per pair).
    public var maxBootstrapClips = 2048
    /// The job this analysis is part of (docs/mpi.md): each rank streams its share of the clips; the
    /// feature-space sums are added over ranks, the rows of Gram-matrix CKA are gathered. Rank 0 alone
    /// computes the bootstrap intervals.
    public var communicator: any Communicator = SingleProcess()

    public init() {}

    /// Conventions of the rows (the metric's own comes from `Metric`).
    public static let conventions: [String: String] = [
        "pooling_mean": "rows are clip vectors: the mean over a clip's tokens",
        "pooling_tokens": "rows are tokens: N*T rows",
    ]

    /// The metric of the chosen kernel and estimator.
    var metric: Metric {
        get throws {
            guard let m = Metric.cka(kernel, estimator) else {
                throw AnalysisError("the minibatch estimator is implemented for the linear kernel only; use --kernel linear or --estimator biased|debiased")
            }
            return m
        }
    }

    /// The compared representations (one stream source per file) and the pairs of them.
    struct Plan {
        var sources: [DepthStream.Source]
        var pairs: [CKAPair]
        /// (depth in A, depth in B) of each pair.
        var depths: [(Int, Int)]
        var mode: Pairs
        /// b aligned to a's clip order, if there is a b.
        var b: ActivationFile?
    }

    func plan(_ a: ActivationFile, _ unalignedB: ActivationFile?) throws -> Plan {
        let depthsA = try depthSelection.depths(in: a)
        var p = Plan(sources: [DepthStream.Source(file: a, depths: depthsA)], pairs: [], depths: [], mode: .all, b: nil)
        func add(_ i: Int, _ j: Int, _ da: Int, _ db: Int) {
            p.pairs.append(CKAPair(i, j))
            p.depths.append((da, db))
        }
        if let unaligned = unalignedB {
            let b = try alignClips(a, unaligned, allowDifferentProbeSets: allowDifferentProbeSets)
            p.b = b
            let depthsB = try depthSelection.depths(in: b)
            p.sources.append(DepthStream.Source(file: b, depths: depthsB))
            p.mode = pairs ?? .all
            switch p.mode {
            case .consecutive:
                throw AnalysisError("--pairs consecutive compares depths within one file; with two files use --pairs all or matching")
            case .all:
                for (i, da) in depthsA.enumerated() {
                    for (j, db) in depthsB.enumerated() { add(i, depthsA.count + j, da, db) }
                }
            case .matching:
                for (i, da) in depthsA.enumerated() {
                    if let j = depthsB.firstIndex(of: da) { add(i, depthsA.count + j, da, da) }
                }
                if p.pairs.isEmpty { throw AnalysisError("the two files share no selected depth") }
            }
        } else {
            p.mode = pairs ?? .consecutive
            switch p.mode {
            case .consecutive:
                guard depthsA.count >= 2 else { throw AnalysisError("consecutive CKA needs at least two depths; got \(depthsA)") }
                for i in 0..<(depthsA.count - 1) { add(i, i + 1, depthsA[i], depthsA[i + 1]) }
            case .all:
                for i in depthsA.indices { for j in depthsA.indices where i < j { add(i, j, depthsA[i], depthsA[j]) } }
            case .matching:
                throw AnalysisError("--pairs matching needs two files")
            }
        }
        return p
    }

    /// The pairs that get bootstrap intervals (indices into `plan.pairs`), with a warning when none can.
    func bootstrapPairs(_ a: ActivationFile, _ plan: Plan, rows: Int, warnings: inout [String]) -> [Int] {
        guard bootstrap != nil else { return [] }
        if kernel != .linear || estimator != .biased || pooling != .mean {
            warnings.append("bootstrap intervals are computed for linear biased CKA of clip vectors only")
            return []
        }
        if rows > maxBootstrapClips {
            warnings.append("bootstrap intervals skipped: N = \(rows) > \(maxBootstrapClips) clips")
            return []
        }
        guard plan.b == nil && plan.mode == .all else { return Array(plan.pairs.indices) }
        let depthsA = plan.sources[0].depths
        let blockDepths = [0] + a.metadata.blockEnds
        return plan.pairs.indices.filter { k in
            let (da, db) = plan.depths[k]
            let i = depthsA.firstIndex(of: da)!, j = depthsA.firstIndex(of: db)!
            if j == i + 1 || (da == depthsA.first! && db == depthsA.last!) { return true }
            if let bi = blockDepths.firstIndex(of: da), bi + 1 < blockDepths.count, blockDepths[bi + 1] == db { return true }
            return false
        }
    }

    /// The file and depth of each representation (stream order), for messages.
    func representations(_ plan: Plan) -> [(file: String, depth: Int)] {
        plan.sources.flatMap { s in s.depths.map { (s.file.path, $0) } }
    }

    static func zeroVariance(_ rep: (file: String, depth: Int)) -> MetricUndefined {
        MetricUndefined("zero variance at depth \(rep.depth) of \(rep.file) (all rows equal up to float32 rounding)")
    }

    /// CKA of every pair from N×N Gram matrices (RBF, or linear with D > N); keeps the clip vectors of `keep`.
    func gramValues(_ plan: Plan, stream: DepthStream, dims: [Int], rows: Int, keep: Set<Int>, clipVectors: inout [Int: [Double]],
                    parameters: inout [String: String], progress: ((Int, Int) -> Void)?) throws -> [Result<Double, Error>] {
        guard rows <= maxGramRows else {
            throw AnalysisError("\(kernel == .rbf ? "RBF CKA" : "this CKA") needs \(rows)x\(rows) Gram matrices; that is more than --max-gram-rows \(maxGramRows). Use --pool mean, fewer clips, or the linear kernel")
        }
        let repDepth = representations(plan)
        let collected = try communicator.jointly {
            var collected: [[Double]] = dims.map { _ in [] }
            try stream.forEach(progress: progress) { _, batch in
                for (m, x) in batch.enumerated() { collected[m] += x.storage }
            }
            return collected
        }
        let reps = dims.indices.map { communicator.gatherRows(Matrix(rows: collected[$0].count / dims[$0], cols: dims[$0], storage: collected[$0])) }
        for m in keep { clipVectors[m] = reps[m].storage }
        // The Gram matrices are formed a few at a time (one per core, single-threaded BLAS each; one at a
        // time inside another parallel job, where they would run in order anyway; and only as many more
        // than one as fit in the batch budget, so memory does not grow with the cores), in
        // representation order, and each is released once every pair using it has its value: for
        // consecutive pairs at most window + 1 N×N matrices are held, not one per representation.
        let members = Set(plan.pairs.flatMap { [$0.a, $0.b] }).sorted()
        var uses: [Int: Int] = [:]
        for p in plan.pairs { uses[p.a, default: 0] += 1; uses[p.b, default: 0] += 1 }
        var grams: [Int: Result<(Matrix<Double>, Double?), Error>] = [:]
        var values = [Result<Double, Error>?](repeating: nil, count: plan.pairs.count)
        var gammas: [Int: Double] = [:]
        let (kernel, bandwidth, estimator) = (self.kernel, self.bandwidth, self.estimator)
        // Forming an RBF Gram holds about three N×N arrays (distances, their pairs for the median, the
        // kernel); a linear one, one.
        let gramBytes = max(1, (kernel == .rbf ? 3 : 1) * rows * rows * MemoryLayout<Double>.stride)
        let window = ThreadSetting.onWorkerThread ? 1 : min(max(0, Parallel.threads - 1), maxBatchBytes / gramBytes) + 1
        for first in stride(from: 0, to: members.count, by: window) {
            let part = Array(members[first..<min(first + window, members.count)])
            let formed = ThreadSetting.withSingleThreadedBLAS {
                Parallel.map(part.count) { i -> Result<(Matrix<Double>, Double?), Error> in
                    let m = part[i]
                    return Result {
                        if CKA.isEffectivelyConstant(reps[m]) { throw CKAAnalysis.zeroVariance(repDepth[m]) }
                        if kernel == .linear {
                            guard reps[m].nonFiniteCount == 0 else { throw MetricUndefined("NaN or Inf in the data") }
                            return (CKA.linearGram(reps[m]), nil)
                        }
                        let (k, gamma) = try CKA.rbfGram(reps[m], bandwidth: bandwidth)
                        return (k, gamma)
                    }
                }
            }
            for (m, g) in zip(part, formed) {
                grams[m] = g
                if case .success((_, let gamma?)) = g { gammas[m] = gamma }
            }
            for (k, p) in plan.pairs.enumerated() where values[k] == nil {
                guard let ga = grams[p.a], let gb = grams[p.b] else { continue }
                values[k] = Result { try CKA.fromGrams(ga.get().0, gb.get().0, estimator: estimator) }
                for m in [p.a, p.b] {
                    uses[m]! -= 1
                    if uses[m] == 0 { grams[m] = nil }
                }
            }
        }
        if kernel == .rbf {
            parameters["bandwidth"] = bandwidth.description
            parameters["gamma_per_representation"] = members.compactMap { gammas[$0] }.map { String(format: "%.6g", $0) }.joined(separator: ",")
        }
        parameters["form"] = "gram"
        return values.map { $0! }
    }

    /// Multiply-adds of linear CKA in feature space (a syrk per representation, a gemm per pair) and
    /// from N×N Gram matrices (a syrk per representation, a Frobenius product per pair).
    static func linearCost(rows n: Int, dims: [Int], pairs: [CKAPair]) -> (feature: Double, gram: Double) {
        let nd = Double(n)
        let feature = dims.reduce(0.0) { $0 + nd * Double($1 * $1) }
            + pairs.reduce(0.0) { $0 + (($1.a == $1.b) ? 0 : 2 * nd * Double(dims[$1.a] * dims[$1.b])) }
        let gram = dims.reduce(0.0) { $0 + nd * nd * Double($1) } + Double(pairs.count) * nd * nd
        return (feature, gram)
    }

    /// Whether biased linear CKA of clip vectors goes through Gram matrices (`clipGramValues`): when
    /// their products cost less than the feature-space sums (few clips against wide, many-paired
    /// representations, e.g. 1100 clips of 13 + 13 depths of width 384), and the Gram matrices of
    /// every representation, packed, fit the batch budget twice over.
    func usesClipGrams(rows n: Int, dims: [Int], pairs: [CKAPair]) -> Bool {
        guard kernel == .linear, estimator == .biased, pooling == .mean, n >= 2, n <= maxGramRows else { return false }
        let cost = CKAAnalysis.linearCost(rows: n, dims: dims, pairs: pairs)
        let packedBytes = Double(dims.count) * Double(n) * Double(n + 1) / 2 * 8
        return cost.gram < cost.feature && packedBytes <= 2 * Double(maxBatchBytes)
    }

    /// Biased linear CKA of every pair of clip vectors from centred Gram matrices K = XcXcᵀ:
    /// HSIC₀(X, Y) ∝ ⟨K, L⟩_F = ‖XcᵀYc‖²_F, the quantity the feature-space sums give. Each Gram matrix is
    /// formed once (one syrk) and kept packed, its strict upper triangle and its diagonal as rows of two
    /// matrices, whose Gram matrices (two more syrks) give every ⟨K, L⟩ = 2·⟨upper⟩ + ⟨diagonal⟩; each
    /// representation's clip vectors are released once its Gram matrix exists; keeps the clip vectors of
    /// `keep`.
    func clipGramValues(_ plan: Plan, stream: DepthStream, dims: [Int], rows n: Int, keep: Set<Int>, clipVectors: inout [Int: [Double]],
                        parameters: inout [String: String], progress: ((Int, Int) -> Void)?) throws -> [Result<Double, Error>] {
        let repDepth = representations(plan)
        let members = Set(plan.pairs.flatMap { [$0.a, $0.b] }).sorted()
        /// One representation's clip vectors, handed to the job that forms its Gram matrix and released
        /// there, or kept by the job that read them (each box is touched by one job only).
        final class Vectors: @unchecked Sendable {
            var values: [Double]
            init(_ values: [Double]) { self.values = values }
        }
        let boxes: [Vectors]
        // One process: each job reads its representation and forms its Gram matrix at once
        // (`DepthStream.readEach`). Several ranks read shares of the clips together, then every rank
        // forms every Gram matrix.
        let reads: [(file: ActivationFile, depth: Int)]?
        if communicator.size > 1 {
            var collected: [[Double]] = dims.map { d in
                var v: [Double] = []
                v.reserveCapacity(n * d)
                return v
            }
            try communicator.jointly {
                try stream.forEach(progress: progress) { _, batch in
                    for (m, x) in batch.enumerated() { collected[m] += x.storage }
                }
            }
            // Every rank forms the Gram matrices of all clips: gather the clip vectors in clip order.
            for m in collected.indices {
                collected[m] = communicator.gatherRows(Matrix(rows: collected[m].count / dims[m], cols: dims[m], storage: collected[m])).storage
            }
            for m in keep { clipVectors[m] = collected[m] }
            boxes = members.map { m in Vectors(collected[m]) }
            reads = nil
        } else {
            let all = stream.sources.flatMap { s in s.depths.map { (file: s.file, depth: $0) } }
            boxes = members.map { _ in Vectors([]) }
            reads = members.map { all[$0] }
        }
        let kept = members.map { keep.contains($0) }
        /// Rows of `uppers` and `diagonals`, each written by the one job of its representation.
        struct Rows: @unchecked Sendable { let upper: UnsafeMutablePointer<Double>?; let diagonal: UnsafeMutablePointer<Double> }
        let widths = members.map { dims[$0] }, reps = members.map { repDepth[$0] }
        let upperCount = n * (n - 1) / 2
        // Row i: the strict upper triangle (row-major) and the diagonal of member i's Gram matrix. The
        // triangles' storage is left uninitialised until each job writes its row, so its pages become
        // resident as the clip vectors they replace are released, not all at once beside them.
        var diagonals = Matrix<Double>(rows: members.count, cols: n)
        var formed: [Result<Void, Error>] = []
        let upperStorage = try [Double](unsafeUninitializedCapacity: members.count * upperCount) { u, initialized in
            try diagonals.storage.withUnsafeMutableBufferPointer { dg in
                let rows = Rows(upper: u.baseAddress, diagonal: dg.baseAddress!)
                // Centres member i's clip vectors, forms its Gram matrix and writes its row; a representation
                // that fails its checks (before writing anything) gets a zero row.
                let form: @Sendable (Int, inout Matrix<Double>) -> Result<Void, Error> = { i, x in
                    let row = rows.upper.map { $0 + i * upperCount }
                    let result = Result<Void, Error> {
                        guard x.nonFiniteCount == 0 else {
                            throw MetricUndefined("NaN or Inf in \(reps[i].file) at depth \(reps[i].depth)")
                        }
                        if CKA.isEffectivelyConstant(x) { throw CKAAnalysis.zeroVariance(reps[i]) }
                        let mean = x.columnMeans()
                        x.subtractFromColumns(mean)
                        let k = Matrix.gramOfRows(x)
                        k.storage.withUnsafeBufferPointer { g in
                            for r in 0..<n { rows.diagonal[i * n + r] = g[r * n + r] }
                            guard var to = row else { return }
                            for r in 0..<n {
                                to.initialize(from: g.baseAddress! + r * n + r + 1, count: n - r - 1)
                                to += n - r - 1
                            }
                        }
                    }
                    if case .failure = result { row?.initialize(repeating: 0, count: upperCount) }
                    return result
                }
                // One Gram matrix per core (single-threaded BLAS each): the centring and packing around each
                // syrk then run in parallel too, and OpenBLAS's idle threads do not spin beside them. A read
                // that fails throws out of here before `initialized` is set, so no row is taken as written.
                if let reads {
                    formed = try DepthStream.readEach(reads, progress: progress) { i, x in
                        if kept[i] { boxes[i].values = x.storage }
                        return form(i, &x)
                    }
                } else {
                    formed = Parallel.map(members.count) { i in
                        var x = Matrix(rows: n, cols: widths[i], storage: boxes[i].values)
                        boxes[i].values = []
                        return form(i, &x)
                    }
                }
            }
            initialized = members.count * upperCount
        }
        if reads != nil {
            for (i, m) in members.enumerated() where kept[i] { clipVectors[m] = boxes[i].values }
            // Each representation was read whole, as one batch of every clip.
            parameters["batches"] = "1"
        }
        let uppers = Matrix(rows: members.count, cols: upperCount, storage: upperStorage)
        // ⟨K_a, K_b⟩_F = 2·⟨upper_a, upper_b⟩ + ⟨diagonal_a, diagonal_b⟩ for every pair at once: a syrk over
        // the packed rows reads them from memory once, where a dot per pair read two rows per pair (26
        // representations of 1100 clips: 126 MB once against 1.9 GB).
        let upperProducts = Matrix.gramOfRows(uppers)
        let diagonalProducts = Matrix.gramOfRows(diagonals)
        var slot: [Int: Int] = [:]
        for (i, m) in members.enumerated() { slot[m] = i }
        func inner(_ a: Int, _ b: Int) -> Double { 2 * upperProducts[a, b] + diagonalProducts[a, b] }
        parameters["form"] = "gram"
        return plan.pairs.map { p in
            Result {
                let a = slot[p.a]!, b = slot[p.b]!
                try formed[a].get()
                try formed[b].get()
                let scale = 1 / Double((n - 1) * (n - 1))
                return try CKA.fromHSIC(xy: inner(a, b) * scale, xx: inner(a, a) * scale, yy: inner(b, b) * scale)
            }
        }
    }

    /// Minibatch CKA of every pair, from streamed feature-space sums.
    func minibatchValues(_ plan: Plan, stream: DepthStream, dims: [Int], tokens: Int, warnings: inout [String],
                         parameters: inout [String: String], progress: ((Int, Int) -> Void)?) throws -> [Result<Double, Error>] {
        var acc = try MinibatchCKAAccumulator(dimensions: dims, pairs: plan.pairs,
                                              batchSize: batchSize * (pooling == .tokens ? tokens : 1))
        try communicator.jointly { try stream.forEach(progress: progress) { _, batch in try acc.add(batch) } }
        acc.combineSums(communicator.sumOverRanks)
        parameters["batch_size_clips"] = "\(batchSize)"
        parameters["minibatches"] = "\(acc.batches)"
        if acc.droppedRows > 0 {
            warnings.append("\(acc.droppedRows) rows after the last full minibatch were not used")
        }
        parameters["form"] = "feature"
        return plan.pairs.map { p in Result { try acc.cka(p) } }
    }

    /// Linear CKA of every pair from streamed feature-space sums; keeps the clip vectors of `keep`.
    func featureValues(_ plan: Plan, stream: DepthStream, dims: [Int], keep: Set<Int>, clipVectors: inout [Int: [Double]],
                       parameters: inout [String: String], progress: ((Int, Int) -> Void)?) throws -> [Result<Double, Error>] {
        let repDepth = representations(plan)
        // Ranks shift by the same reference rows (one process's: the first row of clip 0) so their sums add.
        let references = communicator.size > 1 ? try communicator.jointly { try referenceRows(plan.sources, pooling: pooling) } : nil
        var acc = LinearCKAAccumulator(dimensions: dims, pairs: plan.pairs, references: references)
        // A representation with NaN/Inf is replaced by zeros so the others still accumulate;
        // every pair that involves it is reported undefined.
        var nonFinite = Set<Int>()
        try communicator.jointly {
            try stream.forEach(progress: progress) { _, batch in
                for m in keep { clipVectors[m, default: []] += batch[m].storage }
                var clean = batch
                for m in clean.indices where clean[m].nonFiniteCount > 0 {
                    nonFinite.insert(m)
                    clean[m] = Matrix(rows: clean[m].rows, cols: clean[m].cols)
                }
                try acc.add(clean)
            }
        }
        acc.combineSums(communicator.sumOverRanks)
        let anyNonFinite = communicator.anyRank(dims.indices.map { nonFinite.contains($0) })
        nonFinite = Set(dims.indices.filter { anyNonFinite[$0] })
        for m in keep.sorted() {
            let part = clipVectors[m] ?? []
            clipVectors[m] = communicator.gatherRows(Matrix(rows: part.count / dims[m], cols: dims[m], storage: part)).storage
        }
        parameters["form"] = "feature"
        return plan.pairs.map { p in
            if let m = [p.a, p.b].first(where: nonFinite.contains) {
                return .failure(MetricUndefined("NaN or Inf in \(repDepth[m].file) at depth \(repDepth[m].depth)"))
            }
            return Result {
                for m in [p.a, p.b] where acc.isEffectivelyConstant(m) { throw CKAAnalysis.zeroVariance(repDepth[m]) }
                return try acc.cka(p, estimator: estimator)
            }
        }
    }

    /// This rank's clips: a contiguous share, or for the minibatch estimator a share of the whole
    /// minibatches in global clip order (the last rank also reads the clips after the last full one,
    /// which it counts as dropped), so every rank's minibatches are those of one process.
    func clipShare(_ n: Int) -> Range<Int> {
        guard estimator == .minibatch else { return communicator.share(of: n) }
        let share = communicator.share(of: n / batchSize)
        let upper = communicator.rank == communicator.size - 1 ? n : share.upperBound * batchSize
        return (share.lowerBound * batchSize)..<upper
    }

    public func run(_ a: ActivationFile, _ b: ActivationFile? = nil,
                    progress: ((Int, Int) -> Void)? = nil) throws -> MetricReport {
        let metric = try self.metric
        let plan = try plan(a, b)
        var stream = DepthStream(sources: plan.sources, pooling: pooling, maxBatchBytes: maxBatchBytes,
                                 clipMultiple: estimator == .minibatch ? batchSize : 1)
        let batchesOfOnePass = stream.batches().count
        if communicator.size > 1 { stream.clips = clipShare(a.clipCount) }
        let dims = plan.sources.flatMap { s in s.depths.map { _ in s.file.featureCount } }
        let rows = a.clipCount * (pooling == .tokens ? a.tokenCount : 1)
        var warnings: [String] = []
        var parameters: [String: String] = [
            "batches": "\(batchesOfOnePass)",
            "kernel": kernel.rawValue, "estimator": estimator.rawValue, "pooling": pooling.rawValue,
            "pairs": plan.mode.rawValue, "rows": "\(rows)", "precision": "float64 accumulation",
        ]
        // Pairs that get bootstrap intervals, and the clip vectors they need.
        let bootstrapPairs = bootstrapPairs(a, plan, rows: rows, warnings: &warnings)
        let keep = Set(bootstrapPairs.flatMap { [plan.pairs[$0].a, plan.pairs[$0].b] })
        var clipVectors: [Int: [Double]] = [:]
        let values: [Result<Double, Error>]
        if kernel == .rbf || (estimator != .minibatch && dims.max()! > rows) {
            values = try gramValues(plan, stream: stream, dims: dims, rows: rows, keep: keep, clipVectors: &clipVectors,
                                    parameters: &parameters, progress: progress)
        } else if usesClipGrams(rows: rows, dims: dims, pairs: plan.pairs) {
            values = try clipGramValues(plan, stream: stream, dims: dims, rows: rows, keep: keep, clipVectors: &clipVectors,
                                        parameters: &parameters, progress: progress)
        } else if estimator == .minibatch {
            values = try minibatchValues(plan, stream: stream, dims: dims, tokens: a.tokenCount, warnings: &warnings,
                                         parameters: &parameters, progress: progress)
        } else {
            values = try featureValues(plan, stream: stream, dims: dims, keep: keep, clipVectors: &clipVectors,
                                       parameters: &parameters, progress: progress)
        }
        if pooling == .mean && rows < 4 * (dims.max() ?? 0) && kernel == .linear {
            warnings.append("N = \(rows) rows is not well above D = \(dims.max() ?? 0): linear CKA is biased towards 1 when D is large relative to N; consider --estimator debiased")
        }
        var replicates: [Int: [Double?]] = [:]
        var clipSet = ""
        if let bootstrap, !bootstrapPairs.isEmpty, communicator.isRoot {
            // Rows follow a's clip order (b was aligned to it), so a's resamples apply to both.
            let (weights, key) = try bootstrap.weights(for: a)
            clipSet = key
            let ms = keep.sorted()
            let slot = Dictionary(uniqueKeysWithValues: ms.enumerated().map { ($1, $0) })
            let matrices = ms.map { Matrix(rows: rows, cols: dims[$0], storage: clipVectors[$0]!) }
            let reps = CKA.linearBootstrap(matrices, pairs: bootstrapPairs.map { CKAPair(slot[plan.pairs[$0].a]!, slot[plan.pairs[$0].b]!) },
                                           weights: weights)
            for (i, k) in bootstrapPairs.enumerated() { replicates[k] = reps[i] }
            parameters["bootstrap"] = bootstrap.description + "; rows of the clip-vector matrices resampled"
        }
        var records: [MetricRecord] = []
        let fb = b ?? a
        for k in plan.pairs.indices {
            var r = MetricRecord(metric: metric.name, run: a.metadata.run, file: a.path, probeSet: a.metadata.probeSet,
                                 step: a.metadata.step, depth: plan.depths[k].0, runB: fb.metadata.run, depthB: plan.depths[k].1)
            r.measure { try values[k].get() }
            if let bootstrap, let reps = replicates[k] { r.setBootstrap(reps, clips: rows, clipSet: clipSet, bootstrap: bootstrap) }
            records.append(r)
        }
        var conventions = MetricReport.conventions([metric])
        conventions["pooling_\(pooling.rawValue)"] = CKAAnalysis.conventions["pooling_\(pooling.rawValue)"]!
        if kernel == .rbf { conventions["rbf_bandwidth"] = bandwidth.description }
        return MetricReport(command: MetricFamily.cka.command, parameters: parameters, conventions: conventions,
                            inputs: ([a] + (b.map { [$0] } ?? [])).map(InputDescription.init), records: records, warnings: warnings)
    }

    /// A readable table: a matrix for all-pairs and cross-file comparisons, a list for consecutive pairs.
    public static func table(_ report: MetricReport) -> String {
        let recs = report.records
        var out = "\(report.records.first?.metric ?? "cka")   pooling \(report.parameters["pooling"] ?? "")   rows \(report.parameters["rows"] ?? "")\n"
        let rowsA = Array(Set(recs.compactMap(\.depth))).sorted()
        let colsB = Array(Set(recs.compactMap(\.depthB))).sorted()
        let pairsMode = report.parameters["pairs"] ?? ""
        if pairsMode == "consecutive" || pairsMode == "matching" {
            var t = TextTable(header: ["depth", "depth", "CKA"])
            for r in recs { t.rows.append(["\(r.depth!)", "\(r.depthB!)", cell(r)]) }
            out += t.render(leftColumns: 0)
        } else {
            let runA = recs.first?.run ?? "", runB = recs.first?.runB ?? ""
            let symmetric = runA == runB && report.inputs.count == 1
            var t = TextTable(header: ["\(runA) \\ \(runB)"] + colsB.map { "\($0)" })
            for da in (symmetric ? Array(Set(rowsA + colsB)).sorted() : rowsA) {
                var row = ["\(da)"]
                for db in (symmetric ? Array(Set(rowsA + colsB)).sorted() : colsB) {
                    if symmetric && da == db { row.append("1"); continue }
                    let r = recs.first { ($0.depth == da && $0.depthB == db) || (symmetric && $0.depth == db && $0.depthB == da) }
                    row.append(r.map { cell($0) } ?? "")
                }
                t.rows.append(row)
            }
            if symmetric { t.header = ["depth"] + Array(Set(rowsA + colsB)).sorted().map { "\($0)" } }
            out += t.render()
        }
        for r in recs where r.undefined != nil {
            out += "  n/a at depth \(r.depth!) vs \(r.depthB!): \(r.undefined!)\n"
        }
        for w in report.warnings { out += "warning: \(w)\n" }
        return out
    }
}
