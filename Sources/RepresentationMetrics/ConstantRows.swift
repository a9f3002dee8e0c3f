/// Whether rows are constant up to float32 rounding, decided from streamed sums.
///
/// Stored float32 values carry a relative rounding error of ~6e-8, so a spread under
/// `tolerance` = 1e-6 of the rows' magnitude is rounding noise, not variance:
///
///     constant ⇔ tr(XcᵀXc)/n ≤ tolerance² · mean ‖xᵢ‖²
///
/// Shared by the CKA and covariance accumulators so both flag the same depths.
public enum ConstantRows {
    public static let tolerance = 1e-6

    /// - Parameters:
    ///   - centredTrace: tr(XcᵀXc), the sum of squared deviations from the column means.
    ///   - squaredNormSum: Σ‖xᵢ‖² of the original (unshifted) rows.
    ///   - count: n, the number of rows (0 counts as constant).
    public static func areConstant(centredTrace: Double, squaredNormSum: Double, count: Int) -> Bool {
        guard count > 0 else { return true }
        let n = Double(count)
        return centredTrace / n <= tolerance * tolerance * squaredNormSum / n
    }
}
