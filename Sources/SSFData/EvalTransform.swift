// Evaluation preprocessing as timm does it: resize the shorter side, center crop, normalise.
import SSFEngine

/// Turns images into normalised `[3, H, W]` tensors the way timm's evaluation transform does.
public struct EvalTransform: Sendable {
    public var imageSize: Int
    public var cropFraction: Float
    public var filter: ResampleFilter
    public var mean: [Float]
    public var std: [Float]

    public init(imageSize: Int, cropFraction: Float, filter: ResampleFilter, mean: [Float], std: [Float]) {
        self.imageSize = imageSize; self.cropFraction = cropFraction; self.filter = filter
        self.mean = mean; self.std = std
    }

    /// Shorter side resized to ⌊size / cropFraction⌋ keeping the aspect ratio, then a
    /// size × size center crop.
    public func resizeAndCrop(_ image: RGBImage) -> RGBImage {
        let scaleSize = Int((Float(imageSize) / cropFraction).rounded(.down))
        let (w, h): (Int, Int)
        if image.width <= image.height {
            w = scaleSize
            h = Int(Double(scaleSize) * Double(image.height) / Double(image.width))
        } else {
            h = scaleSize
            w = Int(Double(scaleSize) * Double(image.width) / Double(image.height))
        }
        let resized = (w == image.width && h == image.height) ? image : image.resized(width: w, height: h, filter: filter)
        return resized.centerCropped(width: imageSize, height: imageSize)
    }

    /// The processed image as a `[3, size, size]` tensor: pixels / 255, minus mean, over std.
    public func callAsFunction(_ image: RGBImage) -> Tensor {
        normalizedTensor(resizeAndCrop(image), mean: mean, std: std)
    }
}

/// An RGB image as a CHW tensor with `(pixel / 255 − mean[c]) / std[c]`.
public func normalizedTensor(_ image: RGBImage, mean: [Float], std: [Float]) -> Tensor {
    let plane = image.width * image.height
    var t = Tensor(uninitializedShape: [3, image.height, image.width])
    let p = t.mutablePointer()
    image.pixels.withUnsafeBufferPointer { px in
        for c in 0..<3 {
            let scale = 1 / (255 * std[c]), offset = -mean[c] / std[c]
            for i in 0..<plane { p[c * plane + i] = Float(px[i * 3 + c]) * scale + offset }
        }
    }
    return t
}
