import Foundation
import SSFEngine
import XCTest
@testable import SSFData

final class ProceduralShapesTests: XCTestCase {
    func testSamplesAreDeterministicBalancedAndDistinct() throws {
        let data = ProceduralShapesDataset(task: .source, count: 80, seed: 5)
        XCTAssertEqual(data.classNames, ["circle", "square", "triangle", "cross", "ring", "hexagon", "star", "half-disc"])
        let labels = try (0..<data.count).map { try data.sample(at: $0).label }
        XCTAssertEqual(Dictionary(grouping: labels, by: { $0 }).mapValues(\.count), Dictionary(uniqueKeysWithValues: (0..<8).map { ($0, 10) }))
        // The same index and seed give the same image; another seed another image.
        XCTAssertEqual(try data.sample(at: 17).image, try ProceduralShapesDataset(task: .source, count: 80, seed: 5).sample(at: 17).image)
        XCTAssertNotEqual(try data.sample(at: 17).image, try ProceduralShapesDataset(task: .source, count: 80, seed: 6).sample(at: 17).image)
        let first = try data.sample(at: 0).image
        XCTAssertEqual(first.width, 32); XCTAssertEqual(first.height, 32)
        XCTAssertGreaterThan(Set(first.pixels).count, 20, "a drawn image, not a flat colour")
    }

    func testTasksHaveDisjointShapes() {
        XCTAssertEqual(Set(ProceduralTask.source.shapes).intersection(ProceduralTask.target.shapes), [])
        XCTAssertEqual(ProceduralShapesDataset(task: .target, count: 6, seed: 1).classNames.count, 6)
    }

    func testEveryShapeCoversADistinctRegion() {
        // Rasterise each shape on a 48×48 grid of its unit frame: all non-empty, none covering the frame, all different.
        var masks: [ProceduralShape: [Bool]] = [:]
        for shape in ProceduralShape.allCases {
            let mask = (0..<48 * 48).map { i -> Bool in
                let u = Float(i % 48) / 23.5 - 1, v = Float(i / 48) / 23.5 - 1
                return shape.contains(u, v)
            }
            let covered = mask.filter { $0 }.count
            XCTAssertGreaterThan(covered, 48 * 48 / 20, shape.rawValue)
            XCTAssertLessThan(covered, 48 * 48 * 9 / 10, shape.rawValue)
            masks[shape] = mask
        }
        XCTAssertEqual(Set(masks.values).count, ProceduralShape.allCases.count)
    }

    func testPNGEncodingRoundTripsThroughTheDecoder() throws {
        let data = ProceduralShapesDataset(task: .target, count: 12, seed: 3)
        let images = try (0..<12).map { try data.sample(at: $0).image }
        let grid = RGBImage.grid(images, columns: 4, gap: 2)
        XCTAssertEqual(grid.width, 4 * 32 + 5 * 2); XCTAssertEqual(grid.height, 3 * 32 + 4 * 2)
        let png = try grid.pngData()
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        XCTAssertEqual(try RGBImage(encoded: png, path: "grid.png"), grid)
        // The tile of image 5 (row 1, column 1) is that image.
        let x0 = 2 + 32 + 2, y0 = 2 + 32 + 2
        for y in 0..<32 {
            let row = Array(grid.pixels[((y0 + y) * grid.width + x0) * 3..<((y0 + y) * grid.width + x0 + 32) * 3])
            XCTAssertEqual(row, Array(images[5].pixels[y * 96..<(y + 1) * 96]))
        }
    }
}
