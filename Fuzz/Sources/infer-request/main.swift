// Fuzz target: `ssf serve`'s inference request bodies (JSON and binary tensor data).
import Foundation
import FuzzSupport
import SSFFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    // The first byte says whether the request has Inference-Header-Content-Length, the next two its value.
    guard bytes.count >= 3 else { return 0 }
    let header: Int? = bytes[0] & 1 == 0 ? nil : Int(bytes[1]) | Int(bytes[2]) << 8
    _ = try? InferRequest.parse(body: Data(bytes.dropFirst(3)), headerLength: header, inputSize: 4)
    return 0
}

exit(runFuzzer(fuzzOneInput))
