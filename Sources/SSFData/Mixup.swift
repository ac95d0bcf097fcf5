// timm's Mixup/CutMix in batch mode: one λ per batch, partner = the batch reversed, smoothed one-hot targets.
import Foundation
import SSFEngine

/// timm's `Mixup` (mode 'batch'): with probability `probability` a batch is mixed, by CutMix
/// with probability `switchProbability` when both alphas are positive; λ ~ Beta(α, α).
/// Targets are λ·onehot(y) + (1 − λ)·onehot(flip(y)), each smoothed by `labelSmoothing`.
public struct Mixup: Sendable {
    public var mixupAlpha: Double
    public var cutmixAlpha: Double
    public var probability: Double
    public var switchProbability: Double
    public var labelSmoothing: Float
    public var classCount: Int
    /// Recompute λ from the clipped CutMix box area (timm's `correct_lam`).
    public var correctLambda: Bool = true

    public init(mixupAlpha: Double = 0.8, cutmixAlpha: Double = 1, probability: Double = 1, switchProbability: Double = 0.5,
                labelSmoothing: Float = 0.1, classCount: Int) {
        self.mixupAlpha = mixupAlpha; self.cutmixAlpha = cutmixAlpha; self.probability = probability
        self.switchProbability = switchProbability; self.labelSmoothing = labelSmoothing; self.classCount = classCount
    }

    /// What one batch gets: λ, whether it is CutMix, and the CutMix box centre (row, column).
    public struct Decision: Sendable, Equatable {
        public var lambda: Double
        public var cutmix: Bool
        public var center: (y: Int, x: Int)
        public init(lambda: Double, cutmix: Bool, center: (y: Int, x: Int) = (0, 0)) {
            self.lambda = lambda; self.cutmix = cutmix; self.center = center
        }
        public static func == (a: Decision, b: Decision) -> Bool {
            a.lambda == b.lambda && a.cutmix == b.cutmix && a.center == b.center
        }
    }

    /// timm's `_params_per_batch`, plus the CutMix centre drawn uniformly over a `height × width` image.
    public func decide(height: Int, width: Int, using rng: inout RandomGenerator) -> Decision {
        guard rng.uniform(0, 1) < probability, mixupAlpha > 0 || cutmixAlpha > 0 else { return Decision(lambda: 1, cutmix: false) }
        let cut = mixupAlpha > 0 && cutmixAlpha > 0 ? rng.uniform(0, 1) < switchProbability : cutmixAlpha > 0
        let lambda = rng.beta(cut ? cutmixAlpha : mixupAlpha)
        return Decision(lambda: lambda, cutmix: cut, center: cut ? (rng.integer(0, height - 1), rng.integer(0, width - 1)) : (0, 0))
    }

    /// timm's `rand_bbox` for λ and centre (cy, cx): a box of ⌊H·√(1−λ)⌋ × ⌊W·√(1−λ)⌋ about the
    /// centre, clipped to the image, as (y0, y1, x0, x1), and λ corrected to 1 − box area / image area.
    public func cutmixBox(height: Int, width: Int, lambda: Double, centerY: Int, centerX: Int) -> (box: (Int, Int, Int, Int), lambda: Double) {
        let ratio = (1 - lambda).squareRoot()
        let cutH = Int(Double(height) * ratio), cutW = Int(Double(width) * ratio)
        let y0 = min(max(centerY - cutH / 2, 0), height), y1 = min(max(centerY + cutH / 2, 0), height)
        let x0 = min(max(centerX - cutW / 2, 0), width), x1 = min(max(centerX + cutW / 2, 0), width)
        let corrected = correctLambda ? 1 - Double((y1 - y0) * (x1 - x0)) / Double(height * width) : lambda
        return ((y0, y1, x0, x1), corrected)
    }

    /// Smoothed one-hot targets mixed with the reversed batch's: `[N, classCount]`.
    public func targets(labels: [Int], lambda: Double) -> Tensor {
        let n = labels.count, off = labelSmoothing / Float(classCount), on = 1 - labelSmoothing + off
        let lam = Float(lambda)
        var t = Tensor(shape: [n, classCount], repeating: off)
        let p = t.mutablePointer()
        for i in 0..<n {
            p[i * classCount + labels[i]] += (on - off) * lam
            p[i * classCount + labels[n - 1 - i]] += (on - off) * (1 - lam)
        }
        return t
    }

    /// Mixes a `[N, C, H, W]` batch in place with its reverse for a decided λ (CutMix pastes
    /// the partner's box, MixUp blends λ·x + (1 − λ)·partner) and returns the soft targets.
    public func apply(_ decision: Decision, images: inout Tensor, labels: [Int]) -> Tensor {
        guard decision.lambda < 1 else { return targets(labels: labels, lambda: 1) }
        let (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        let source = images.scalars, plane = c * h * w
        let p = images.mutablePointer()
        var lambda = decision.lambda
        if decision.cutmix {
            let (box, corrected) = cutmixBox(height: h, width: w, lambda: lambda, centerY: decision.center.y, centerX: decision.center.x)
            lambda = corrected
            for i in 0..<n {
                let partner = (n - 1 - i) * plane
                for ch in 0..<c {
                    for y in box.0..<box.1 {
                        for x in box.2..<box.3 { p[i * plane + (ch * h + y) * w + x] = source[partner + (ch * h + y) * w + x] }
                    }
                }
            }
        } else {
            let lam = Float(lambda)
            for i in 0..<n {
                let partner = (n - 1 - i) * plane
                for k in 0..<plane { p[i * plane + k] = source[i * plane + k] * lam + source[partner + k] * (1 - lam) }
            }
        }
        return targets(labels: labels, lambda: lambda)
    }
}
