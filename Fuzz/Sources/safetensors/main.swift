// Fuzz target: the safetensors reader (header JSON, offsets, dtypes).
import Foundation
import FuzzSupport
import SSFFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    _ = try? SafeTensors.load(FuzzScratch.write(bytes, as: "input.safetensors"))
    return 0
}

exit(runFuzzer(fuzzOneInput))
