// Image decoding (JPEG/PNG variants) and Pillow-exact resizing against fixtures from tools/gen_image_fixtures.py.
import Foundation
import XCTest
import SSFEngine
import SSFNN
@testable import SSFData

final class ImageTests: XCTestCase {
    private func fixtures() throws -> SafeTensorsFile {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "images", withExtension: "safetensors", subdirectory: "Fixtures"))
        return try SafeTensors.load(url)
    }

    private func maxDifference(_ image: RGBImage, _ expected: Tensor) -> Float {
        XCTAssertEqual(expected.shape, [image.height, image.width, 3])
        return zip(image.pixels, expected.scalars).map { abs(Float($0) - $1) }.max() ?? 0
    }

    func testDecodingMatchesPillow() throws {
        let file = try fixtures()
        let names = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(file.metadata["files"]!.utf8)) as? [String: String])
        // Every variant decodes to Pillow's pixels; JPEG decoders may round CMYK and chroma by one step.
        let tolerance: [String: Float] = ["rgb_jpeg": 0, "gray_jpeg": 0, "cmyk_jpeg": 1, "rgb_png": 0, "rgba_png": 1, "palette_png": 0, "gray16_png": 1,
                                          "progressive_jpeg": 0, "interlaced_png": 0, "one_pixel_png": 0]
        XCTAssertEqual(Set(names.keys), Set(tolerance.keys))
        for (name, fileName) in names.sorted(by: { $0.key < $1.key }) {
            let parts = fileName.split(separator: ".")
            let url = try XCTUnwrap(Bundle.module.url(forResource: String(parts[0]), withExtension: String(parts[1]), subdirectory: "Fixtures"))
            let image = try RGBImage(contentsOf: url)
            let diff = maxDifference(image, try XCTUnwrap(file.tensors["\(name).rgb"]))
            XCTAssertLessThanOrEqual(diff, tolerance[name] ?? 0, "\(name): max pixel difference \(diff)")
        }
    }

    func testResizeMatchesPillowExactly() throws {
        let file = try fixtures()
        let source = try XCTUnwrap(file.tensors["resize.source"])
        let image = RGBImage(width: source.shape[1], height: source.shape[0], pixels: source.scalars.map { UInt8($0) })
        for (name, filter) in [("bicubic", ResampleFilter.bicubic), ("bilinear", .bilinear)] {
            for (w, h) in [(16, 20), (64, 48), (41, 13)] {
                let expected = try XCTUnwrap(file.tensors["resize.\(name).\(w)x\(h)"])
                let diff = maxDifference(image.resized(width: w, height: h, filter: filter), expected)
                XCTAssertEqual(diff, 0, "\(name) \(w)×\(h): max pixel difference \(diff)")
            }
        }
    }

    /// A header declaring 20000×20000 pixels is refused by its size before anything is allocated
    /// (400 megapixels would need 1.2 GB decoded), naming the file.
    func testImagesTooLargeToDecodeAreRefusedByTheirHeader() throws {
        for (name, ext) in [("huge_header_png", "png"), ("huge_header_jpeg", "jpg")] {
            let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures"))
            XCTAssertLessThan(try Data(contentsOf: url).count, 4096)
            XCTAssertThrowsError(try RGBImage(contentsOf: url)) { error in
                XCTAssertTrue("\(error)".contains(url.path) && "\(error)".contains("unsupported size 20000x20000"), "\(error)")
            }
        }
    }

    func testCorruptImagesNameTheFile() throws {
        let valid = try Data(contentsOf: XCTUnwrap(Bundle.module.url(forResource: "rgb_jpeg", withExtension: "jpg", subdirectory: "Fixtures")))
        let cases: [(String, Data, String)] = [
            ("empty.jpg", Data(), "empty file"),
            ("text.jpg", Data("hello".utf8), "not a JPEG or PNG"),
            ("truncated.jpg", valid.prefix(40), "invalid JPEG"),
            ("truncated.png", Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0]), "invalid PNG"),
        ]
        for (path, data, phrase) in cases {
            XCTAssertThrowsError(try RGBImage(encoded: data, path: path)) { error in
                XCTAssertTrue("\(error)".contains(path) && "\(error)".contains(phrase), "\(path): \(error)")
            }
        }
        XCTAssertThrowsError(try RGBImage(contentsOf: URL(fileURLWithPath: "/nonexistent/cat.jpg"))) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/cat.jpg"))
        }
    }

    func testEvalTransformShapeAndNormalisation() {
        let white = RGBImage(width: 40, height: 30, pixels: [UInt8](repeating: 255, count: 40 * 30 * 3))
        let t = EvalTransform(imageSize: 16, cropFraction: 0.875, filter: .bicubic, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])(white)
        XCTAssertEqual(t.shape, [3, 16, 16])
        XCTAssertEqual(t.scalars.min()!, 1, accuracy: 1e-6)
        XCTAssertEqual(t.scalars.max()!, 1, accuracy: 1e-6)
    }
}
