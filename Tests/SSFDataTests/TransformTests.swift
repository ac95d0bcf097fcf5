// Transforms against timm/torchvision/Pillow outputs from tools/gen_dataset_fixtures.py: RandAugment
// ops at fixed magnitudes, resized crops with fixed boxes, VTAB resize, mixup/cutmix arithmetic.
import Foundation
import XCTest
import SSFEngine
import SSFNN
@testable import SSFData

final class TransformTests: XCTestCase {
    private func fixtures() throws -> SafeTensorsFile {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "transforms", withExtension: "safetensors", subdirectory: "Fixtures"))
        return try SafeTensors.load(url)
    }

    private func image(_ t: Tensor) -> RGBImage {
        RGBImage(width: t.shape[1], height: t.shape[0], pixels: t.scalars.map { UInt8($0) })
    }

    private func meta<T>(_ file: SafeTensorsFile, _ key: String) throws -> T {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(XCTUnwrap(file.metadata[key]).utf8)) as? T)
    }

    /// Colour ops are exact; geometric ops (Pillow's affine sampling) within ±1 level on ≤5% of pixels (exact on these fixtures).
    func testRandAugmentOpsMatchTimm() throws {
        let file = try fixtures()
        let source = image(try XCTUnwrap(file.tensors["source"]))
        let keys: [String] = try meta(file, "ops")
        XCTAssertGreaterThan(keys.count, 80)
        var worst: [String: Int] = [:]
        for key in keys {
            let parts = key.split(separator: ".").map(String.init)
            let op = try XCTUnwrap(RandAugment.Op(rawValue: parts[1]), key)
            var aug = try RandAugment(config: "rand-m9")
            aug.filter = ["nearest": .nearest, "bicubic": .bicubic][parts[4]] ?? .bilinear
            let out = aug.apply(op, magnitude: Double(parts[2])!, sign: Double(parts[3])!, to: source)
            let expected = try XCTUnwrap(file.tensors[key]).scalars
            let diffs = zip(out.pixels, expected).map { abs(Int($0) - Int($1)) }
            let geometric = parts[4] != "none"
            let maxDiff = diffs.max() ?? 0
            worst[parts[1]] = max(worst[parts[1]] ?? 0, maxDiff)
            XCTAssertLessThanOrEqual(maxDiff, geometric ? 1 : 0, "\(key): max difference \(maxDiff)")
            if geometric {
                // Nearly every pixel is exact; only samples on a rounding boundary may differ.
                XCTAssertLessThanOrEqual(diffs.filter { $0 > 0 }.count, diffs.count / 20, "\(key)")
            }
        }
        print("RandAugment max |Δ| per op:", worst.sorted { $0.key < $1.key })
    }

    func testRandAugmentConfigParsing() throws {
        let aug = try RandAugment(config: "rand-m9-mstd0.5-inc1")
        XCTAssertEqual(aug.magnitude, 9); XCTAssertEqual(aug.magnitudeStd, 0.5); XCTAssertEqual(aug.layers, 2)
        XCTAssertEqual(aug.ops, RandAugment.increasingOps)
        let other = try RandAugment(config: "rand-m7-n3-mstd101-p0.8")
        XCTAssertEqual(other.layers, 3); XCTAssertEqual(other.magnitudeStd, .infinity); XCTAssertEqual(other.probability, 0.8)
        XCTAssertEqual(other.ops, RandAugment.standardOps)
        XCTAssertThrowsError(try RandAugment(config: "auto-m9"))
        XCTAssertThrowsError(try RandAugment(config: "rand-q3"))
        var rng = RandomGenerator(seed: 3)
        let source = image(try XCTUnwrap(try fixtures().tensors["source"]))
        XCTAssertEqual(aug(source, using: &rng).width, source.width)
    }

    /// torchvision's resized_crop on PIL is Pillow's crop + resize: exact.
    func testResizedCropWithFixedBoxAndFallback() throws {
        let file = try fixtures()
        let source = image(try XCTUnwrap(file.tensors["source"]))
        let crops: [[Any]] = try meta(file, "crops")
        for c in crops {
            let (top, left, h, w, size, interp) = (c[0] as! Int, c[1] as! Int, c[2] as! Int, c[3] as! Int, c[4] as! Int, c[5] as! String)
            let rrc = RandomResizedCrop(size: size, filter: interp == "bicubic" ? .bicubic : .bilinear)
            let out = rrc.apply(source, box: CropBox(x: left, y: top, width: w, height: h))
            let expected = try XCTUnwrap(file.tensors["crop.\(top).\(left).\(h).\(w).\(size).\(interp)"])
            XCTAssertEqual(out.pixels.map(Float.init), expected.scalars, "crop \(c)")
        }
        let fallbacks: [[Int]] = try meta(file, "fallback")
        var rng = RandomGenerator(seed: 1)
        for f in fallbacks {
            let rrc = RandomResizedCrop(size: 8, scale: 2...3)
            XCTAssertEqual(rrc.box(width: f[0], height: f[1], using: &rng), CropBox(x: f[2], y: f[3], width: f[4], height: f[5]), "\(f)")
        }
        // Random boxes stay inside the image with area and ratio in range.
        let rrc = RandomResizedCrop(size: 8)
        for _ in 0..<200 {
            let b = rrc.box(width: 50, height: 30, using: &rng)
            XCTAssertTrue(b.x >= 0 && b.y >= 0 && b.x + b.width <= 50 && b.y + b.height <= 30, "\(b)")
        }
    }

    func testVTABDirectResizeAndFlip() throws {
        let file = try fixtures()
        let source = image(try XCTUnwrap(file.tensors["source"]))
        var rng = RandomGenerator(seed: 0)
        let t = DirectResizeTransform(size: 12, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])(source, using: &rng)
        let expected = try XCTUnwrap(file.tensors["vtab.12"])
        XCTAssertEqual(t.shape, expected.shape)
        XCTAssertLessThanOrEqual(zip(t.scalars, expected.scalars).map { abs($0 - $1) }.max()!, 1e-5)
        let flipped = source.flippedHorizontally()
        XCTAssertEqual(flipped.flippedHorizontally(), source)
        XCTAssertEqual(Array(flipped.pixels[0..<3]), Array(source.pixels[(source.width - 1) * 3..<source.width * 3]))
    }

    /// Mixed images and targets equal timm's for fixed λ and CutMix centre (float32 rounding only).
    func testMixupAndCutmixMatchTimm() throws {
        let file = try fixtures()
        let x = try XCTUnwrap(file.tensors["mix.x"])
        let mixup = Mixup(mixupAlpha: 0.8, cutmixAlpha: 1, labelSmoothing: 0.1, classCount: 5)
        let keys: [String] = try meta(file, "mix")
        XCTAssertEqual(keys.count, 3)
        for key in keys {
            let parts = key.split(separator: ".").map(String.init)   // mix.KIND.L.L.CY.CX
            let lambda = Double("\(parts[2]).\(parts[3])")!
            let decision = Mixup.Decision(lambda: lambda, cutmix: parts[1] == "cutmix", center: (Int(parts[4])!, Int(parts[5])!))
            var images = x
            let targets = mixup.apply(decision, images: &images, labels: [0, 2, 1, 4])
            let wantX = try XCTUnwrap(file.tensors[key + ".x"]), wantT = try XCTUnwrap(file.tensors[key + ".targets"])
            XCTAssertLessThanOrEqual(zip(images.scalars, wantX.scalars).map { abs($0 - $1) }.max()!, 1e-6, key)
            XCTAssertLessThanOrEqual(zip(targets.scalars, wantT.scalars).map { abs($0 - $1) }.max()!, 1e-6, key)
            for row in 0..<4 { XCTAssertEqual(targets.scalars[row * 5..<row * 5 + 5].reduce(0, +), 1, accuracy: 1e-6) }
        }
        // λ = 1 (no mix) gives smoothed one-hot targets: 0.92 on the label, 0.02 elsewhere.
        var images = x
        let plain = mixup.apply(Mixup.Decision(lambda: 1, cutmix: false), images: &images, labels: [0, 2, 1, 4])
        XCTAssertEqual(images.scalars, x.scalars)
        XCTAssertEqual(plain.scalars[0], 0.92, accuracy: 1e-6); XCTAssertEqual(plain.scalars[1], 0.02, accuracy: 1e-6)
        // Beta draws lie in [0, 1] with mean 1/2.
        var rng = RandomGenerator(seed: 9)
        let draws = (0..<4000).map { _ in rng.beta(0.8) }
        XCTAssertTrue(draws.allSatisfy { $0 >= 0 && $0 <= 1 })
        XCTAssertEqual(draws.reduce(0, +) / 4000, 0.5, accuracy: 0.02)
    }

    func testRandomErasingBoxesAndNoise() {
        var rng = RandomGenerator(seed: 5)
        let erasing = RandomErasing(probability: 1, mode: .pixel)
        for _ in 0..<100 {
            for b in erasing.boxes(height: 32, width: 40, using: &rng) {
                let area = Double(b.width * b.height) / 1280
                XCTAssertTrue(b.x >= 0 && b.y >= 0 && b.x + b.width <= 40 && b.y + b.height <= 32)
                XCTAssertTrue(area >= 0.015 && area <= 0.36, "area \(area)")
            }
        }
        var t = Tensor(shape: [3, 32, 40], repeating: 7)
        erasing(&t, using: &rng)
        let erased = t.scalars.filter { $0 != 7 }
        XCTAssertGreaterThan(erased.count, 0)
        XCTAssertEqual(erased.count % 3, 0)
        var none = Tensor(shape: [3, 8, 8], repeating: 7)
        RandomErasing(probability: 0)(&none, using: &rng)
        XCTAssertEqual(none.scalars, [Float](repeating: 7, count: 192))
    }

    func testCenterCropRoundsHalfOffsetsToEvenLikeTorchvision() {
        // A row of pixels numbered by x: the crop's first pixel is its left offset.
        func firstColumn(width: Int, crop: Int) -> UInt8 {
            let pixels = (0..<width).flatMap { x in [UInt8(x), UInt8(x), UInt8(x)] }
            return RGBImage(width: width, height: 1, pixels: pixels).centerCropped(width: crop, height: 1).pixels[0]
        }
        // torchvision: int(round((w - c) / 2)) with Python's round-half-to-even.
        XCTAssertEqual(firstColumn(width: 13, crop: 10), 2)   // 1.5 → 2
        XCTAssertEqual(firstColumn(width: 15, crop: 10), 2)   // 2.5 → 2
        XCTAssertEqual(firstColumn(width: 109, crop: 96), 6)  // 6.5 → 6 (96 px eval of 32 px images)
        XCTAssertEqual(firstColumn(width: 14, crop: 10), 2)
    }
}
