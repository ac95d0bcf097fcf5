// Image resampling with Pillow's semantics (antialiased convolution resize, 8-bit fixed point).

/// Resampling filters, as Pillow defines them.
public enum ResampleFilter: Sendable {
    case bilinear, bicubic
    /// Pillow's BOX: each output pixel averages the input pixels its footprint covers.
    case box

    var support: Double {
        switch self {
        case .box: return 0.5
        case .bilinear: return 1
        case .bicubic: return 2
        }
    }

    func weight(_ t: Double) -> Double {
        let x = abs(t)
        switch self {
        case .box:
            // Pillow's box_filter: 1 on (−0.5, 0.5], so neighbouring footprints share no edge.
            return t > -0.5 && t <= 0.5 ? 1 : 0
        case .bilinear:
            return x < 1 ? 1 - x : 0
        case .bicubic:
            let a = -0.5
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        }
    }
}

/// Fixed-point filter taps for one axis: for each output position, the first input index and
/// the weights scaled by 2²² (Pillow's precision for 8-bit images).
private struct Taps {
    var start: [Int] = []
    var weights: [[Int32]] = []

    static let precisionBits = 22

    init(inputSize: Int, outputSize: Int, filter: ResampleFilter) {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        for out in 0..<outputSize {
            let center = (Double(out) + 0.5) * scale
            let lo = max(Int(center - support + 0.5), 0)
            let hi = min(Int(center + support + 0.5), inputSize)
            var w = (lo..<hi).map { filter.weight((Double($0) - center + 0.5) / filterScale) }
            let total = w.reduce(0, +)
            if total != 0 { w = w.map { $0 / total } }
            let unit = Double(1 << Taps.precisionBits)
            start.append(lo)
            weights.append(w.map { Int32($0 < 0 ? $0 * unit - 0.5 : $0 * unit + 0.5) })
        }
    }
}

@inline(__always) private func clip8(_ v: Int64) -> UInt8 {
    let shifted = v >> Int64(Taps.precisionBits)
    return UInt8(clamping: shifted)
}

extension RGBImage {
    /// The image resized to `width × height` as Pillow's `Image.resize` does for RGB images
    /// (horizontal pass, then vertical, each rounded to 8 bits; antialiased when shrinking).
    public func resized(width newWidth: Int, height newHeight: Int, filter: ResampleFilter) -> RGBImage {
        precondition(newWidth > 0 && newHeight > 0, "resize to \(newWidth)×\(newHeight)")
        var current = self
        if newWidth != width {
            let taps = Taps(inputSize: width, outputSize: newWidth, filter: filter)
            var out = [UInt8](repeating: 0, count: newWidth * height * 3)
            pixels.withUnsafeBufferPointer { src in
                for y in 0..<height {
                    let row = y * width * 3
                    for x in 0..<newWidth {
                        let s = taps.start[x], ws = taps.weights[x]
                        var acc: (Int64, Int64, Int64) = (1 << 21, 1 << 21, 1 << 21)
                        for (k, w) in ws.enumerated() {
                            let p = row + (s + k) * 3
                            acc.0 += Int64(src[p]) * Int64(w)
                            acc.1 += Int64(src[p + 1]) * Int64(w)
                            acc.2 += Int64(src[p + 2]) * Int64(w)
                        }
                        let o = (y * newWidth + x) * 3
                        out[o] = clip8(acc.0); out[o + 1] = clip8(acc.1); out[o + 2] = clip8(acc.2)
                    }
                }
            }
            current = RGBImage(width: newWidth, height: height, pixels: out)
        }
        if newHeight != height {
            let taps = Taps(inputSize: height, outputSize: newHeight, filter: filter)
            let w3 = current.width * 3
            var out = [UInt8](repeating: 0, count: newHeight * w3)
            current.pixels.withUnsafeBufferPointer { src in
                for y in 0..<newHeight {
                    let s = taps.start[y], ws = taps.weights[y]
                    for i in 0..<w3 {
                        var acc: Int64 = 1 << 21
                        for (k, w) in ws.enumerated() { acc += Int64(src[(s + k) * w3 + i]) * Int64(w) }
                        out[y * w3 + i] = clip8(acc)
                    }
                }
            }
            current = RGBImage(width: current.width, height: newHeight, pixels: out)
        }
        return current
    }

    /// The `width × height` region whose top-left corner is at (`x`, `y`); parts outside the
    /// image are black.
    public func cropped(x: Int, y: Int, width cw: Int, height ch: Int) -> RGBImage {
        var out = [UInt8](repeating: 0, count: cw * ch * 3)
        for r in 0..<ch where y + r >= 0 && y + r < height {
            for c in 0..<cw where x + c >= 0 && x + c < width {
                let s = ((y + r) * width + x + c) * 3, d = (r * cw + c) * 3
                out[d] = pixels[s]; out[d + 1] = pixels[s + 1]; out[d + 2] = pixels[s + 2]
            }
        }
        return RGBImage(width: cw, height: ch, pixels: out)
    }

    /// Center crop as torchvision's `CenterCrop` (offsets rounded half to even, as Python's `round`).
    public func centerCropped(width cw: Int, height ch: Int) -> RGBImage {
        let x = Int((Double(width - cw) / 2).rounded(.toNearestOrEven)), y = Int((Double(height - ch) / 2).rounded(.toNearestOrEven))
        return cropped(x: x, y: y, width: cw, height: ch)
    }
}
