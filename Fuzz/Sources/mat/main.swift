// Fuzz target: MATLAB v5 files (the Flowers and Cars annotations).
import Foundation
import FuzzSupport
import SSFData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzFile(data, size, as: "input.mat") { _ = try readMatFile($0) }
}

exit(runFuzzer(fuzzOneInput))
