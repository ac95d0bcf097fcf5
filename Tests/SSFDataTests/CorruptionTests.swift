// The ImageNet-C corruptions against an independent NumPy/SciPy/Pillow implementation of the same
// definitions (tools/gen_corruption_fixtures.py: three 48×48 images, NumPy-drawn random fields,
// severities 1, 3, 5), the fields our generator draws, determinism under a seed, severity
// monotonicity, the size rule, the JPEG encoder and the NAME:SEVERITY parser.
import Foundation
import XCTest
import SSFEngine
import SSFNN
@testable import SSFData

final class CorruptionTests: XCTestCase {
    private static let fixture: SafeTensorsFile? = {
        guard let url = Bundle.module.url(forResource: "corruptions", withExtension: "safetensors", subdirectory: "Fixtures") else { return nil }
        return try? SafeTensors.load(url)
    }()

    private func fixture() throws -> SafeTensorsFile {
        try XCTUnwrap(Self.fixture, "Fixtures/corruptions.safetensors is missing; run tools/gen_corruption_fixtures.py")
    }

    private func image(_ t: Tensor) -> RGBImage {
        RGBImage(width: t.shape[1], height: t.shape[0], pixels: t.scalars.map { UInt8($0) })
    }

    /// Largest per-value difference, and the fraction of values that differ at all.
    private func difference(_ a: RGBImage, _ b: RGBImage) -> (max: Int, fraction: Double) {
        var worst = 0, differing = 0
        for (x, y) in zip(a.pixels, b.pixels) {
            let d = abs(Int(x) - Int(y))
            worst = max(worst, d)
            if d > 0 { differing += 1 }
        }
        return (worst, Double(differing) / Double(a.pixels.count))
    }

    /// Tolerances against the reference, in 8-bit levels.
    ///
    /// 1 level everywhere the two sides compute the same formula: the output is truncated to 8 bits
    /// (as the published script's np.uint8), so float32 vs float64 rounding just below an integer moves
    /// a value by one. JPEG gets more: Pillow links its own libjpeg-turbo build and we the system's, so
    /// encoder and decoder (DCT, chroma upsampling) may differ by a few levels on some pixels.
    private static let tolerance: [Corruption: (max: Int, fraction: Double)] = [
        .jpegCompression: (8, 0.5),
    ]

    func testEveryCorruptionMatchesTheReference() throws {
        let f = try fixture()
        var failures: [String] = []
        for corruption in Corruption.allCases {
            let (maxTolerance, fractionTolerance) = Self.tolerance[corruption] ?? (1, 0.05)
            var worst = (max: 0, fraction: 0.0)
            for k in 0..<3 {
                let clean = image(try XCTUnwrap(f.tensors["image.\(k)"]))
                var field = CorruptionField.empty
                if corruption.isRandom {
                    let key = corruption == .fog ? "field.fog" : "field.\(corruption.rawValue).\(k)"
                    field = CorruptionField(values: try XCTUnwrap(f.tensors[key], key).scalars)
                }
                for severity in [1, 3, 5] {
                    let expected = image(try XCTUnwrap(f.tensors["expected.\(corruption.rawValue).\(severity).\(k)"]))
                    let actual = corruption.apply(clean, field: field, severity: severity)
                    let d = difference(actual, expected)
                    worst = (max(worst.max, d.max), max(worst.fraction, d.fraction))
                    if d.max > maxTolerance || d.fraction > fractionTolerance {
                        failures.append("\(corruption.rawValue):\(severity) image \(k): max diff \(d.max) levels, \(String(format: "%.2f", 100 * d.fraction)) % of values differ")
                    }
                }
            }
            print("\(corruption.rawValue): max diff \(worst.max) levels, at most \(String(format: "%.2f", 100 * worst.fraction)) % of values differ")
        }
        XCTAssert(failures.isEmpty, failures.joined(separator: "\n"))
    }

    // MARK: Fields from our generator

    private func gray(_ side: Int, _ value: UInt8) -> RGBImage {
        RGBImage(width: side, height: side, pixels: [UInt8](repeating: value, count: side * side * 3))
    }

    func testGaussianNoiseHasTheSeveritysSigma() {
        var rng = RandomGenerator(seed: 11)
        let clean = gray(64, 128)
        let field = Corruption.gaussianNoise.drawField(width: 64, height: 64, using: &rng)
        for (severity, sigma) in [(1, 0.08), (3, 0.18)] {
            let out = Corruption.gaussianNoise.apply(clean, field: field, severity: severity)
            let d = zip(out.pixels, clean.pixels).map { (Double($0) - Double($1)) / 255 }
            let mean = d.reduce(0, +) / Double(d.count)
            let std = (d.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d.count)).squareRoot()
            // 12288 values: the sample std is within ~1.3 % of sigma; truncation shifts the mean by −½ level.
            XCTAssertEqual(std, sigma, accuracy: sigma * 0.05, "severity \(severity)")
            XCTAssertEqual(mean, -0.5 / 255, accuracy: 0.004, "severity \(severity)")
        }
    }

    func testShotNoiseIsPoisson() {
        var rng = RandomGenerator(seed: 12)
        let clean = gray(64, 102)  // x = 0.4
        let field = Corruption.shotNoise.drawField(width: 64, height: 64, using: &rng)
        XCTAssert(field.values.allSatisfy { $0 >= 0 && $0 < 1 })
        // Severity 3 (c = 12): counts ~ Poisson(4.8), so the output is k/12 with mean 0.4, variance 0.4/12.
        let out = Corruption.shotNoise.apply(clean, field: field, severity: 3)
        let x = out.pixels.map { Double($0) / 255 }
        let mean = x.reduce(0, +) / Double(x.count)
        let variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count)
        XCTAssertEqual(mean, 0.4, accuracy: 0.01)
        XCTAssertEqual(variance, 0.4 / 12, accuracy: 0.4 / 12 * 0.08)
    }

    func testImpulseNoiseFlipsTheSeveritysFraction() {
        var rng = RandomGenerator(seed: 13)
        let clean = gray(64, 128)
        let field = Corruption.impulseNoise.drawField(width: 64, height: 64, using: &rng)
        for (severity, amount) in [(1, 0.03), (5, 0.27)] {
            let out = Corruption.impulseNoise.apply(clean, field: field, severity: severity)
            let salt = Double(out.pixels.filter { $0 == 255 }.count) / Double(out.pixels.count)
            let pepper = Double(out.pixels.filter { $0 == 0 }.count) / Double(out.pixels.count)
            XCTAssertEqual(salt, amount / 2, accuracy: 0.012, "severity \(severity)")
            XCTAssertEqual(pepper, amount / 2, accuracy: 0.012, "severity \(severity)")
            XCTAssertEqual(out.pixels.filter { $0 != 0 && $0 != 255 }.allSatisfy { $0 == 128 }, true)
        }
    }

    func testUniformFieldsCoverTheirRanges() {
        var rng = RandomGenerator(seed: 14)
        var angles: [Float] = []
        for _ in 0..<2000 { angles += Corruption.motionBlur.drawField(width: 8, height: 8, using: &rng).values }
        XCTAssert(angles.allSatisfy { $0 >= -45 && $0 < 45 })
        XCTAssertEqual(Double(angles.reduce(0, +)) / 2000, 0, accuracy: 1.5)
        for corruption in [Corruption.elasticTransform, .fog] {
            let values = corruption.drawField(width: 32, height: 32, using: &rng).values
            XCTAssertEqual(values.count, corruption.fieldCount(width: 32, height: 32))
            XCTAssert(values.allSatisfy { $0 >= -1 && $0 < 1 })
            XCTAssertEqual(Double(values.reduce(0, +)) / Double(values.count), 0, accuracy: 0.05, corruption.rawValue)
        }
        XCTAssertEqual(Corruption.fog.fieldCount(width: 32, height: 32), 256 * 256)
        XCTAssertEqual(Corruption.contrast.drawField(width: 32, height: 32, using: &rng), .empty)
    }

    // MARK: Determinism and severity

    /// A test scene: gradients and a disc, with a broadband pseudo-random texture (±20 levels of green) when `textured`.
    private func scene(_ side: Int, textured: Bool = true) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: side * side * 3)
        for y in 0..<side {
            for x in 0..<side {
                let o = (y * side + x) * 3
                let inDisc = (x - side / 3) * (x - side / 3) + (y - side / 2) * (y - side / 2) < side * side / 16
                pixels[o] = inDisc ? 230 : UInt8(x * 200 / side + 20)
                let texture = textured ? Int(((UInt32(x) &* 73_856_093) ^ (UInt32(y) &* 19_349_663)) % 41) : 20
                pixels[o + 1] = UInt8(y * 160 / side + 20 + texture)
                pixels[o + 2] = inDisc ? 40 : UInt8((x + y) * 100 / (2 * side) + 80)
            }
        }
        return RGBImage(width: side, height: side, pixels: pixels)
    }

    func testSameSeedSameBytesDifferentSeedDifferent() {
        let clean = scene(40)
        for corruption in Corruption.allCases where corruption.isRandom {
            var a = RandomGenerator(seed: 5), b = RandomGenerator(seed: 5), c = RandomGenerator(seed: 6)
            let first = corruption(clean, severity: 3, using: &a)
            XCTAssertEqual(first, corruption(clean, severity: 3, using: &b), corruption.rawValue)
            XCTAssertNotEqual(first, corruption(clean, severity: 3, using: &c), corruption.rawValue)
        }
        // Through the evaluation transform, as the loader drives it.
        let eval = EvalTransform(imageSize: 32, cropFraction: 0.875, filter: .bicubic, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])
        let transform = CorruptionTransform(geometry: .resizeAndCrop(eval), corruption: CorruptionSpec(.gaussianNoise, severity: 2),
                                            mean: eval.mean, std: eval.std)
        var a = RandomGenerator(seed: 9), b = RandomGenerator(seed: 9)
        let t1 = transform(clean, using: &a), t2 = transform(clean, using: &b)
        XCTAssertEqual(t1.shape, [3, 32, 32])
        XCTAssertEqual(t1.scalars, t2.scalars)
        XCTAssertNotEqual(t1.scalars, eval(clean).scalars)
    }

    func testDamageGrowsWithSeverity() {
        let clean = scene(96, textured: false)
        func meanAbsDifference(_ image: RGBImage) -> Double {
            Double(zip(image.pixels, clean.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +)) / Double(clean.pixels.count)
        }
        /// Mean absolute difference between horizontal and vertical neighbours: what a blur removes.
        func variation(_ image: RGBImage) -> Double {
            var total = 0
            for y in 0..<(image.height - 1) {
                for x in 0..<(image.width - 1) {
                    for c in 0..<3 {
                        let p = Int(image.pixels[(y * image.width + x) * 3 + c])
                        total += abs(p - Int(image.pixels[(y * image.width + x + 1) * 3 + c])) + abs(p - Int(image.pixels[((y + 1) * image.width + x) * 3 + c]))
                    }
                }
            }
            return Double(total) / Double((image.width - 1) * (image.height - 1) * 3)
        }
        func series(_ corruption: Corruption, _ measure: (RGBImage) -> Double) -> [Double] {
            var rng = RandomGenerator(seed: 21)
            let field = corruption.drawField(width: 96, height: 96, using: &rng)
            return Corruption.severities.map { measure(corruption.apply(clean, field: field, severity: $0)) }
        }
        // Distance from the clean image grows. (Blurs are measured by the detail they remove instead:
        // the published kernels do not sum to exactly 1 in float32, and the truncation to 8 bits turns
        // that into a whole-image shift of up to a level that differs between severities.)
        for corruption in [Corruption.gaussianNoise, .shotNoise, .impulseNoise, .brightness, .contrast, .fog] {
            let damage = series(corruption, meanAbsDifference)
            for s in 1..<5 { XCTAssertLessThanOrEqual(damage[s - 1], damage[s], "\(corruption.rawValue): \(damage)") }
            XCTAssertLessThan(damage[0], damage[4], "\(corruption.rawValue): \(damage)")
        }
        // Detail falls. Motion blur's severities 2–4 share the streak's length and widen its Gaussian.
        // Zoom blur only end to end: the published factor sets are not nested (severity 2 averages 16
        // zooms up to 1.15, severity 3 eleven up to 1.20), so detail need not fall at every step.
        let textured = scene(96)
        for corruption in [Corruption.defocusBlur, .motionBlur] {
            var rng = RandomGenerator(seed: 23)
            let field = corruption.drawField(width: 96, height: 96, using: &rng)
            let detail = Corruption.severities.map { variation(corruption.apply(textured, field: field, severity: $0)) }
            for s in 1..<5 { XCTAssertGreaterThanOrEqual(detail[s - 1], detail[s], "\(corruption.rawValue): \(detail)") }
            XCTAssertGreaterThan(detail[0], detail[4], "\(corruption.rawValue): \(detail)")
        }
        var rng = RandomGenerator(seed: 24)
        let zoom = Corruption.severities.map { variation(Corruption.zoomBlur(textured, severity: $0, using: &rng)) }
        XCTAssertGreaterThan(zoom[0], zoom[4], "zoom_blur: \(zoom)")
        // Pixelate and JPEG only end to end: how far the box resizes land depends on how the reduced
        // size divides the side (96 · 0.5 = 48 exactly, 96 · 0.6 = 57.6 not), not only on the factor.
        for corruption in [Corruption.pixelate, .jpegCompression] {
            let damage = series(corruption, meanAbsDifference)
            XCTAssertLessThan(damage[0], damage[4], "\(corruption.rawValue): \(damage)")
        }
    }

    // MARK: Size rule, kernels, JPEG

    func testNonSquareAndTinyImagesKeepTheirSize() {
        let wide = RGBImage(width: 37, height: 20, pixels: (0..<(37 * 20 * 3)).map { UInt8(($0 * 7) % 256) })
        let tiny = RGBImage(width: 3, height: 2, pixels: (0..<18).map { UInt8($0 * 14) })
        for image in [wide, tiny] {
            for corruption in Corruption.allCases {
                var rng = RandomGenerator(seed: 1)
                for severity in [1, 5] {
                    let out = corruption(image, severity: severity, using: &rng)
                    XCTAssertEqual(out.width, image.width, corruption.rawValue)
                    XCTAssertEqual(out.height, image.height, corruption.rawValue)
                }
            }
        }
    }

    func testA224ImageGetsThePublishedParameters() {
        // Severity 1 at 224: a 17 × 17 disk grid (|x|, |y| ≤ 8), radius 3; severity 5: 21 × 21, radius 10.
        XCTAssertEqual(defocusKernel(radius: 3, aliasSigma: 0.1, scale: 1).size, 17)
        XCTAssertEqual(defocusKernel(radius: 10, aliasSigma: 0.5, scale: 1).size, 21)
        let kernel = defocusKernel(radius: 3, aliasSigma: 0.1, scale: 1).kernel
        XCTAssertEqual(Double(kernel.reduce(0, +)), 1, accuracy: 1e-5)
        // Motion blur severity 1 at 224: radius 10 → 21 taps, sigma 3; at 112 the streak halves.
        let taps = motionKernel(radius: 10, sigma: 3, degrees: 0)
        XCTAssertEqual(taps.count, 21)
        XCTAssertEqual(taps.map(\.dx), Array(0...20))
        XCTAssert(taps.allSatisfy { $0.dy == 0 })
        XCTAssertEqual(motionKernel(radius: 5, sigma: 1.5, degrees: 90).map(\.dy), (0...10).map { -$0 })
        // The zoom crop: 224 / 1.11 → 202 rows, zoomed to 224 and trimmed to the centre.
        let zoom = zoomTaps(length: 224, factor: 1.11)
        XCTAssertEqual(zoom.count, 224)
        XCTAssertEqual(zoom.first!.0, 11)
        XCTAssertLessThanOrEqual(zoom.last!.1, 11 + 201)
    }

    func testJPEGEncoderRoundTrips() throws {
        let clean = scene(64, textured: false)
        let fine = try RGBImage(encoded: clean.jpegData(quality: 95), path: "q95")
        XCTAssertEqual(fine.width, 64)
        // 4:2:0 chroma smears the disc's red edge; on average the round trip is close.
        let mean = Double(zip(fine.pixels, clean.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +)) / Double(clean.pixels.count)
        XCTAssertLessThan(mean, 3)
        let coarse = try clean.jpegData(quality: 7), good = try clean.jpegData(quality: 95)
        XCTAssertLessThan(coarse.count, good.count)
        XCTAssertEqual(Array(coarse.prefix(3)), [0xFF, 0xD8, 0xFF])
    }

    // MARK: Parsing

    func testParsesNameAndSeverity() throws {
        XCTAssertEqual(try CorruptionSpec(parsing: "motion_blur:4"), CorruptionSpec(.motionBlur, severity: 4))
        XCTAssertEqual(try CorruptionSpec(parsing: "fog:1").description, "fog:1")
        XCTAssertEqual(Corruption.allCases.count, 13)
        func message(_ text: String) -> String {
            do { _ = try CorruptionSpec(parsing: text); return "" } catch { return "\(error)" }
        }
        XCTAssert(message("gaussian_blur:2").contains("unknown corruption 'gaussian_blur'"), message("gaussian_blur:2"))
        XCTAssert(message("gaussian_blur:2").contains("gaussian_noise, shot_noise"), message("gaussian_blur:2"))
        XCTAssert(message("fog:6").contains("not an integer from 1 to 5"), message("fog:6"))
        XCTAssert(message("fog:0").contains("not an integer from 1 to 5"), message("fog:0"))
        XCTAssert(message("fog:x").contains("not an integer from 1 to 5"), message("fog:x"))
        XCTAssert(message("fog").contains("not NAME:SEVERITY"), message("fog"))
        XCTAssert(message("fog:1:2").contains("not NAME:SEVERITY"), message("fog:1:2"))
    }
}
