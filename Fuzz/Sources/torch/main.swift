// Fuzz target: PyTorch checkpoints: the zip container and the restricted unpickler, and the legacy format.
import Foundation
import FuzzSupport
import SSFFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzFile(data, size, as: "input.pth") { _ = try TorchCheckpoint.load($0) }
}

exit(runFuzzer(fuzzOneInput))
