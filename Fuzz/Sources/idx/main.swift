// Fuzz target: MNIST / Fashion-MNIST IDX files.
import Foundation
import FuzzSupport
import SSFData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    // Two files: images (the first part) and labels (the rest).
    let (images, labels) = splitInput(bytes)
    let dir = FuzzScratch.folder.appendingPathComponent("mnist")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    FileManager.default.createFile(atPath: dir.appendingPathComponent("t10k-images-idx3-ubyte").path, contents: Data(images))
    FileManager.default.createFile(atPath: dir.appendingPathComponent("t10k-labels-idx1-ubyte").path, contents: Data(labels))
    _ = try? PixelArrayDataset.mnist(dir, split: "test", fashion: true)
    return 0
}

exit(runFuzzer(fuzzOneInput))
