/// The suite's version: both executables' `--version`, and the provenance (`tool`, `version`) that
/// analyses and reports record. LinearAlgebra holds it as the lowest module every part depends on.
public let bwsslVersion = "0.4.0"
