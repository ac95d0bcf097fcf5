// Fuzz target: list files of `path label` lines (VTAB-1k, FGVC splits).
import Foundation
import FuzzSupport
import SSFData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzFile(data, size, as: "list.txt") { _ = try FileListDataset.list($0) }
}

exit(runFuzzer(fuzzOneInput))
