// Per-sample transforms producing normalised tensors: timm's training pipeline, VTAB's direct
// resize, and the evaluation transform, behind one protocol the loader drives.
import Foundation
import SSFEngine

/// Turns a decoded image into a `[3, H, W]` tensor, drawing any randomness from `rng`.
public protocol SampleTransform: Sendable {
    func callAsFunction(_ image: RGBImage, using rng: inout RandomGenerator) -> Tensor
    /// The shorter side below which a source image would lose detail this transform keeps (nil:
    /// any reduction could); a loader with reduced decoding decodes no smaller.
    var minimumSourceSide: Int? { get }
}

extension SampleTransform {
    public var minimumSourceSide: Int? { nil }
}

/// timm's `transforms_imagenet_train`: random-resized crop, horizontal flip, optional
/// RandAugment, normalisation, optional random erasing.
public struct TrainTransform: SampleTransform {
    public var crop: RandomResizedCrop
    public var flipProbability: Double
    public var randAugment: RandAugment?
    public var mean: [Float]
    public var std: [Float]
    public var erasing: RandomErasing?

    public init(crop: RandomResizedCrop, flipProbability: Double = 0.5, randAugment: RandAugment? = nil,
                mean: [Float], std: [Float], erasing: RandomErasing? = nil) {
        self.crop = crop; self.flipProbability = flipProbability; self.randAugment = randAugment
        self.mean = mean; self.std = std; self.erasing = erasing
    }

    /// The smallest crop (scale_min of the area) still at the output size.
    public var minimumSourceSide: Int? { Int((Double(crop.size) / crop.scale.lowerBound.squareRoot()).rounded(.up)) }

    public func callAsFunction(_ image: RGBImage, using rng: inout RandomGenerator) -> Tensor {
        var img = crop(image, using: &rng)
        if rng.uniform(0, 1) < flipProbability { img = img.flippedHorizontally() }
        if let randAugment { img = randAugment(img, using: &rng) }
        var t = normalizedTensor(img, mean: mean, std: std)
        erasing?(&t, using: &rng)
        return t
    }
}

/// Training without random geometry: a fixed resize (timm's no-aug: the shorter side to `size`, then a
/// `size × size` center crop; or VTAB's direct resize), then a horizontal flip with `flipProbability`
/// (0: none, and no draw). With no flip every epoch sees the same tensors, so a frozen backbone's
/// features can be computed once; with a flip, once per orientation.
public struct FixedGeometryTransform: SampleTransform {
    public var size: Int
    public var filter: ResampleFilter
    /// VTAB's aspect-changing resize instead of resize + center crop.
    public var directResize: Bool
    public var flipProbability: Double
    public var mean: [Float]
    public var std: [Float]

    public init(size: Int, filter: ResampleFilter, directResize: Bool, flipProbability: Double, mean: [Float], std: [Float]) {
        self.size = size; self.filter = filter; self.directResize = directResize; self.flipProbability = flipProbability
        self.mean = mean; self.std = std
    }

    public var minimumSourceSide: Int? { size }

    /// The image before any flip.
    public func geometry(_ image: RGBImage) -> RGBImage {
        if directResize {
            return image.width == size && image.height == size ? image : image.resized(width: size, height: size, filter: filter)
        }
        return EvalTransform(imageSize: size, cropFraction: 1, filter: filter, mean: mean, std: std).resizeAndCrop(image)
    }

    /// Whether the sample whose generator is `rng` is flipped (the transform's only draw).
    public func flips(using rng: inout RandomGenerator) -> Bool {
        flipProbability > 0 && rng.uniform(0, 1) < flipProbability
    }

    /// The tensor of one orientation.
    public func tensor(_ image: RGBImage, flipped: Bool) -> Tensor {
        let fixed = geometry(image)
        return normalizedTensor(flipped ? fixed.flippedHorizontally() : fixed, mean: mean, std: std)
    }

    public func callAsFunction(_ image: RGBImage, using rng: inout RandomGenerator) -> Tensor {
        tensor(image, flipped: flips(using: &rng))
    }
}

/// VTAB-1k's preprocessing in the SSF reference: a direct (aspect-changing) resize to
/// `size × size`, bicubic by default, then normalisation.
public struct DirectResizeTransform: SampleTransform {
    public var size: Int
    public var filter: ResampleFilter
    public var mean: [Float]
    public var std: [Float]

    public init(size: Int = 224, filter: ResampleFilter = .bicubic, mean: [Float], std: [Float]) {
        self.size = size; self.filter = filter; self.mean = mean; self.std = std
    }

    public var minimumSourceSide: Int? { size }

    public func callAsFunction(_ image: RGBImage, using rng: inout RandomGenerator) -> Tensor {
        let resized = image.width == size && image.height == size ? image : image.resized(width: size, height: size, filter: filter)
        return normalizedTensor(resized, mean: mean, std: std)
    }
}

extension EvalTransform: SampleTransform {
    public func callAsFunction(_ image: RGBImage, using rng: inout RandomGenerator) -> Tensor { self(image) }
    /// The resize target of the shorter side.
    public var minimumSourceSide: Int? { Int((Float(imageSize) / cropFraction).rounded(.down)) }
}
