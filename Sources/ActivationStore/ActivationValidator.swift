/// The outcome of validating one file.
public struct ValidationReport: Sendable, Codable {
    public var file: String
    public var violations: [SchemaViolation]
    /// Non-finite token values per depth (only depths that could be scanned).
    public var nonFiniteCounts: [Int: Int]
    public var isValid: Bool { violations.isEmpty }
}

/// Checks a file against bwact/1 and lists every violation found.
public enum ActivationValidator {
    /// Validates structure, then scans every depth's tokens (in clip batches) for NaN/Inf.
    ///
    /// Errors that make the file unreadable (missing, not HDF5, truncated) are reported as a
    /// single violation rather than thrown, so a batch of files can be validated in one call.
    public static func validate(path: String, scanValues: Bool = true) -> ValidationReport {
        let file: HDF5File
        do {
            file = try ActivationFile.openHDF5(path)
        } catch let e as ActivationStoreError {
            return ValidationReport(file: path, violations: [SchemaViolation(e.object ?? "/", e.message)], nonFiniteCounts: [:])
        } catch {
            return ValidationReport(file: path, violations: [SchemaViolation("/", "\(error)")], nonFiniteCounts: [:])
        }
        let inspection = SchemaInspection(file)
        var violations = inspection.violations
        violations += additionViolations(file, path: path, structureOK: inspection.blockingViolations.isEmpty)
        var counts: [Int: Int] = [:]
        if scanValues, inspection.blockingViolations.isEmpty, let reader = try? ActivationFile(path: path) {
            for depth in reader.depths {
                var bad = 0
                do {
                    for r in reader.clipBatches(maxBytes: 32 << 20) {
                        bad += try reader.tokens(depth: depth, clips: r, as: Float.self).reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
                    }
                    counts[depth] = bad
                    if bad > 0 {
                        violations.append(SchemaViolation(ActivationPaths.tokens(depth),
                                                          "\(bad) NaN/Inf value\(bad == 1 ? "" : "s")", blocksReading: false))
                    }
                } catch let e as ActivationStoreError {
                    violations.append(SchemaViolation(ActivationPaths.tokens(depth), e.message))
                } catch {
                    violations.append(SchemaViolation(ActivationPaths.tokens(depth), "\(error)"))
                }
            }
        }
        if scanValues, inspection.blockingViolations.isEmpty, let reader = try? ActivationFile(path: path) {
            for depth in reader.attentionShapes.keys.sorted() {
                if let problem = attentionProblem(reader, depth: depth) {
                    violations.append(SchemaViolation(ActivationPaths.attention(depth), problem))
                }
            }
            // The training curve is read by inspect and the report: a damaged chunk of it is a finding too.
            do { _ = try reader.trainingCurve() } catch let e as ActivationStoreError {
                violations.append(SchemaViolation(e.object ?? ActivationPaths.trainingStep, e.message))
            } catch {
                violations.append(SchemaViolation(ActivationPaths.trainingStep, "\(error)"))
            }
        }
        return ValidationReport(file: path, violations: violations, nonFiniteCounts: counts)
    }

    /// Largest |row sum − 1| accepted in an attention map (the attention metrics' own tolerance).
    public static let attentionRowTolerance = 1e-3

    /// The first attention row that is not a probability distribution (finite, ≥ 0, summing to 1), or a
    /// read error; nil when every row is one. Reads the layer in clip batches of about 32 MiB.
    static func attentionProblem(_ f: ActivationFile, depth: Int) -> String? {
        guard let shape = f.attentionShapes[depth] else { return nil }
        let t = shape.tokens, perClip = max(1, shape.heads * t * t * 4)
        let batch = max(1, (32 << 20) / perClip)
        do {
            for start in stride(from: 0, to: shape.clips, by: batch) {
                let r = start..<min(start + batch, shape.clips)
                let a = try f.attention(depth: depth, clips: r)
                for row in 0..<(a.count / max(1, t)) {
                    var sum = 0.0
                    for k in 0..<t {
                        let v = a[row * t + k]
                        guard v.isFinite, v >= 0 else {
                            return "clip \(start + row / (shape.heads * t)), head \(row / t % shape.heads), query \(row % t): entry \(k) is \(v), not a probability"
                        }
                        sum += Double(v)
                    }
                    if abs(sum - 1) > attentionRowTolerance {
                        return "clip \(start + row / (shape.heads * t)), head \(row / t % shape.heads), query \(row % t): row sums to \(sum), not 1"
                    }
                }
            }
        } catch let e as ActivationStoreError {
            return e.message
        } catch { return "\(error)" }
        return nil
    }
}
