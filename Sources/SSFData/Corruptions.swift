// ImageNet-C-style corruptions of 8-bit RGB images at severities 1–5 (Hendrycks & Dietterich,
// "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations", ICLR 2019).
//
// The per-severity parameters are the published table of the paper's `make_imagenet_c.py`
// (github.com/hendrycks/robustness, ImageNet-C/create_c), which defines every corruption on
// 224 × 224 images. The code here is our own implementation of those definitions.
//
// Other sizes: every spatial parameter (blur radii and sigmas, the motion-blur length, the elastic
// displacement, smoothing and affine jitter, the fog map's scale) is multiplied by
// s = min(width, height) / 224, so a 224 image gets exactly the published values and a smaller one the
// same blur relative to its size. Parameters without a length (noise levels, zoom factors, pixelate
// and contrast factors, JPEG quality) are used as published.
//
// Randomness: every random corruption is a draw of a random field from the project's generator
// (`drawField`) followed by a deterministic `apply(_:field:severity:)`. The fields do not depend on
// the severity, so one draw serves all five. Outputs are truncated to 8 bits after clipping to
// [0, 1] · 255, as the published script's `np.uint8` does (it then also re-encodes each image as a
// quality-85 JPEG to store it; we do not).
//
// Where the published script calls other libraries we follow their definitions with our own code,
// and differ in these details: motion blur is our own whole-pixel line kernel with ImageMagick's
// radius/sigma/angle meaning (`motionKernel`); the elastic transform's affine warp interpolates in
// floating point where OpenCV's `warpAffine` uses 5-bit fixed-point weights; JPEG goes through the
// system libjpeg, not Pillow's build; at sizes other than 224 the fog map is resampled (`fogged`).
import CImageCodecs
import Foundation
import SSFEngine

/// One of the ImageNet-C corruptions.
public enum Corruption: String, CaseIterable, Sendable {
    case gaussianNoise = "gaussian_noise", shotNoise = "shot_noise", impulseNoise = "impulse_noise"
    case defocusBlur = "defocus_blur", motionBlur = "motion_blur", zoomBlur = "zoom_blur"
    case fog, brightness, contrast, elasticTransform = "elastic_transform", pixelate
    case jpegCompression = "jpeg_compression", saturate

    /// The severities every corruption has.
    public static let severities = 1...5

    /// Whether the corruption draws a random field (the others are deterministic).
    public var isRandom: Bool {
        switch self {
        case .gaussianNoise, .shotNoise, .impulseNoise, .motionBlur, .elasticTransform, .fog: return true
        default: return false
        }
    }

    /// The number of values its field holds for a `width × height` image (0: deterministic).
    ///
    /// Layouts, all in row-major pixel order with interleaved channels where per channel:
    /// - gaussian_noise: width·height·3 standard normals;
    /// - shot_noise, impulse_noise: width·height·3 uniforms in [0, 1);
    /// - motion_blur: one angle in degrees, uniform in [−45, 45);
    /// - elastic_transform: 6 uniforms in [−1, 1) (the jitter of the affine's three points, x then y
    ///   for each), then width·height uniforms in [−1, 1) for the x displacement, then as many for y;
    /// - fog: 256·256 uniforms in [−1, 1), one per cell of the plasma fractal.
    public func fieldCount(width: Int, height: Int) -> Int {
        switch self {
        case .gaussianNoise, .shotNoise, .impulseNoise: return width * height * 3
        case .motionBlur: return 1
        case .elasticTransform: return 6 + 2 * width * height
        case .fog: return FogMap.side * FogMap.side
        default: return 0
        }
    }

    /// Draws the corruption's random field for a `width × height` image from `rng`.
    public func drawField(width: Int, height: Int, using rng: inout RandomGenerator) -> CorruptionField {
        let n = fieldCount(width: width, height: height)
        var values = [Float](repeating: 0, count: n)
        switch self {
        case .gaussianNoise:
            for i in 0..<n { values[i] = rng.nextNormal() }
        case .shotNoise, .impulseNoise:
            for i in 0..<n { values[i] = rng.nextUniform() }
        case .motionBlur:
            values[0] = -45 + 90 * rng.nextUniform()
        case .elasticTransform, .fog:
            for i in 0..<n { values[i] = 2 * rng.nextUniform() - 1 }
        default:
            break
        }
        return CorruptionField(values: values)
    }

    /// The corrupted image: a field drawn from `rng`, then applied.
    public func callAsFunction(_ image: RGBImage, severity: Int, using rng: inout RandomGenerator) -> RGBImage {
        apply(image, field: drawField(width: image.width, height: image.height, using: &rng), severity: severity)
    }

    /// The corruption at `severity` (1–5) applied with a given random field (empty for the
    /// deterministic corruptions; see `fieldCount` for the layouts).
    public func apply(_ image: RGBImage, field: CorruptionField, severity: Int) -> RGBImage {
        precondition(Self.severities.contains(severity), "\(rawValue): severity \(severity) is not in 1–5")
        precondition(field.values.count == fieldCount(width: image.width, height: image.height),
                     "\(rawValue): a field of \(field.values.count) values for a \(image.width)×\(image.height) image")
        let i = severity - 1
        let s = Double(min(image.width, image.height)) / 224
        switch self {
        case .gaussianNoise:
            return addGaussianNoise(image, normals: field.values, sigma: [0.08, 0.12, 0.18, 0.26, 0.38][i])
        case .shotNoise:
            return addShotNoise(image, uniforms: field.values, photons: [60, 25, 12, 5, 3][i])
        case .impulseNoise:
            return addImpulseNoise(image, uniforms: field.values, amount: [0.03, 0.06, 0.09, 0.17, 0.27][i])
        case .defocusBlur:
            let (radius, alias) = [(3.0, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)][i]
            return defocusBlurred(image, radius: radius * s, aliasSigma: alias, scale: s)
        case .motionBlur:
            let (radius, sigma) = [(10.0, 3.0), (15, 5), (15, 8), (15, 12), (20, 15)][i]
            return motionBlurred(image, radius: radius * s, sigma: sigma * s, degrees: Double(field.values[0]))
        case .zoomBlur:
            // np.arange(1, stop, step): `count` factors 1 + k·step.
            let (step, count) = [(0.01, 12), (0.01, 16), (0.02, 11), (0.02, 13), (0.03, 11)][i]
            return zoomBlurred(image, factors: (0..<count).map { 1 + Double($0) * step })
        case .fog:
            let (thickness, decay) = [(1.5, 2.0), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)][i]
            return fogged(image, uniforms: field.values, thickness: thickness, decay: decay, scale: s)
        case .brightness:
            let c = [0.1, 0.2, 0.3, 0.4, 0.5][i]
            return hsvMapped(image) { h, sat, v in (h, sat, min(max(v + c, 0), 1)) }
        case .saturate:
            let (gain, offset) = [(0.3, 0.0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)][i]
            return hsvMapped(image) { h, sat, v in (h, min(max(sat * gain + offset, 0), 1), v) }
        case .contrast:
            return contrastScaled(image, factor: [0.4, 0.3, 0.2, 0.1, 0.05][i])
        case .elasticTransform:
            // The published table writes 244 where 224 was meant; the values are used as published.
            let table: [(Double, Double, Double)] = [(2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02)]
            let (alpha, sigma, jitter) = (244 * table[i].0, 244 * table[i].1, 244 * table[i].2)
            return elasticTransformed(image, field: field.values, alpha: alpha * s, sigma: sigma * s, jitter: jitter * s)
        case .pixelate:
            let c = [0.6, 0.5, 0.4, 0.3, 0.25][i]
            let small = image.resized(width: max(Int(Double(image.width) * c), 1), height: max(Int(Double(image.height) * c), 1), filter: .box)
            return small.resized(width: image.width, height: image.height, filter: .box)
        case .jpegCompression:
            return jpegRoundTrip(image, quality: [25, 18, 15, 10, 7][i])
        }
    }
}

/// The random values a corruption draws for one image (layouts: `Corruption.fieldCount`).
public struct CorruptionField: Sendable, Equatable {
    public var values: [Float]
    public init(values: [Float]) { self.values = values }
    /// The field of a deterministic corruption.
    public static let empty = CorruptionField(values: [])
}

/// A corruption and its severity, as `NAME:SEVERITY` on the command line.
public struct CorruptionSpec: Sendable, Equatable, CustomStringConvertible {
    public var corruption: Corruption
    public var severity: Int

    public init(_ corruption: Corruption, severity: Int) {
        precondition(Corruption.severities.contains(severity), "severity \(severity) is not in 1–5")
        self.corruption = corruption; self.severity = severity
    }

    /// Parses `NAME:SEVERITY`, e.g. `gaussian_noise:3`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw CorruptionError("'\(text)' is not NAME:SEVERITY (e.g. gaussian_noise:3); names: \(Corruption.validNames); severities 1–5")
        }
        let corruption = try Corruption(named: String(parts[0]))
        guard let severity = Int(parts[1].trimmingCharacters(in: .whitespaces)), Corruption.severities.contains(severity) else {
            throw CorruptionError("'\(text)': severity '\(parts[1])' is not an integer from 1 to 5")
        }
        self.init(corruption, severity: severity)
    }

    public var description: String { "\(corruption.rawValue):\(severity)" }

    /// The corrupted image, its field drawn from `rng`.
    public func callAsFunction(_ image: RGBImage, using rng: inout RandomGenerator) -> RGBImage {
        corruption(image, severity: severity, using: &rng)
    }
}

extension Corruption {
    /// The valid names, comma-separated (for error messages and help).
    public static var validNames: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// The corruption called `name` (as in ImageNet-C, e.g. `motion_blur`).
    public init(named name: String) throws {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard let value = Corruption(rawValue: trimmed) else {
            throw CorruptionError("unknown corruption '\(trimmed)'; valid names: \(Corruption.validNames)")
        }
        self = value
    }
}

/// A corruption name or severity that does not parse.
public struct CorruptionError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

// MARK: - Pixel helpers

/// The image's values / 255, interleaved.
func unitFloats(_ image: RGBImage) -> [Float] {
    image.pixels.map { Float($0) * (1 / 255) }
}

/// Values clipped to [0, 1], times 255, truncated to 8 bits (the published script's `np.uint8`).
func truncatedImage(_ values: UnsafeBufferPointer<Float>, width: Int, height: Int) -> RGBImage {
    var out = [UInt8](repeating: 0, count: values.count)
    out.withUnsafeMutableBufferPointer { o in
        for i in 0..<values.count {
            let v = values[i]
            o[i] = v <= 0 ? 0 : v >= 1 ? 255 : UInt8(v * 255)
        }
    }
    return RGBImage(width: width, height: height, pixels: out)
}

func truncatedImage(_ values: [Float], width: Int, height: Int) -> RGBImage {
    values.withUnsafeBufferPointer { truncatedImage($0, width: width, height: height) }
}

/// One value clipped to [0, 1], times 255, truncated, in double precision (for the corruptions
/// computed in doubles, so that values that are whole levels stay whole).
@inline(__always) func truncated8(_ v: Double) -> UInt8 {
    v <= 0 ? 0 : v >= 1 ? 255 : UInt8(v * 255)
}

/// Index `i` folded into 0..<n by reflecting about the edge pixels (OpenCV's BORDER_REFLECT_101: gfedcb|abcdefgh|gfedcba).
@inline(__always) func reflect101(_ i: Int, _ n: Int) -> Int {
    if i >= 0 && i < n { return i }
    if n == 1 { return 0 }
    let period = 2 * n - 2
    var m = i % period
    if m < 0 { m += period }
    return m < n ? m : period - m
}

/// Index `i` folded into 0..<n by reflecting about the edges, edge pixels repeated (SciPy's `reflect`: dcba|abcd|dcba).
@inline(__always) func reflectHalf(_ i: Int, _ n: Int) -> Int {
    if i >= 0 && i < n { return i }
    let period = 2 * n
    var m = i % period
    if m < 0 { m += period }
    return m < n ? m : period - 1 - m
}

// MARK: - Noise

/// x + σ·z per value.
func addGaussianNoise(_ image: RGBImage, normals: [Float], sigma: Double) -> RGBImage {
    let x = unitFloats(image), sigma = Float(sigma)
    var out = [Float](repeating: 0, count: x.count)
    for i in x.indices { out[i] = x[i] + sigma * normals[i] }
    return truncatedImage(out, width: image.width, height: image.height)
}

/// Poisson(x·c)/c per value, each count the inverse Poisson CDF at its uniform: the smallest k with
/// P(K ≤ k) ≥ u, summed in double precision.
func addShotNoise(_ image: RGBImage, uniforms: [Float], photons c: Double) -> RGBImage {
    // λ depends only on the 8-bit value: each value's CDF terms are tabulated once, up to where
    // they reach 1 within double precision.
    var cdfs: [[Double]] = []
    for v in 0..<256 {
        let lambda = Double(v) / 255 * c
        var p = exp(-lambda), cdf = p, table = [cdf]
        var k = 0
        while cdf < 1 - 1e-15 && k < 10_000 {
            k += 1
            p *= lambda / Double(k)
            cdf += p
            table.append(cdf)
            if p == 0 && Double(k) > lambda { break }
        }
        cdfs.append(table)
    }
    var out = [Float](repeating: 0, count: uniforms.count)
    for i in out.indices {
        let table = cdfs[Int(image.pixels[i])], u = Double(uniforms[i])
        var k = 0
        while k < table.count - 1 && table[k] < u { k += 1 }
        out[i] = Float(Double(k) / c)
    }
    return truncatedImage(out, width: image.width, height: image.height)
}

/// Salt and pepper per value: u < amount/2 → 1, amount/2 ≤ u < amount → 0, else unchanged (each
/// value flipped with probability `amount`, salt and pepper equally likely, as scikit-image's `s&p`).
/// Values not flipped keep their 8-bit value exactly (the published float round trip can move some down a level).
func addImpulseNoise(_ image: RGBImage, uniforms: [Float], amount: Double) -> RGBImage {
    var out = image.pixels
    let half = Float(amount / 2), all = Float(amount)
    for i in out.indices {
        let u = uniforms[i]
        if u < half { out[i] = 255 } else if u < all { out[i] = 0 }
    }
    return RGBImage(width: image.width, height: image.height, pixels: out)
}

// MARK: - Blurs

/// A 2-D correlation of each channel with a square kernel, borders reflected (BORDER_REFLECT_101, as `cv2.filter2D`).
func filtered(_ image: RGBImage, kernel: [Float], size k: Int) -> RGBImage {
    let w = image.width, h = image.height, r = k / 2
    let x = unitFloats(image)
    var out = [Float](repeating: 0, count: x.count)
    // Column indices per output column and kernel offset, folded once.
    let cols = (0..<w).flatMap { cx in (0..<k).map { reflect101(cx + $0 - r, w) } }
    x.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            kernel.withUnsafeBufferPointer { kern in
                for y in 0..<h {
                    for ky in 0..<k {
                        let row = reflect101(y + ky - r, h) * w * 3
                        for cx in 0..<w {
                            var a0: Float = 0, a1: Float = 0, a2: Float = 0
                            for kx in 0..<k {
                                let wgt = kern[ky * k + kx]
                                if wgt == 0 { continue }
                                let p = row + cols[cx * k + kx] * 3
                                a0 += wgt * src[p]; a1 += wgt * src[p + 1]; a2 += wgt * src[p + 2]
                            }
                            let o = (y * w + cx) * 3
                            dst[o] += a0; dst[o + 1] += a1; dst[o + 2] += a2
                        }
                    }
                }
            }
        }
    }
    return truncatedImage(out, width: w, height: h)
}

/// The published defocus kernel: a disk of `radius` (cells with x² + y² ≤ r²) on a grid of half-width
/// 8·s (or ⌈r⌉ when the radius is larger), normalised, then smoothed by a `aliasSigma` Gaussian of
/// 3 taps (5 for the larger grid) with reflected borders, as `cv2.GaussianBlur` does to it.
func defocusKernel(radius: Double, aliasSigma: Double, scale s: Double) -> (kernel: [Float], size: Int) {
    let small = radius <= 8 * s
    let half = small ? Int((8 * s).rounded(.up)) : Int(radius.rounded(.up))
    let size = 2 * half + 1
    var disk = [Float](repeating: 0, count: size * size)
    for y in 0..<size {
        for x in 0..<size {
            let dx = Double(x - half), dy = Double(y - half)
            if dx * dx + dy * dy <= radius * radius { disk[y * size + x] = 1 }
        }
    }
    let total = disk.reduce(0, +)
    disk = disk.map { $0 / total }
    // The 1-D Gaussian OpenCV builds for a positive sigma: exp(−i²/2σ²), normalised.
    let taps = small ? 3 : 5
    var g = (0..<taps).map { Float(exp(-pow(Double($0 - taps / 2), 2) / (2 * aliasSigma * aliasSigma))) }
    let gs = g.reduce(0, +)
    g = g.map { $0 / gs }
    var rows = [Float](repeating: 0, count: size * size)
    for y in 0..<size {
        for x in 0..<size {
            var a: Float = 0
            for t in 0..<taps { a += g[t] * disk[y * size + reflect101(x + t - taps / 2, size)] }
            rows[y * size + x] = a
        }
    }
    var kernel = [Float](repeating: 0, count: size * size)
    for y in 0..<size {
        for x in 0..<size {
            var a: Float = 0
            for t in 0..<taps { a += g[t] * rows[reflect101(y + t - taps / 2, size) * size + x] }
            kernel[y * size + x] = a
        }
    }
    return (kernel, size)
}

func defocusBlurred(_ image: RGBImage, radius: Double, aliasSigma: Double, scale s: Double) -> RGBImage {
    let (kernel, size) = defocusKernel(radius: radius, aliasSigma: aliasSigma, scale: s)
    return filtered(image, kernel: kernel, size: size)
}

/// The motion-blur line: taps i = 0 … 2⌈radius⌉ from the pixel itself along the angle (degrees,
/// counter-clockwise from +x as the image is viewed, so offset (i·cos θ, −i·sin θ)), each rounded
/// to the nearest pixel (⌊v + ½⌋), weighted exp(−i²/2σ²) and normalised. This follows ImageMagick's
/// `-motion-blur radius×sigma+angle`, which the published script calls: a one-sided Gaussian streak
/// of 2·radius + 1 taps; ours samples whole pixels and clamps at the borders (its default "edge" virtual pixels).
func motionKernel(radius: Double, sigma: Double, degrees: Double) -> [(dx: Int, dy: Int, weight: Float)] {
    let width = 2 * Int(radius.rounded(.up)) + 1
    let theta = degrees * Double.pi / 180
    var taps: [(dx: Int, dy: Int, weight: Float)] = []
    var total = 0.0
    for i in 0..<width {
        let wgt = sigma > 0 ? exp(-Double(i * i) / (2 * sigma * sigma)) : (i == 0 ? 1 : 0)
        total += wgt
        taps.append((Int((Double(i) * cos(theta) + 0.5).rounded(.down)), Int((-Double(i) * sin(theta) + 0.5).rounded(.down)), Float(wgt)))
    }
    return taps.map { ($0.dx, $0.dy, Float(Double($0.weight) / total)) }
}

func motionBlurred(_ image: RGBImage, radius: Double, sigma: Double, degrees: Double) -> RGBImage {
    let taps = motionKernel(radius: radius, sigma: sigma, degrees: degrees)
    let w = image.width, h = image.height
    let x = unitFloats(image)
    var out = [Float](repeating: 0, count: x.count)
    x.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            for tap in taps {
                for y in 0..<h {
                    let row = min(max(y + tap.dy, 0), h - 1) * w
                    for cx in 0..<w {
                        let p = (row + min(max(cx + tap.dx, 0), w - 1)) * 3, o = (y * w + cx) * 3
                        dst[o] += tap.weight * src[p]; dst[o + 1] += tap.weight * src[p + 1]; dst[o + 2] += tap.weight * src[p + 2]
                    }
                }
            }
        }
    }
    return truncatedImage(out, width: w, height: h)
}

/// Linear-interpolation taps of the published `clipped_zoom` along one axis of length n: the
/// centred ⌈n/z⌉ crop zoomed by `scipy.ndimage.zoom(order=1)` (output round(crop·z) samples, corners
/// aligned) and the centre n of them kept. Returns each output's two source indices and the weight of the second.
func zoomTaps(length n: Int, factor z: Double) -> [(Int, Int, Float)] {
    let crop = Int((Double(n) / z).rounded(.up))
    let top = (n - crop) / 2
    let zoomed = Int((Double(crop) * z).rounded(.toNearestOrEven))
    let trim = (zoomed - n) / 2
    let ratio = zoomed > 1 ? Double(crop - 1) / Double(zoomed - 1) : 0
    return (0..<n).map { o in
        let c = Double(o + trim) * ratio
        let i0 = min(Int(c.rounded(.down)), crop - 1)
        let i1 = min(i0 + 1, crop - 1)
        return (top + i0, top + i1, Float(c - Double(i0)))
    }
}

/// The mean of the image and its zooms by each factor.
func zoomBlurred(_ image: RGBImage, factors: [Double]) -> RGBImage {
    let w = image.width, h = image.height
    let x = unitFloats(image)
    var sum = [Float](repeating: 0, count: x.count)
    x.withUnsafeBufferPointer { src in
        sum.withUnsafeMutableBufferPointer { dst in
            for z in factors {
                let rows = zoomTaps(length: h, factor: z), cols = zoomTaps(length: w, factor: z)
                for y in 0..<h {
                    let (r0, r1, fy) = rows[y]
                    for cx in 0..<w {
                        let (c0, c1, fx) = cols[cx]
                        let o = (y * w + cx) * 3
                        for c in 0..<3 {
                            let a = src[(r0 * w + c0) * 3 + c], b = src[(r0 * w + c1) * 3 + c]
                            let d = src[(r1 * w + c0) * 3 + c], e = src[(r1 * w + c1) * 3 + c]
                            let top = a + (b - a) * fx, bottom = d + (e - d) * fx
                            dst[o + c] += top + (bottom - top) * fy
                        }
                    }
                }
            }
            let n = Float(factors.count + 1)
            for i in 0..<dst.count { dst[i] = (src[i] + dst[i]) / n }
        }
    }
    return truncatedImage(sum, width: w, height: h)
}

// MARK: - Colour

/// Each pixel through HSV and back (scikit-image's `rgb2hsv` / `hsv2rgb` in double precision).
func hsvMapped(_ image: RGBImage, _ transform: (Double, Double, Double) -> (Double, Double, Double)) -> RGBImage {
    var out = [UInt8](repeating: 0, count: image.pixels.count)
    for p in 0..<image.width * image.height {
        let r = Double(image.pixels[p * 3]) / 255, g = Double(image.pixels[p * 3 + 1]) / 255, b = Double(image.pixels[p * 3 + 2]) / 255
        let v = max(r, g, b), delta = v - min(r, g, b)
        var h = 0.0, s = 0.0
        if delta != 0 {
            s = delta / v
            if b == v { h = 4 + (r - g) / delta } else if g == v { h = 2 + (b - r) / delta } else { h = (g - b) / delta }
            h = h / 6
            h -= h.rounded(.down)
        }
        let (h2, s2, v2) = transform(h, s, v)
        let sector = (h2 * 6).rounded(.down), f = h2 * 6 - sector
        let pp = v2 * (1 - s2), q = v2 * (1 - f * s2), t = v2 * (1 - (1 - f) * s2)
        var k = Int(sector) % 6
        if k < 0 { k += 6 }
        let rgb: (Double, Double, Double)
        switch k {
        case 0: rgb = (v2, t, pp)
        case 1: rgb = (q, v2, pp)
        case 2: rgb = (pp, v2, t)
        case 3: rgb = (pp, q, v2)
        case 4: rgb = (t, pp, v2)
        default: rgb = (v2, pp, q)
        }
        out[p * 3] = truncated8(rgb.0); out[p * 3 + 1] = truncated8(rgb.1); out[p * 3 + 2] = truncated8(rgb.2)
    }
    return RGBImage(width: image.width, height: image.height, pixels: out)
}

/// (x − mean)·c + mean with each channel's mean over the image.
func contrastScaled(_ image: RGBImage, factor c: Double) -> RGBImage {
    var means = [0.0, 0.0, 0.0]
    for i in image.pixels.indices { means[i % 3] += Double(image.pixels[i]) / 255 }
    let n = Double(image.width * image.height)
    means = means.map { $0 / n }
    var out = [UInt8](repeating: 0, count: image.pixels.count)
    for i in out.indices { out[i] = truncated8((Double(image.pixels[i]) / 255 - means[i % 3]) * c + means[i % 3]) }
    return RGBImage(width: image.width, height: image.height, pixels: out)
}

// MARK: - JPEG

extension RGBImage {
    /// The image as a baseline JPEG at `quality` (libjpeg's defaults otherwise: 4:2:0 chroma).
    public func jpegData(quality: Int) throws -> Data {
        var data: UnsafeMutablePointer<UInt8>?
        var length = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = pixels.withUnsafeBufferPointer {
            ssf_encode_jpeg($0.baseAddress!, Int32(width), Int32(height), Int32(quality), &data, &length, &message, message.count)
        }
        guard status == 0, let data else { throw ImageError(path: "<jpeg encoder>", problem: String(cString: message)) }
        defer { ssf_free_pixels(data) }
        return Data(bytes: data, count: length)
    }
}

/// Encoded at `quality` and decoded back.
func jpegRoundTrip(_ image: RGBImage, quality: Int) -> RGBImage {
    do {
        return try RGBImage(encoded: try image.jpegData(quality: quality), path: "<jpeg round trip>")
    } catch {
        // The encoder fails only for sizes the decoders would not have produced.
        preconditionFailure("jpeg_compression: \(error)")
    }
}

// MARK: - Elastic transform

/// Separable Gaussian smoothing of a `width × height` plane as `scipy.ndimage.gaussian_filter`
/// (taps exp(−x²/2σ²) for |x| ≤ ⌊truncate·σ + ½⌋, normalised, `reflect` borders folded as often as
/// the kernel needs), in double precision.
func gaussianSmoothed(_ plane: [Double], width: Int, height: Int, sigma: Double, truncate: Double = 3) -> [Double] {
    guard sigma > 0 else { return plane }
    let radius = Int(truncate * sigma + 0.5)
    var taps = (-radius...radius).map { exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
    let total = taps.reduce(0, +)
    taps = taps.map { $0 / total }
    /// For a line of length n: each output's weights over the n inputs (folded taps summed), and
    /// the range of inputs with a nonzero weight.
    func foldedWeights(_ n: Int) -> (weights: [Double], ranges: [ClosedRange<Int>]) {
        var m = [Double](repeating: 0, count: n * n)
        var ranges: [ClosedRange<Int>] = []
        for o in 0..<n {
            var lo = n - 1, hi = 0
            for (k, t) in taps.enumerated() {
                let j = reflectHalf(o + k - radius, n)
                m[o * n + j] += t
                lo = min(lo, j); hi = max(hi, j)
            }
            ranges.append(lo...hi)
        }
        return (m, ranges)
    }
    let (wx, xRanges) = foldedWeights(width), (wy, yRanges) = foldedWeights(height)
    var rows = [Double](repeating: 0, count: plane.count)
    var out = [Double](repeating: 0, count: plane.count)
    plane.withUnsafeBufferPointer { src in
        wx.withUnsafeBufferPointer { wx in
            rows.withUnsafeMutableBufferPointer { rows in
                for y in 0..<height {
                    for x in 0..<width {
                        var a = 0.0
                        for j in xRanges[x] { a += wx[x * width + j] * src[y * width + j] }
                        rows[y * width + x] = a
                    }
                }
            }
        }
    }
    rows.withUnsafeBufferPointer { rows in
        wy.withUnsafeBufferPointer { wy in
            out.withUnsafeMutableBufferPointer { out in
                for y in 0..<height {
                    for j in yRanges[y] {
                        let wgt = wy[y * height + j]
                        if wgt == 0 { continue }
                        for x in 0..<width { out[y * width + x] += wgt * rows[j * width + x] }
                    }
                }
            }
        }
    }
    return out
}

/// The published elastic transform: a random affine warp (three points jittered by ±`jitter`,
/// bilinear, BORDER_REFLECT_101 as `cv2.warpAffine`), then each pixel resampled (bilinear, `reflect`
/// borders as `scipy.ndimage.map_coordinates(order=1)`) at its position plus `alpha` times the
/// Gaussian-smoothed (σ = `sigma`, truncated at 3σ) uniform displacement fields.
func elasticTransformed(_ image: RGBImage, field: [Float], alpha: Double, sigma: Double, jitter: Double) -> RGBImage {
    let w = image.width, h = image.height
    let x = unitFloats(image)
    // Affine through three points around the centre (x, y), mapped to their jittered copies.
    let cx = Double(w / 2), cy = Double(h / 2), sq = Double(min(w, h) / 3)
    let from = [(cx + sq, cy + sq), (cx + sq, cy - sq), (cx - sq, cy - sq)]
    let to = (0..<3).map { k in (from[k].0 + jitter * Double(field[2 * k]), from[k].1 + jitter * Double(field[2 * k + 1])) }
    // Forward map A·(x, y, 1) = to, solved by Cramer's rule; then its inverse samples the source.
    func solve(_ rhs: [Double]) -> (Double, Double, Double) {
        let (x0, y0) = from[0], (x1, y1) = from[1], (x2, y2) = from[2]
        let det = x0 * (y1 - y2) - y0 * (x1 - x2) + (x1 * y2 - x2 * y1)
        let a = (rhs[0] * (y1 - y2) - y0 * (rhs[1] - rhs[2]) + (rhs[1] * y2 - rhs[2] * y1)) / det
        let b = (x0 * (rhs[1] - rhs[2]) - rhs[0] * (x1 - x2) + (x1 * rhs[2] - x2 * rhs[1])) / det
        let c = (x0 * (y1 * rhs[2] - y2 * rhs[1]) - y0 * (x1 * rhs[2] - x2 * rhs[1]) + rhs[0] * (x1 * y2 - x2 * y1)) / det
        return (a, b, c)
    }
    // Images under 3 pixels on their short side have no triangle (the three points coincide): no affine.
    let degenerate = sq == 0
    let (a, b, c) = degenerate ? (1, 0, 0) : solve(to.map(\.0)), (d, e, f) = degenerate ? (0, 1, 0) : solve(to.map(\.1))
    let det = a * e - b * d
    // A jitter that folds the triangle flat has no inverse; such an image keeps its geometry.
    let invertible = abs(det) > 1e-9
    let ia = invertible ? e / det : 1, ib = invertible ? -b / det : 0, id = invertible ? -d / det : 0, ie = invertible ? a / det : 1
    let ic = invertible ? -(ia * c + ib * f) : 0, iff = invertible ? -(id * c + ie * f) : 0
    var warped = [Float](repeating: 0, count: x.count)
    x.withUnsafeBufferPointer { x in
        warped.withUnsafeMutableBufferPointer { warped in
            for y in 0..<h {
                for cx in 0..<w {
                    let sx = ia * Double(cx) + ib * Double(y) + ic, sy = id * Double(cx) + ie * Double(y) + iff
                    let fx = sx.rounded(.down), fy = sy.rounded(.down)
                    let tx = Float(sx - fx), ty = Float(sy - fy)
                    let x0 = reflect101(Int(fx), w), x1 = reflect101(Int(fx) + 1, w)
                    let y0 = reflect101(Int(fy), h), y1 = reflect101(Int(fy) + 1, h)
                    for ch in 0..<3 {
                        let p00 = x[(y0 * w + x0) * 3 + ch], p01 = x[(y0 * w + x1) * 3 + ch]
                        let p10 = x[(y1 * w + x0) * 3 + ch], p11 = x[(y1 * w + x1) * 3 + ch]
                        let top = p00 + (p01 - p00) * tx, bottom = p10 + (p11 - p10) * tx
                        warped[(y * w + cx) * 3 + ch] = top + (bottom - top) * ty
                    }
                }
            }
        }
    }
    let n = w * h
    let dx = gaussianSmoothed(field[6..<(6 + n)].map(Double.init), width: w, height: h, sigma: sigma).map { Float($0 * alpha) }
    let dy = gaussianSmoothed(field[(6 + n)...].map(Double.init), width: w, height: h, sigma: sigma).map { Float($0 * alpha) }
    var out = [Float](repeating: 0, count: x.count)
    warped.withUnsafeBufferPointer { warped in
        dx.withUnsafeBufferPointer { dx in
            dy.withUnsafeBufferPointer { dy in
                out.withUnsafeMutableBufferPointer { out in
                    for y in 0..<h {
                        for cx in 0..<w {
                            let sx = Double(cx) + Double(dx[y * w + cx]), sy = Double(y) + Double(dy[y * w + cx])
                            let fx = sx.rounded(.down), fy = sy.rounded(.down)
                            let tx = sx - fx, ty = sy - fy
                            let x0 = reflectHalf(Int(fx), w), x1 = reflectHalf(Int(fx) + 1, w)
                            let y0 = reflectHalf(Int(fy), h), y1 = reflectHalf(Int(fy) + 1, h)
                            for ch in 0..<3 {
                                let p00 = Double(warped[(y0 * w + x0) * 3 + ch]), p01 = Double(warped[(y0 * w + x1) * 3 + ch])
                                let p10 = Double(warped[(y1 * w + x0) * 3 + ch]), p11 = Double(warped[(y1 * w + x1) * 3 + ch])
                                out[(y * w + cx) * 3 + ch] = Float((p00 * (1 - tx) + p01 * tx) * (1 - ty) + (p10 * (1 - tx) + p11 * tx) * ty)
                            }
                        }
                    }
                }
            }
        }
    }
    return truncatedImage(out, width: w, height: h)
}

// MARK: - Fog

/// The published fog's height map: a 256 × 256 plasma fractal (diamond-square on a torus).
enum FogMap {
    static let side = 256

    /// Diamond-square with the published recurrence: cell (0, 0) is 0; each new cell is the mean of
    /// its four neighbours plus wibble² · u (its uniform in [−1, 1)), wibble starting at 100 and
    /// divided by `decay` after each halving of the step; the result is scaled to [0, 1].
    static func plasma(uniforms u: [Float], decay: Double) -> [Double] {
        let n = side
        var m = [Double](repeating: 0, count: n * n)
        var step = n
        var wibble = 100.0
        @inline(__always) func at(_ r: Int, _ c: Int) -> Double { m[((r + n) % n) * n + (c + n) % n] }
        while step >= 2 {
            let half = step / 2
            // Squares: the centre of each step × step square from its four corners.
            for r in stride(from: half, to: n, by: step) {
                for c in stride(from: half, to: n, by: step) {
                    let sum = at(r - half, c - half) + at(r - half, c + half) + at(r + half, c - half) + at(r + half, c + half)
                    m[r * n + c] = sum / 4 + wibble * wibble * Double(u[r * n + c])
                }
            }
            // Diamonds: the edge midpoints from the two corners and two centres beside them.
            for r in stride(from: 0, to: n, by: step) {
                for c in stride(from: half, to: n, by: step) {
                    let sum = at(r - half, c) + at(r + half, c) + at(r, c - half) + at(r, c + half)
                    m[r * n + c] = sum / 4 + wibble * wibble * Double(u[r * n + c])
                }
            }
            for r in stride(from: half, to: n, by: step) {
                for c in stride(from: 0, to: n, by: step) {
                    let sum = at(r - half, c) + at(r + half, c) + at(r, c - half) + at(r, c + half)
                    m[r * n + c] = sum / 4 + wibble * wibble * Double(u[r * n + c])
                }
            }
            step /= 2
            wibble /= decay
        }
        let low = m.min()!
        m = m.map { $0 - low }
        let high = m.max()!
        return high > 0 ? m.map { $0 / high } : m
    }
}

/// x + t·map, rescaled by max/(max + t): the map's top-left 224 × 224 cells (the published crop) scaled
/// to the image by s, sampled bilinearly at ((x + ½)/s − ½, (y + ½)/s − ½), wrapping around the torus.
func fogged(_ image: RGBImage, uniforms: [Float], thickness t: Double, decay: Double, scale s: Double) -> RGBImage {
    let map = FogMap.plasma(uniforms: uniforms, decay: decay)
    let n = FogMap.side, w = image.width, h = image.height
    func taps(_ count: Int) -> [(Int, Int, Double)] {
        (0..<count).map { i in
            let c = (Double(i) + 0.5) / s - 0.5, f = c.rounded(.down)
            let i0 = ((Int(f) % n) + n) % n
            return (i0, (i0 + 1) % n, c - f)
        }
    }
    let rows = taps(h), cols = taps(w)
    let maxValue = Double(image.pixels.max() ?? 0) / 255
    let gain = maxValue / (maxValue + t)
    var out = [Float](repeating: 0, count: image.pixels.count)
    for y in 0..<h {
        let (r0, r1, fy) = rows[y]
        for x in 0..<w {
            let (c0, c1, fx) = cols[x]
            let top = map[r0 * n + c0] * (1 - fx) + map[r0 * n + c1] * fx
            let bottom = map[r1 * n + c0] * (1 - fx) + map[r1 * n + c1] * fx
            let fogValue = t * (top * (1 - fy) + bottom * fy)
            for c in 0..<3 {
                let o = (y * w + x) * 3 + c
                out[o] = Float((Double(image.pixels[o]) / 255 + fogValue) * gain)
            }
        }
    }
    return truncatedImage(out, width: w, height: h)
}
