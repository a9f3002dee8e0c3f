/// How the model behind a run was trained: the root attribute `regime` of an activation file, the
/// `regime` of a training configuration, and what a report compares.
///
/// The raw values are the strings written to files and JSON; they must not change.
public enum Regime: String, Sendable, Codable, CaseIterable {
    /// One decoder after the last layer; gradients through everything.
    case e2e
    /// K blocks, each with its own decoder and local loss; stop-gradient at block boundaries; one forward pass, losses summed.
    case simultaneous
    /// Block 1 trained for its budget and frozen, then block 2 on block 1's outputs, and so on.
    case sequential
    /// Activations of a model trained elsewhere (e.g. dumped by the PyTorch recipes); bwtrain does not train it.
    case external

    /// The regimes bwtrain trains.
    public static let trainable: [Regime] = [.e2e, .simultaneous, .sequential]

    /// Trained blockwise (simultaneous or sequential).
    public var isBlockwise: Bool { self == .simultaneous || self == .sequential }
}
