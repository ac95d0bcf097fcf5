// Fuzz target: JPEG and PNG decoding through the C codecs shim.
import Foundation
import FuzzSupport
import SSFData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    _ = try? RGBImage(encoded: Data(bytes), path: "input")
    return 0
}

exit(runFuzzer(fuzzOneInput))
