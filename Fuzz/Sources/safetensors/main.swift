// Fuzz target: the safetensors reader (header JSON, offsets, dtypes).
import Foundation
import FuzzSupport
import SSFFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzFile(data, size, as: "input.safetensors") { _ = try SafeTensors.load($0) }
}

exit(runFuzzer(fuzzOneInput))
