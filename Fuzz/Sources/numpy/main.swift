// Fuzz target: .npz archives and the .npy arrays in them.
import Foundation
import FuzzSupport
import SSFFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzFile(data, size, as: "input.npz") { _ = try NumPyArchive.load($0) }
}

exit(runFuzzer(fuzzOneInput))
