// The built `ssf` binary, for tests that run the command line (scripts/test builds it first).
import Foundation

/// `.build/debug/ssf` next to the running test bundle, or in the package's build folder; nil when not built.
public func builtSSFBinary() -> URL? {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ssf"),
                      root.appendingPathComponent(".build/debug/ssf")]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
}
