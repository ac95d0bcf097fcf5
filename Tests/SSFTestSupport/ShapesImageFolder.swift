// A small real image folder for tests that run `ssf train` as a process.
import Foundation
import SSFData

/// Writes `root/train` and `root/test` of two procedural shape classes as 32×32 PNGs:
/// `train` images per class pair in train and `test` in test (about a quarter of each count per class).
public func writeShapesImageFolder(at root: URL, train: Int = 64, test: Int = 32) throws -> URL {
    for (split, count, seed) in [("train", train, UInt64(1)), ("test", test, UInt64(2))] {
        let data = ProceduralShapesDataset(task: .source, count: count * 4, seed: seed)
        for i in 0..<(count * 4) where data.label(at: i) < 2 {
            let (image, label) = try data.sample(at: i)
            let dir = root.appendingPathComponent(split).appendingPathComponent(data.classNames[label])
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try image.pngData().write(to: dir.appendingPathComponent(String(format: "%04d.png", i)))
        }
    }
    return root
}
