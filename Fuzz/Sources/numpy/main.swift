// Fuzz target: .npz archives and the .npy arrays in them.
import Foundation
import FuzzSupport
import SSFFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    _ = try? NumPyArchive.load(FuzzScratch.write(bytes, as: "input.npz"))
    return 0
}

exit(runFuzzer(fuzzOneInput))
