// Fuzz target: PyTorch checkpoints: the zip container and the restricted unpickler, and the legacy format.
import Foundation
import FuzzSupport
import SSFFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    _ = try? TorchCheckpoint.load(FuzzScratch.write(bytes, as: "input.pth"))
    return 0
}

exit(runFuzzer(fuzzOneInput))
