/// Scalars the BLAS/LAPACK layer works with: `Float` and `Double`.
public protocol BLASScalar: BinaryFloatingPoint, Sendable {}
extension Float: BLASScalar {}
extension Double: BLASScalar {}

/// A dense row-major matrix.
///
/// Element (i, j) is `storage[i * cols + j]`. The type is a plain value; products and
/// decompositions live in `Matrix+BLAS.swift` and `Matrix+LAPACK.swift` and all go
/// through cblas / LAPACKE.
public struct Matrix<Scalar: BLASScalar>: Equatable, Sendable {
    public private(set) var rows: Int
    public private(set) var cols: Int
    /// Row-major elements, `rows * cols` of them.
    public var storage: [Scalar]

    public init(rows: Int, cols: Int, repeating value: Scalar = 0) {
        precondition(rows >= 0 && cols >= 0, "matrix dimensions must be non-negative")
        self.rows = rows
        self.cols = cols
        self.storage = Array(repeating: value, count: rows * cols)
    }

    public init(rows: Int, cols: Int, storage: [Scalar]) {
        precondition(rows >= 0 && cols >= 0, "matrix dimensions must be non-negative")
        precondition(storage.count == rows * cols,
                     "storage holds \(storage.count) elements, expected \(rows)x\(cols)")
        self.rows = rows
        self.cols = cols
        self.storage = storage
    }

    public init(rows: Int, cols: Int, _ element: (Int, Int) -> Scalar) {
        var s = [Scalar]()
        s.reserveCapacity(rows * cols)
        for i in 0..<rows { for j in 0..<cols { s.append(element(i, j)) } }
        self.init(rows: rows, cols: cols, storage: s)
    }

    /// Builds a matrix from nested rows (all of equal length).
    public init(_ nested: [[Scalar]]) {
        let c = nested.first?.count ?? 0
        precondition(nested.allSatisfy { $0.count == c }, "rows of unequal length")
        self.init(rows: nested.count, cols: c, storage: nested.flatMap { $0 })
    }

    public static func identity(_ n: Int) -> Matrix {
        Matrix(rows: n, cols: n) { i, j in i == j ? 1 : 0 }
    }

    @inlinable
    public subscript(i: Int, j: Int) -> Scalar {
        get { storage[i * cols + j] }
        set { storage[i * cols + j] = newValue }
    }

    @inlinable
    public func row(_ i: Int) -> ArraySlice<Scalar> {
        storage[(i * cols)..<((i + 1) * cols)]
    }

    public var transposed: Matrix {
        Matrix(rows: cols, cols: rows) { i, j in self[j, i] }
    }

    /// The same values in another precision.
    @inlinable
    public func converted<T: BLASScalar>(to: T.Type = T.self) -> Matrix<T> {
        Matrix<T>(rows: rows, cols: cols, storage: storage.map { T($0) })
    }

    /// The rows at `indices`, in that order, as a new matrix.
    @inlinable
    public func rows(at indices: [Int]) -> Matrix {
        var s = [Scalar]()
        s.reserveCapacity(indices.count * cols)
        for i in indices { s.append(contentsOf: row(i)) }
        return Matrix(rows: indices.count, cols: cols, storage: s)
    }

    /// Rows `range` as a new matrix.
    public func rows(_ range: Range<Int>) -> Matrix {
        Matrix(rows: range.count, cols: cols, storage: Array(storage[(range.lowerBound * cols)..<(range.upperBound * cols)]))
    }
}

extension Matrix: CustomStringConvertible {
    public var description: String {
        var lines = ["Matrix<\(Scalar.self)> \(rows)x\(cols)"]
        for i in 0..<min(rows, 8) {
            lines.append(row(i).prefix(8).map { "\($0)" }.joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }
}

/// Errors from the linear-algebra layer.
public enum LinearAlgebraError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(String)
    case lapackFailed(routine: String, info: Int32)
    case notPositiveDefinite(order: Int32)

    public var description: String {
        switch self {
        case .shapeMismatch(let s): return "shape mismatch: \(s)"
        case .lapackFailed(let r, let info): return "LAPACK \(r) failed (info = \(info))"
        case .notPositiveDefinite(let k):
            return "matrix is not positive definite (leading minor of order \(k) is not positive)"
        }
    }
}
