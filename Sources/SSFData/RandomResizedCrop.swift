// torchvision's RandomResizedCrop box sampling and the crop-then-resize it applies.
import Foundation
import SSFEngine

/// A crop box in pixels: top-left corner and size.
public struct CropBox: Sendable, Equatable {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) { self.x = x; self.y = y; self.width = width; self.height = height }
}

/// torchvision's `RandomResizedCrop`: a box of random area fraction and log-uniform aspect ratio
/// (10 attempts, then a centre crop clamped to the ratio range), resized to `size × size`.
public struct RandomResizedCrop: Sendable {
    public var size: Int
    public var scale: ClosedRange<Double>
    public var ratio: ClosedRange<Double>
    public var filter: ResampleFilter

    public init(size: Int, scale: ClosedRange<Double> = 0.08...1, ratio: ClosedRange<Double> = 0.75...(4.0 / 3), filter: ResampleFilter = .bilinear) {
        self.size = size; self.scale = scale; self.ratio = ratio; self.filter = filter
    }

    /// The box for an image of `width × height`, as torchvision's `get_params` chooses it
    /// (sizes rounded half to even, as Python's `round`).
    public func box(width: Int, height: Int, using rng: inout RandomGenerator) -> CropBox {
        let area = Double(width * height)
        for _ in 0..<10 {
            let target = area * rng.uniform(scale.lowerBound, scale.upperBound)
            let aspect = exp(rng.uniform(log(ratio.lowerBound), log(ratio.upperBound)))
            let w = Int((target * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((target / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0, h > 0, w <= width, h <= height {
                let y = rng.integer(0, height - h), x = rng.integer(0, width - w)
                return CropBox(x: x, y: y, width: w, height: h)
            }
        }
        return fallbackBox(width: width, height: height)
    }

    /// The centre box torchvision falls back to: the whole image, narrowed to the ratio range.
    public func fallbackBox(width: Int, height: Int) -> CropBox {
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < ratio.lowerBound {
            h = Int((Double(w) / ratio.lowerBound).rounded(.toNearestOrEven))
        } else if inRatio > ratio.upperBound {
            w = Int((Double(h) * ratio.upperBound).rounded(.toNearestOrEven))
        }
        return CropBox(x: (width - w) / 2, y: (height - h) / 2, width: w, height: h)
    }

    /// The image cropped to `box` and resized to `size × size` (Pillow's resize).
    public func apply(_ image: RGBImage, box: CropBox) -> RGBImage {
        image.cropped(x: box.x, y: box.y, width: box.width, height: box.height).resized(width: size, height: size, filter: filter)
    }

    /// A random box, cropped and resized.
    public func callAsFunction(_ image: RGBImage, using rng: inout RandomGenerator) -> RGBImage {
        apply(image, box: box(width: image.width, height: image.height, using: &rng))
    }
}
