// timm's RandAugment: the config string (`rand-m9-mstd0.5-inc1`), its op list and magnitude rules.
import Foundation
import SSFEngine

/// RandAugment as timm implements it: `layers` ops drawn with replacement, each applied with
/// probability `probability` at a magnitude drawn around `magnitude` (out of 10).
public struct RandAugment: Sendable {
    /// The ops timm's RandAugment chooses from.
    public enum Op: String, Sendable, CaseIterable {
        case autoContrast = "AutoContrast", equalize = "Equalize", invert = "Invert", rotate = "Rotate"
        case posterize = "Posterize", posterizeIncreasing = "PosterizeIncreasing"
        case solarize = "Solarize", solarizeIncreasing = "SolarizeIncreasing", solarizeAdd = "SolarizeAdd"
        case color = "Color", colorIncreasing = "ColorIncreasing", contrast = "Contrast", contrastIncreasing = "ContrastIncreasing"
        case brightness = "Brightness", brightnessIncreasing = "BrightnessIncreasing"
        case sharpness = "Sharpness", sharpnessIncreasing = "SharpnessIncreasing"
        case shearX = "ShearX", shearY = "ShearY", translateXRel = "TranslateXRel", translateYRel = "TranslateYRel"
    }

    /// timm's `_RAND_TRANSFORMS`.
    public static let standardOps: [Op] = [.autoContrast, .equalize, .invert, .rotate, .posterize, .solarize, .solarizeAdd,
                                           .color, .contrast, .brightness, .sharpness, .shearX, .shearY, .translateXRel, .translateYRel]
    /// timm's `_RAND_INCREASING_TRANSFORMS` (selected by `inc1`).
    public static let increasingOps: [Op] = [.autoContrast, .equalize, .invert, .rotate, .posterizeIncreasing, .solarizeIncreasing,
                                             .solarizeAdd, .colorIncreasing, .contrastIncreasing, .brightnessIncreasing,
                                             .sharpnessIncreasing, .shearX, .shearY, .translateXRel, .translateYRel]

    public var ops: [Op]
    public var magnitude: Double
    /// Standard deviation of the per-application magnitude; infinity means uniform in [0, magnitude].
    public var magnitudeStd: Double
    public var magnitudeMax: Double
    public var layers: Int
    public var probability: Double
    /// Fill for pixels a geometric op uncovers (timm: the dataset mean × 255, or 128).
    public var fill: [UInt8]
    /// Resampling of the geometric ops (timm passes the training interpolation here).
    public var filter: WarpFilter
    /// Maximum relative translation (timm's `translate_pct`).
    public var translatePercent: Double = 0.45

    /// Parses a timm config string: `rand` then `-`-separated `m<int>`, `n<int>`, `mstd<float>`,
    /// `mmax<float>`, `inc<0|1>`, `p<float>`.
    public init(config: String, fill: [UInt8] = [128, 128, 128], filter: WarpFilter = .bilinear) throws {
        let sections = config.split(separator: "-").map(String.init)
        guard sections.first == "rand" else {
            throw DatasetError(path: config, problem: "a RandAugment config starts with \"rand\"")
        }
        ops = Self.standardOps; magnitude = 10; magnitudeStd = 0; magnitudeMax = 10; layers = 2; probability = 0.5
        self.fill = fill; self.filter = filter
        for section in sections.dropFirst() {
            guard let digit = section.firstIndex(where: { $0.isNumber }) else {
                throw DatasetError(path: config, problem: "RandAugment section \"\(section)\" has no value")
            }
            let key = String(section[..<digit]), text = String(section[digit...])
            guard let value = Double(text) else { throw DatasetError(path: config, problem: "bad value in \"\(section)\"") }
            switch key {
            case "m": magnitude = value
            case "n": layers = Int(value)
            case "mstd": magnitudeStd = value > 100 ? .infinity : value
            case "mmax": magnitudeMax = value
            case "inc": ops = value != 0 ? Self.increasingOps : Self.standardOps
            case "p": probability = value
            default: throw DatasetError(path: config, problem: "unknown RandAugment section \"\(section)\"")
            }
        }
    }

    /// Applies the augmentation: `layers` ops drawn with replacement, each gated by `probability`.
    public func callAsFunction(_ image: RGBImage, using rng: inout RandomGenerator) -> RGBImage {
        var image = image
        let chosen = (0..<layers).map { _ in ops[rng.integer(0, ops.count - 1)] }
        for op in chosen {
            guard rng.uniform(0, 1) <= probability else { continue }
            var m = magnitude
            if magnitudeStd == .infinity { m = rng.uniform(0, m) } else if magnitudeStd > 0 { m = rng.gaussian(m, magnitudeStd) }
            m = max(0, min(m, magnitudeMax))
            let sign: Double = rng.uniform(0, 1) > 0.5 ? -1 : 1
            image = apply(op, magnitude: m, sign: sign, to: image)
        }
        return image
    }

    /// One op at magnitude `m` (0…10); `sign` is the random negation timm applies to signed levels.
    public func apply(_ op: Op, magnitude m: Double, sign: Double, to image: RGBImage) -> RGBImage {
        let level = m / 10
        let enhance = Float(1.8 * level + 0.1), enhanceIncreasing = Float(max(0.1, 1 + sign * 0.9 * level))
        switch op {
        case .autoContrast: return image.autocontrasted()
        case .equalize: return image.equalized()
        case .invert: return image.inverted()
        case .rotate: return image.rotated(degrees: sign * 30 * level, filter: filter, fill: fill)
        case .posterize: return image.posterized(bits: Int(level * 4))
        case .posterizeIncreasing: return image.posterized(bits: 4 - Int(level * 4))
        case .solarize: return image.solarized(threshold: min(256, Int(level * 256)))
        case .solarizeIncreasing: return image.solarized(threshold: 256 - min(256, Int(level * 256)))
        case .solarizeAdd: return image.solarizeAdded(min(128, Int(level * 110)))
        case .color: return image.colorEnhanced(enhance)
        case .colorIncreasing: return image.colorEnhanced(enhanceIncreasing)
        case .contrast: return image.contrastEnhanced(enhance)
        case .contrastIncreasing: return image.contrastEnhanced(enhanceIncreasing)
        case .brightness: return image.brightnessEnhanced(enhance)
        case .brightnessIncreasing: return image.brightnessEnhanced(enhanceIncreasing)
        case .sharpness: return image.sharpnessEnhanced(enhance)
        case .sharpnessIncreasing: return image.sharpnessEnhanced(enhanceIncreasing)
        case .shearX: return image.affineWarped([1, sign * 0.3 * level, 0, 0, 1, 0], filter: filter, fill: fill)
        case .shearY: return image.affineWarped([1, 0, 0, sign * 0.3 * level, 1, 0], filter: filter, fill: fill)
        case .translateXRel:
            return image.affineWarped([1, 0, sign * translatePercent * level * Double(image.width), 0, 1, 0], filter: filter, fill: fill)
        case .translateYRel:
            return image.affineWarped([1, 0, 0, 0, 1, sign * translatePercent * level * Double(image.height)], filter: filter, fill: fill)
        }
    }
}
