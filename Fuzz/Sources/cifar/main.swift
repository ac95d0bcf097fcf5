// Fuzz target: CIFAR-10 test batches, python pickle and binary.
import Foundation
import FuzzSupport
import SSFData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    // The first byte picks the python (pickle) or the binary version of CIFAR-10's test split.
    guard let first = bytes.first else { return 0 }
    let dir = FuzzScratch.folder.appendingPathComponent("cifar\(first & 1)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let name = first & 1 == 0 ? "test_batch" : "test_batch.bin"
    FileManager.default.createFile(atPath: dir.appendingPathComponent(name).path, contents: Data(bytes.dropFirst()))
    _ = try? PixelArrayDataset.cifar(dir, variant: .cifar10, split: "test")
    return 0
}

exit(runFuzzer(fuzzOneInput))
