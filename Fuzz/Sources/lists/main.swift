// Fuzz target: list files of `path label` lines (VTAB-1k, FGVC splits).
import Foundation
import FuzzSupport
import SSFData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    _ = try? FileListDataset.list(FuzzScratch.write(bytes, as: "list.txt"))
    return 0
}

exit(runFuzzer(fuzzOneInput))
