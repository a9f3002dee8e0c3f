extension Matrix {
    /// Column means in float64: mᵢ = (1/rows) Σ_r a[r, i].
    @inlinable
    public func columnMeans() -> [Double] {
        var sums = [Double](repeating: 0, count: cols)
        guard rows > 0 else { return sums }
        storage.withUnsafeBufferPointer { p in
            sums.withUnsafeMutableBufferPointer { s in
                for r in 0..<rows {
                    let base = r * cols
                    for c in 0..<cols { s[c] += Double(p[base + c]) }
                }
            }
        }
        let inv = 1.0 / Double(rows)
        return sums.map { $0 * inv }
    }

    /// Column sums in float64.
    @inlinable
    public func columnSums() -> [Double] {
        columnMeans().map { $0 * Double(rows) }
    }

    /// A float64 copy with every column's mean subtracted (Xc = X − 1·meanᵀ).
    @inlinable
    public func centeredColumns() -> Matrix<Double> {
        let means = columnMeans()
        var out = converted(to: Double.self)
        out.storage.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows {
                let base = r * cols
                for c in 0..<cols { p[base + c] -= means[c] }
            }
        }
        return out
    }

    /// Subtracts `values[c]` from every element of column c, in place.
    @inlinable
    public mutating func subtractFromColumns(_ values: [Double]) {
        precondition(values.count == cols)
        let n = cols
        storage.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows {
                for c in 0..<n { p[r * n + c] -= Scalar(values[c]) }
            }
        }
    }

    /// Number of NaN or infinite elements.
    @inlinable
    public var nonFiniteCount: Int { storage.reduce(0) { $0 + ($1.isFinite ? 0 : 1) } }
}
