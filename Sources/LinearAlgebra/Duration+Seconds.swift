extension Duration {
    /// This duration in seconds. The suite times work with `ContinuousClock` and prints seconds.
    public var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }
}
