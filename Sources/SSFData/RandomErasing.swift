// timm's RandomErasing on a normalised CHW tensor, 'pixel' mode (per-pixel normal noise) or 'const' (zeros).
import Foundation
import SSFEngine

/// timm's `RandomErasing`: with probability `probability`, up to `maxCount` rectangles of area
/// fraction in `area` and log-uniform aspect ratio in `aspect` are replaced by noise.
public struct RandomErasing: Sendable {
    /// What erased pixels become.
    public enum Mode: String, Sendable {
        /// An independent standard normal value per pixel and channel.
        case pixel
        /// A normal value per channel.
        case rand
        /// Zero.
        case const
    }

    public var probability: Double
    public var mode: Mode
    public var area: ClosedRange<Double>
    public var aspect: ClosedRange<Double>
    public var minCount: Int
    public var maxCount: Int

    public init(probability: Double, mode: Mode = .pixel, area: ClosedRange<Double> = 0.02...(1.0 / 3),
                minAspect: Double = 0.3, minCount: Int = 1, maxCount: Int = 1) {
        self.probability = probability; self.mode = mode; self.area = area
        self.aspect = min(minAspect, 1 / minAspect)...max(minAspect, 1 / minAspect)
        self.minCount = minCount; self.maxCount = maxCount
    }

    /// The boxes one call would erase in a `height × width` image (up to 10 attempts each).
    public func boxes(height: Int, width: Int, using rng: inout RandomGenerator) -> [CropBox] {
        guard rng.uniform(0, 1) < probability else { return [] }
        let count = minCount == maxCount ? minCount : rng.integer(minCount, maxCount)
        let total = Double(height * width)
        var result: [CropBox] = []
        for _ in 0..<count {
            for _ in 0..<10 {
                let target = rng.uniform(area.lowerBound, area.upperBound) * total / Double(count)
                let ratio = exp(rng.uniform(log(aspect.lowerBound), log(aspect.upperBound)))
                let h = Int((target * ratio).squareRoot().rounded(.toNearestOrEven))
                let w = Int((target / ratio).squareRoot().rounded(.toNearestOrEven))
                if w < width && h < height {
                    let top = rng.integer(0, height - h), left = rng.integer(0, width - w)
                    result.append(CropBox(x: left, y: top, width: w, height: h))
                    break
                }
            }
        }
        return result
    }

    /// Erases random boxes of a `[C, H, W]` tensor in place.
    public func callAsFunction(_ tensor: inout Tensor, using rng: inout RandomGenerator) {
        let (c, h, w) = (tensor.shape[0], tensor.shape[1], tensor.shape[2])
        for box in boxes(height: h, width: w, using: &rng) {
            let channelValues = (0..<c).map { _ in rng.nextNormal() }
            let p = tensor.mutablePointer()
            for ch in 0..<c {
                for y in box.y..<(box.y + box.height) {
                    for x in box.x..<(box.x + box.width) {
                        p[(ch * h + y) * w + x] = mode == .pixel ? rng.nextNormal() : mode == .rand ? channelValues[ch] : 0
                    }
                }
            }
        }
    }
}
