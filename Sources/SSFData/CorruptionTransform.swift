// The evaluation transform with a corruption between the geometry and the normalisation: what
// `ssf eval --corruption` and `ssf robustness` feed the model.
import SSFEngine

/// Evaluation geometry (timm's resize + center crop, or VTAB's direct resize), then a corruption
/// at a severity, then `normalizedTensor`. The corruption's random field comes from the loader's
/// per-sample generator, so a run is reproducible under its seed.
public struct CorruptionTransform: SampleTransform {
    /// How the image is brought to the model's input size before it is corrupted.
    public enum Geometry: Sendable {
        case resizeAndCrop(EvalTransform)
        case directResize(size: Int, filter: ResampleFilter)
    }

    public var geometry: Geometry
    public var corruption: CorruptionSpec
    public var mean: [Float]
    public var std: [Float]

    public init(geometry: Geometry, corruption: CorruptionSpec, mean: [Float], std: [Float]) {
        self.geometry = geometry; self.corruption = corruption; self.mean = mean; self.std = std
    }

    /// The geometry and the corruption, before normalisation.
    public func corruptedImage(_ image: RGBImage, using rng: inout RandomGenerator) -> RGBImage {
        let sized: RGBImage
        switch geometry {
        case .resizeAndCrop(let eval):
            sized = eval.resizeAndCrop(image)
        case .directResize(let size, let filter):
            sized = image.width == size && image.height == size ? image : image.resized(width: size, height: size, filter: filter)
        }
        return corruption(sized, using: &rng)
    }

    public func callAsFunction(_ image: RGBImage, using rng: inout RandomGenerator) -> Tensor {
        normalizedTensor(corruptedImage(image, using: &rng), mean: mean, std: std)
    }
}
