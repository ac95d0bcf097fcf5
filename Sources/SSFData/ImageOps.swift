// Pillow-semantics image operations used by RandAugment: lookup-table colour ops, enhancement
// blends, the 3×3 smoothing filter, affine warps (nearest/bilinear/bicubic, constant fill) and flips.
import Foundation

/// How an affine warp samples the source image.
public enum WarpFilter: Sendable {
    case nearest, bilinear, bicubic
}

/// Pillow's cubic through four samples at fractional position `d` (its a = −1 kernel).
@inline(__always) private func cubic(_ v1: Double, _ v2: Double, _ v3: Double, _ v4: Double, _ d: Double) -> Double {
    let p2 = v3 - v1, p3 = 2 * (v1 - v2) + v3 - v4, p4 = -v1 + v2 - v3 + v4
    return v2 + d * (p2 + d * (p3 + d * p4))
}

extension RGBImage {
    /// Pillow's `L` conversion of each pixel: (19595 R + 38470 G + 7471 B + 2¹⁵) >> 16.
    func luma() -> [UInt8] {
        (0..<width * height).map { i in
            let p = i * 3
            let r = Int(pixels[p]) * 19595, g = Int(pixels[p + 1]) * 38470, b = Int(pixels[p + 2]) * 7471
            return UInt8((r + g + b + 0x8000) >> 16)
        }
    }

    /// Each channel mapped through its own 256-entry table.
    func mapped(_ tables: [[UInt8]]) -> RGBImage {
        var out = pixels
        for c in 0..<3 {
            let table = tables[c]
            for i in stride(from: c, to: out.count, by: 3) { out[i] = table[Int(out[i])] }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// The histogram of channel `c`.
    func histogram(channel c: Int) -> [Int] {
        var h = [Int](repeating: 0, count: 256)
        for i in stride(from: c, to: pixels.count, by: 3) { h[Int(pixels[i])] += 1 }
        return h
    }

    /// `ImageOps.autocontrast` with no cutoff: each channel stretched so its darkest value
    /// becomes 0 and its brightest 255 (truncating).
    public func autocontrasted() -> RGBImage {
        mapped((0..<3).map { c in
            let h = histogram(channel: c)
            guard let lo = h.firstIndex(where: { $0 > 0 }), let hi = h.lastIndex(where: { $0 > 0 }), hi > lo else {
                return (0..<256).map { UInt8($0) }
            }
            let scale = 255.0 / Double(hi - lo), offset = -Double(lo) * scale
            return (0..<256).map { UInt8(clamping: Int(Double($0) * scale + offset)) }
        })
    }

    /// `ImageOps.equalize`: each channel through its cumulative histogram, step = (pixels − count of the last used value) / 255.
    public func equalized() -> RGBImage {
        mapped((0..<3).map { c in
            let h = histogram(channel: c)
            let used = h.filter { $0 > 0 }
            let identity = (0..<256).map { UInt8($0) }
            guard used.count > 1 else { return identity }
            let step = (used.reduce(0, +) - used.last!) / 255
            guard step > 0 else { return identity }
            var n = step / 2
            return (0..<256).map { i in
                defer { n += h[i] }
                return UInt8(clamping: n / step)
            }
        })
    }

    /// Every value v becomes 255 − v.
    public func inverted() -> RGBImage { mapped(Array(repeating: (0..<256).map { UInt8(255 - $0) }, count: 3)) }

    /// Keeps the top `bits` bits of every value (`bits ≥ 8` leaves the image unchanged).
    public func posterized(bits: Int) -> RGBImage {
        guard bits < 8 else { return self }
        let mask = UInt8(truncatingIfNeeded: ~((1 << (8 - max(bits, 0))) - 1))
        return mapped(Array(repeating: (0..<256).map { UInt8($0) & mask }, count: 3))
    }

    /// Values at or above `threshold` are inverted.
    public func solarized(threshold: Int) -> RGBImage {
        mapped(Array(repeating: (0..<256).map { $0 < threshold ? UInt8($0) : UInt8(255 - $0) }, count: 3))
    }

    /// timm's `solarize_add`: values below `threshold` get `add` added (saturating at 255).
    public func solarizeAdded(_ add: Int, threshold: Int = 128) -> RGBImage {
        mapped(Array(repeating: (0..<256).map { $0 < threshold ? UInt8(clamping: $0 + add) : UInt8($0) }, count: 3))
    }

    /// Pillow's `Image.blend(degenerate, self, factor)` in single precision: truncated inside
    /// [0, 1], clipped when extrapolating.
    func blended(from degenerate: [UInt8], factor: Float) -> RGBImage {
        var out = pixels
        let interpolate = factor >= 0 && factor <= 1
        for i in out.indices {
            let a = Float(Int(degenerate[i])), v = a + factor * (Float(Int(pixels[i])) - a)
            out[i] = interpolate ? UInt8(v) : (v <= 0 ? 0 : v >= 255 ? 255 : UInt8(v))
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// `ImageEnhance.Color`: blend with the grayscale version.
    public func colorEnhanced(_ factor: Float) -> RGBImage {
        blended(from: luma().flatMap { [$0, $0, $0] }, factor: factor)
    }

    /// `ImageEnhance.Contrast`: blend with the mean gray level (rounded).
    public func contrastEnhanced(_ factor: Float) -> RGBImage {
        let l = luma()
        let mean = UInt8(Int(Double(l.reduce(0) { $0 + Int($1) }) / Double(l.count) + 0.5))
        return blended(from: [UInt8](repeating: mean, count: pixels.count), factor: factor)
    }

    /// `ImageEnhance.Brightness`: blend with black.
    public func brightnessEnhanced(_ factor: Float) -> RGBImage {
        blended(from: [UInt8](repeating: 0, count: pixels.count), factor: factor)
    }

    /// `ImageEnhance.Sharpness`: blend with the image smoothed by Pillow's SMOOTH kernel.
    public func sharpnessEnhanced(_ factor: Float) -> RGBImage {
        blended(from: smoothed().pixels, factor: factor)
    }

    /// Pillow's `ImageFilter.SMOOTH` (3×3 kernel 1 1 1 / 1 5 1 / 1 1 1 over 13, rounded);
    /// the outermost rows and columns are copied unchanged.
    func smoothed() -> RGBImage {
        guard width > 2, height > 2 else { return self }
        var out = pixels
        let kernel: [Float] = [1, 1, 1, 1, 5, 1, 1, 1, 1].map { $0 / 13 }
        for y in 1..<(height - 1) {
            for x in 1..<(width - 1) {
                for c in 0..<3 {
                    var s: Float = 0
                    for dy in -1...1 {
                        for dx in -1...1 { s += Float(pixels[((y + dy) * width + x + dx) * 3 + c]) * kernel[(dy + 1) * 3 + dx + 1] }
                    }
                    out[(y * width + x) * 3 + c] = s <= 0 ? 0 : s >= 255 ? 255 : UInt8(s + 0.5)
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// The image mirrored left to right.
    public func flippedHorizontally() -> RGBImage {
        var out = pixels
        for y in 0..<height {
            for x in 0..<width {
                let s = (y * width + x) * 3, d = (y * width + width - 1 - x) * 3
                out[d] = pixels[s]; out[d + 1] = pixels[s + 1]; out[d + 2] = pixels[s + 2]
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// Pillow's `Image.transform(size, AFFINE, (a, b, c, d, e, f))`: output pixel centre (x, y)
    /// samples the source at (a·x + b·y + c, d·x + e·y + f); samples outside the source take `fill`.
    public func affineWarped(_ m: [Double], filter: WarpFilter, fill: [UInt8]) -> RGBImage {
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<height {
            for x in 0..<width {
                let xs = m[0] * (Double(x) + 0.5) + m[1] * (Double(y) + 0.5) + m[2]
                let ys = m[3] * (Double(x) + 0.5) + m[4] * (Double(y) + 0.5) + m[5]
                let o = (y * width + x) * 3
                guard xs >= 0, xs < Double(width), ys >= 0, ys < Double(height) else {
                    out[o] = fill[0]; out[o + 1] = fill[1]; out[o + 2] = fill[2]
                    continue
                }
                switch filter {
                case .nearest:
                    let p = (Int(ys) * width + Int(xs)) * 3
                    out[o] = pixels[p]; out[o + 1] = pixels[p + 1]; out[o + 2] = pixels[p + 2]
                case .bilinear:
                    let fx = (xs - 0.5).rounded(.down), fy = (ys - 0.5).rounded(.down)
                    let dx = xs - 0.5 - fx, dy = ys - 0.5 - fy
                    let x0 = min(max(Int(fx), 0), width - 1), x1 = min(max(Int(fx) + 1, 0), width - 1)
                    let y0 = min(max(Int(fy), 0), height - 1), y1 = Int(fy) + 1
                    for c in 0..<3 {
                        let a = Double(pixels[(y0 * width + x0) * 3 + c]), b = Double(pixels[(y0 * width + x1) * 3 + c])
                        let top = a + (b - a) * dx
                        var bottom = top
                        if y1 >= 0 && y1 < height {
                            let a2 = Double(pixels[(y1 * width + x0) * 3 + c]), b2 = Double(pixels[(y1 * width + x1) * 3 + c])
                            bottom = a2 + (b2 - a2) * dx
                        }
                        out[o + c] = UInt8(top + (bottom - top) * dy)
                    }
                case .bicubic:
                    let fx = (xs - 0.5).rounded(.down), fy = (ys - 0.5).rounded(.down)
                    let dx = xs - 0.5 - fx, dy = ys - 0.5 - fy
                    let xb = Int(fx) - 1, y0 = Int(fy) - 1
                    let x0 = min(max(xb, 0), width - 1), x1 = min(max(xb + 1, 0), width - 1)
                    let x2 = min(max(xb + 2, 0), width - 1), x3 = min(max(xb + 3, 0), width - 1)
                    for c in 0..<3 {
                        // Rows outside the image repeat the previous row; the first is clamped.
                        func row(_ y: Int) -> Double {
                            let r = min(max(y, 0), height - 1) * width
                            return cubic(Double(pixels[(r + x0) * 3 + c]), Double(pixels[(r + x1) * 3 + c]),
                                         Double(pixels[(r + x2) * 3 + c]), Double(pixels[(r + x3) * 3 + c]), dx)
                        }
                        let r0 = row(y0)
                        let r1 = y0 + 1 >= 0 && y0 + 1 < height ? row(y0 + 1) : r0
                        let r2 = y0 + 2 >= 0 && y0 + 2 < height ? row(y0 + 2) : r1
                        let r3 = y0 + 3 >= 0 && y0 + 3 < height ? row(y0 + 3) : r2
                        let v = cubic(r0, r1, r2, r3, dy)
                        out[o + c] = v <= 0 ? 0 : v >= 255 ? 255 : UInt8(v)
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// Pillow's `rotate(degrees)` about the image centre, same size (counter-clockwise for positive angles).
    public func rotated(degrees: Double, filter: WarpFilter, fill: [UInt8]) -> RGBImage {
        let angle = -degrees * Double.pi / 180
        let (cosA, sinA) = (cos(angle), sin(angle))
        let cx = Double(width) / 2, cy = Double(height) / 2
        return affineWarped([cosA, sinA, cosA * -cx + sinA * -cy + cx, -sinA, cosA, -sinA * -cx + cosA * -cy + cy], filter: filter, fill: fill)
    }
}
