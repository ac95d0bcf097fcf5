// swift-tools-version:6.0
// SSF for Swift: parameter-efficient fine-tuning of pretrained vision models.
import PackageDescription

// Hot code is compiled for AVX2/FMA on x86-64 and without runtime checks in release builds.
#if arch(x86_64)
let cpuFlags = ["-target-cpu", "haswell"]
#else
let cpuFlags: [String] = []
#endif
let hotSettings: [SwiftSetting] = [
    .unsafeFlags(cpuFlags),
    .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
]
// The engine's kernels are optimised in debug builds too, so the test suite's training runs
// (trajectory parity on EfficientNet-Lite0) take seconds, not minutes.
let engineSettings: [SwiftSetting] = hotSettings + [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "SSF",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ssf", targets: ["ssf"]),
        .library(name: "SSFEngine", targets: ["SSFEngine"]),
        .library(name: "SSFFormats", targets: ["SSFFormats"]),
        .library(name: "SSFNN", targets: ["SSFNN"]),
        .library(name: "SSFModels", targets: ["SSFModels"]),
        .library(name: "SSFData", targets: ["SSFData"]),
        .library(name: "SSFTuning", targets: ["SSFTuning"]),
        .library(name: "SSFTraining", targets: ["SSFTraining"]),
        .library(name: "SSFReport", targets: ["SSFReport"]),
        .library(name: "SSFServing", targets: ["SSFServing"]),
        .library(name: "SSFAnalysis", targets: ["SSFAnalysis"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            path: "Sources/CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // The engine's own blocked GEMM with fused per-column epilogues (C, AVX2/FMA on x86-64).
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "SSFEngine", dependencies: ["CBLAS", "CKernels"], swiftSettings: engineSettings),
        .systemLibrary(
            name: "CMPI",
            path: "Sources/CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]
        ),
        // File formats: safetensors, PyTorch checkpoints and the restricted unpickler, NumPy
        // .npz/.npy, zip and inflate, JSON, SHA-256.
        .target(
            name: "SSFFormats",
            dependencies: ["SSFEngine", .product(name: "ZIPFoundation", package: "ZIPFoundation")],
            swiftSettings: hotSettings
        ),
        .target(name: "SSFNN", dependencies: ["SSFEngine", "SSFFormats"], swiftSettings: hotSettings),
        .target(
            name: "CImageCodecs",
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]
        ),
        .target(
            name: "SSFData",
            dependencies: ["SSFEngine", "SSFFormats", "CImageCodecs"],
            swiftSettings: hotSettings
        ),
        .target(name: "SSFModels", dependencies: ["SSFEngine", "SSFNN"], swiftSettings: hotSettings),
        .target(name: "SSFTuning", dependencies: ["SSFEngine", "SSFNN", "SSFModels"], swiftSettings: hotSettings),
        // The offline HTML report of training runs (Foundation only).
        .target(name: "SSFReport"),
        .target(
            name: "SSFTraining",
            dependencies: ["SSFEngine", "SSFNN", "SSFModels", "SSFData", "SSFTuning", "SSFReport", .product(name: "Yams", package: "Yams")],
            swiftSettings: hotSettings
        ),
        // `ssf serve`: many SSF tasks on one base over HTTP (Hummingbird 2).
        .target(
            name: "SSFServing",
            dependencies: ["SSFEngine", "SSFFormats", "SSFNN", "SSFModels", "SSFData", "SSFTuning", .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "Logging", package: "swift-log"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio")],
            swiftSettings: hotSettings
        ),
        // Data-parallel training over Open MPI, behind the training library's `Collective`.
        .target(name: "SSFAnalysis", dependencies: ["CBLAS", "SSFEngine", "SSFModels", "SSFData"], swiftSettings: hotSettings),
        .target(name: "SSFDistributed", dependencies: ["CMPI", "SSFTraining"], swiftSettings: hotSettings),
        .executableTarget(
            name: "ssf",
            dependencies: [
                "SSFEngine", "SSFFormats", "SSFNN", "SSFModels", "SSFData", "SSFTuning", "SSFTraining", "SSFReport", "SSFDistributed", "SSFServing", "SSFAnalysis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: hotSettings
        ),
        // Shared by the test targets: tensor comparison, tolerances and fixture loading.
        .target(name: "SSFTestSupport", dependencies: ["SSFEngine", "SSFNN", "SSFData"], path: "Tests/SSFTestSupport"),
        .testTarget(name: "SSFEngineTests", dependencies: ["SSFEngine", "SSFNN", "SSFTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SSFModelsTests", dependencies: ["SSFModels", "SSFNN", "SSFEngine", "SSFData", "SSFTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SSFDataTests", dependencies: ["SSFData", "SSFNN", "SSFEngine"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SSFTuningTests", dependencies: ["SSFTuning", "SSFModels", "SSFNN", "SSFEngine", "SSFTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SSFTrainingTests", dependencies: ["SSFTraining", "SSFData", "SSFModels", "SSFTuning", "SSFNN", "SSFEngine", "SSFReport", "SSFTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SSFDistributedTests", dependencies: ["SSFData", "SSFEngine", "SSFTestSupport"]),
        .testTarget(name: "SSFServingTests", dependencies: ["SSFServing", "SSFTuning", "SSFModels", "SSFNN", "SSFEngine", "SSFData", "SSFTestSupport",
                                                             .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")]),
        .testTarget(name: "SSFReportTests", dependencies: ["SSFReport", "SSFData"]),
        .testTarget(name: "SSFFormatsTests", dependencies: ["SSFFormats", "SSFEngine", .product(name: "ZIPFoundation", package: "ZIPFoundation")], resources: [.copy("Malformed"), .copy("Checkpoints")]),
        .testTarget(name: "SSFAnalysisTests", dependencies: ["SSFAnalysis", "SSFModels", "SSFData", "SSFEngine", "SSFNN", "SSFTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SSFNNTests", dependencies: ["SSFNN", "SSFEngine"]),
    ],
    swiftLanguageModes: [.v5]
)
