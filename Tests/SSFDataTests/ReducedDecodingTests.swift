// JPEG decoding at a reduced DCT scale: the scale chosen from the shorter side a transform needs,
// PNG untouched, and a loader's tensors close to the full decode's.
import Foundation
import SSFData
import SSFEngine
import XCTest

final class ReducedDecodingTests: XCTestCase {
    /// A smooth 96×64 test card (gradients and a disc), so a reduced decode stays close to a full one.
    private func card() -> RGBImage {
        var pixels: [UInt8] = []
        for y in 0..<64 {
            for x in 0..<96 {
                let inside = (x - 48) * (x - 48) + (y - 32) * (y - 32) < 400
                pixels += [UInt8(x * 255 / 95), UInt8(y * 255 / 63), inside ? 220 : 40]
            }
        }
        return RGBImage(width: 96, height: 64, pixels: pixels)
    }

    func testScaleFollowsTheMinimumSide() throws {
        let jpeg = try card().jpegData(quality: 92)
        for (minimum, size) in [(nil, [96, 64]), (64, [96, 64]), (33, [96, 64]), (32, [48, 32]), (16, [24, 16]), (9, [24, 16]), (8, [12, 8]), (1, [12, 8])] as [(Int?, [Int])] {
            let image = try RGBImage(encoded: jpeg, path: "card.jpg", minimumSide: minimum)
            XCTAssertEqual([image.width, image.height], size, "minimum side \(minimum.map(String.init) ?? "none")")
        }
        // PNG has no reduced decode: always whole.
        let png = try RGBImage(encoded: try card().pngData(), path: "card.png", minimumSide: 8)
        XCTAssertEqual([png.width, png.height], [96, 64])
    }

    func testLoaderWithReducedDecodingStaysCloseToTheFullDecode() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-reduced-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("card.jpg")
        try card().jpegData(quality: 92).write(to: file)
        let dataset = FileListDataset(entries: [(file, 0)], classNames: ["card"])
        let transform = EvalTransform(imageSize: 16, cropFraction: 1, filter: .bicubic, mean: [0, 0, 0], std: [1, 1, 1])
        XCTAssertEqual(transform.minimumSourceSide, 16)
        var full = DataLoader(dataset: dataset, batchSize: 1, shuffle: false, transform: transform, workers: 0, seed: 0)
        var reduced = full
        reduced.reducedDecoding = true
        full.reducedDecoding = false
        let a = try full.batch(0, epoch: 0, order: [0]).images, b = try reduced.batch(0, epoch: 0, order: [0]).images
        XCTAssertEqual(a.shape, [1, 3, 16, 16])
        XCTAssertEqual(b.shape, a.shape)
        let diffs = zip(a.scalars, b.scalars).map { abs($0 - $1) }
        XCTAssertLessThan(diffs.reduce(0, +) / Float(diffs.count), 0.03)   // mean under 8 levels of 255
        XCTAssertNotEqual(a.scalars, b.scalars)   // the 1/4 decode really ran
    }
}
