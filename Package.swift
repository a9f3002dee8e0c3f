// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "bwssl-suite",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "bwanalyze", targets: ["bwanalyze"]),
        .executable(name: "bwtrain", targets: ["bwtrain"]),
        .library(name: "ActivationStore", targets: ["ActivationStore"]),
        .library(name: "LinearAlgebra", targets: ["LinearAlgebra"]),
        .library(name: "RepresentationMetrics", targets: ["RepresentationMetrics"]),
    ],
    // `swift build --traits MPI` builds the executables as MPI programs (Open MPI, libopenmpi-dev) for
    // `mpirun -n R bwtrain ...` and `mpirun -n R bwanalyze ...`; the default build needs no MPI.
    traits: [
        .trait(name: "MPI", description: "Run under mpirun/srun through Open MPI: data-parallel bwtrain, distributed bwanalyze."),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // C libraries, each behind a tiny system-library target with a shim header.
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CLAPACKE", pkgConfig: "lapacke", providers: [.apt(["liblapacke-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi", providers: [.apt(["libopenmpi-dev"])]),

        .target(name: "ActivationStore", dependencies: ["CHDF5"]),
        .target(name: "LinearAlgebra", dependencies: [
            "CBLAS", "CLAPACKE", .product(name: "Numerics", package: "swift-numerics"),
        ]),
        .target(name: "RepresentationMetrics", dependencies: [
            "LinearAlgebra", .product(name: "Numerics", package: "swift-numerics"),
        ]),
        // The processes of a job: one process, or MPI's world when built with the MPI trait.
        .target(name: "Collective", dependencies: [.target(name: "CMPI", condition: .when(traits: ["MPI"]))]),
        .target(name: "BlockwiseTraining", dependencies: [
            "ActivationStore", "LinearAlgebra", "Collective",
            .product(name: "Numerics", package: "swift-numerics"),
        ]),
        .target(name: "SyntheticFixtures", dependencies: [
            "ActivationStore", "LinearAlgebra", .product(name: "Numerics", package: "swift-numerics"),
        ]),
        .target(name: "AnalysisCommands", dependencies: [
            "ActivationStore", "LinearAlgebra", "RepresentationMetrics", "SyntheticFixtures", "Collective",
        ]),
        // What both executables share of their command lines (typed option values, error lines).
        .target(name: "ToolSupport", dependencies: [
            "LinearAlgebra", "Collective", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "bwtrain", dependencies: [
            "ActivationStore", "BlockwiseTraining", "LinearAlgebra", "ToolSupport", "Collective",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "Reports", dependencies: [
            "ActivationStore", "LinearAlgebra", "RepresentationMetrics", "AnalysisCommands", "Collective",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .executableTarget(name: "bwanalyze", dependencies: [
            "AnalysisCommands", "ActivationStore", "LinearAlgebra", "SyntheticFixtures", "Reports", "ToolSupport", "Collective",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Helpers shared by the test targets (temporary directories, running the built tools, Python).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "ActivationStoreTests",
                    dependencies: ["ActivationStore", "SyntheticFixtures", "LinearAlgebra", "TestSupport", "bwanalyze"]),
        .testTarget(name: "LinearAlgebraTests", dependencies: ["LinearAlgebra"]),
        .testTarget(name: "CollectiveTests", dependencies: ["Collective"]),
        .testTarget(name: "BlockwiseTrainingTests",
                    dependencies: ["BlockwiseTraining", "ActivationStore", "LinearAlgebra", "TestSupport", "bwtrain", "bwanalyze",
                                   .product(name: "Numerics", package: "swift-numerics")]),
        .testTarget(name: "RepresentationMetricsTests",
                    dependencies: ["RepresentationMetrics", "LinearAlgebra", "ActivationStore", "SyntheticFixtures", "TestSupport"]),
        .testTarget(name: "AnalysisCommandsTests",
                    dependencies: ["AnalysisCommands", "RepresentationMetrics", "LinearAlgebra", "ActivationStore", "SyntheticFixtures",
                                   "TestSupport", "bwanalyze"]),
        .testTarget(name: "ReportsTests",
                    dependencies: ["Reports", "AnalysisCommands", "ActivationStore", "SyntheticFixtures", "TestSupport", "bwanalyze"]),
    ]
)
