// What every fuzz target shares: a scratch folder of this process for inputs the parsers read as files.
import Foundation

public enum FuzzScratch {
    /// `/dev/shm/ssf-fuzz-PID` where it exists (memory, fast), else the temporary folder.
    public static let folder: URL = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? URL(fileURLWithPath: "/dev/shm") : FileManager.default.temporaryDirectory
        let url = base.appendingPathComponent("ssf-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// Writes `bytes` as `name` in the scratch folder and returns its URL.
    public static func write(_ bytes: UnsafeRawBufferPointer, as name: String) -> URL {
        let url = folder.appendingPathComponent(name)
        FileManager.default.createFile(atPath: url.path, contents: Data(bytes))
        return url
    }
}

/// Splits a fuzz input into two parts: the first two bytes give the first part's length.
public func splitInput(_ bytes: UnsafeRawBufferPointer) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
    guard bytes.count >= 2 else { return (UnsafeRawBufferPointer(rebasing: bytes[0..<0]), bytes) }
    let n = min(Int(bytes[0]) | Int(bytes[1]) << 8, bytes.count - 2)
    return (UnsafeRawBufferPointer(rebasing: bytes[2..<(2 + n)]), UnsafeRawBufferPointer(rebasing: bytes[(2 + n)...]))
}

/// One input for a reader of files: written as `name` in the scratch folder and handed to `read`;
/// errors are the reader's answer to bad input, only a trap or a memory error is a finding.
public func fuzzFile(_ data: UnsafePointer<UInt8>?, _ size: Int, as name: String, _ read: (URL) throws -> Void) -> Int32 {
    try? read(FuzzScratch.write(UnsafeRawBufferPointer(start: data, count: size), as: name))
    return 0
}

/// libFuzzer's driver (the program's `main`, which SwiftPM names after the target, runs it; the
/// `LLVMFuzzerTestOneInput` each target also exports only satisfies libFuzzer's own `main` at link): runs `callback` on generated inputs as libFuzzer's own `main` would, with
/// this process's command line (corpus folders and `-flag=value` options).
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                                 _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                                 _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// Runs the fuzzer on `body` (one call per input) and returns its exit status.
public func runFuzzer(_ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32 {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}
