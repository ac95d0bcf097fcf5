// swift-tools-version:6.0
// Coverage-guided fuzz targets (libFuzzer) for every parser that reads outside input. Not part of
// the main build: `tools/fuzz.sh NAME [SECONDS]` builds this package with -sanitize=fuzzer,address
// and runs one target on its seed corpus.
import PackageDescription

let targets: [(name: String, library: String)] = [
    ("safetensors", "SSFFormats"), ("torch", "SSFFormats"), ("numpy", "SSFFormats"), ("inflate", "SSFFormats"),
    ("infer-request", "SSFFormats"), ("image", "SSFData"), ("cifar", "SSFData"), ("idx", "SSFData"), ("mat", "SSFData"),
    ("lists", "SSFData"), ("config", "SSFTraining"),
]

let package = Package(
    name: "SSFFuzz",
    dependencies: [.package(name: "SSF", path: "..")],
    targets: [.target(name: "FuzzSupport", path: "Sources/FuzzSupport")] + targets.map { target in
        .executableTarget(
            name: "fuzz-\(target.name)",
            dependencies: ["FuzzSupport", .product(name: target.library, package: "SSF"), .product(name: "SSFEngine", package: "SSF")],
            path: "Sources/\(target.name)")
    }
)
