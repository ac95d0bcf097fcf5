// The built `ssf` binary, for tests that run the command line (scripts/test builds it first).
import Foundation

/// `.build/debug/ssf` next to the running test bundle, or in the package's build folder; nil when not built.
public func builtSSFBinary() -> URL? {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ssf"),
                      root.appendingPathComponent(".build/debug/ssf")]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
}

/// Runs the built `ssf` with `arguments` to completion: its exit status and standard output.
public func runBuiltSSF(_ ssf: URL, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = ssf
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, text)
}
