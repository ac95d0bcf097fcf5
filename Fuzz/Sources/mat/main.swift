// Fuzz target: MATLAB v5 files (the Flowers and Cars annotations).
import Foundation
import FuzzSupport
import SSFData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    _ = try? readMatFile(FuzzScratch.write(bytes, as: "input.mat"))
    return 0
}

exit(runFuzzer(fuzzOneInput))
