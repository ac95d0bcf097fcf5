// Fuzz target: inflate (raw deflate, zlib and gzip containers); the first byte picks the container.
import Foundation
import FuzzSupport
import SSFFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard let first = bytes.first else { return 0 }
    let container: DeflateContainer = [.raw, .zlib, .gzip][Int(first) % 3]
    _ = try? inflate(UnsafeRawBufferPointer(rebasing: bytes.dropFirst()), container: container, limit: 1 << 22)
    return 0
}

exit(runFuzzer(fuzzOneInput))
