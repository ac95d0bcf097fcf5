// Decoded 8-bit RGB images and the JPEG/PNG decoders that produce them.
import CImageCodecs
import Foundation

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (R, G, B).
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBImage: \(pixels.count) bytes for \(width)×\(height)")
        self.width = width; self.height = height; self.pixels = pixels
    }
}

/// An image file that could not be read or decoded.
public struct ImageError: Error, CustomStringConvertible {
    public let path: String
    public let problem: String
    public init(path: String, problem: String) { self.path = path; self.problem = problem }
    public var description: String { "\(path): \(problem)" }
}

extension RGBImage {
    /// Reads and decodes a JPEG or PNG file (format detected from its first bytes). With
    /// `minimumSide`, a JPEG is decoded at the smallest DCT scale (1/8, 1/4, 1/2 or 1) whose shorter
    /// side is at least that many pixels.
    public init(contentsOf url: URL, minimumSide: Int? = nil) throws {
        let data: Data
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            throw ImageError(path: url.path, problem: "cannot read the file (\(error.localizedDescription))")
        }
        try self.init(encoded: data, path: url.path, minimumSide: minimumSide)
    }

    /// Decodes JPEG or PNG bytes; `path` names the source in errors; `minimumSide` as for files.
    public init(encoded data: Data, path: String, minimumSide: Int? = nil) throws {
        let jpegMagic: [UInt8] = [0xFF, 0xD8, 0xFF]
        let pngMagic: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        let head = [UInt8](data.prefix(8))
        let decode: (UnsafePointer<UInt8>, Int, UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>,
                     UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UnsafeMutablePointer<CChar>, Int) -> Int32
        if head.starts(with: jpegMagic) {
            let side = Int32(clamping: minimumSide ?? 0)
            decode = { ssf_decode_jpeg_scaled($0, $1, side, $2, $3, $4, $5, $6) }
        } else if head.starts(with: pngMagic) {
            decode = ssf_decode_png
        } else {
            throw ImageError(path: path, problem: data.isEmpty ? "empty file" : "not a JPEG or PNG file (unrecognised first bytes)")
        }
        var width: Int32 = 0, height: Int32 = 0
        var pixels: UnsafeMutablePointer<UInt8>?
        var message = [CChar](repeating: 0, count: 256)
        let status = data.withUnsafeBytes { raw in
            decode(raw.bindMemory(to: UInt8.self).baseAddress!, raw.count, &width, &height, &pixels, &message, message.count)
        }
        guard status == 0, let pixels else {
            throw ImageError(path: path, problem: String(cString: message))
        }
        defer { ssf_free_pixels(pixels) }
        let count = Int(width) * Int(height) * 3
        self.init(width: Int(width), height: Int(height), pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
    }
}

extension RGBImage {
    /// The image as a PNG file.
    public func pngData() throws -> Data {
        var data: UnsafeMutablePointer<UInt8>?
        var length = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = pixels.withUnsafeBufferPointer { ssf_encode_png($0.baseAddress!, Int32(width), Int32(height), &data, &length, &message, message.count) }
        guard status == 0, let data else { throw ImageError(path: "<png encoder>", problem: String(cString: message)) }
        defer { ssf_free_pixels(data) }
        return Data(bytes: data, count: length)
    }

    /// `images` (all the same size) tiled in rows of `columns`, separated by `gap` pixels of `background`.
    public static func grid(_ images: [RGBImage], columns: Int, gap: Int = 2, background: UInt8 = 255) -> RGBImage {
        precondition(!images.isEmpty && columns > 0, "grid: no images")
        let w = images[0].width, h = images[0].height
        let rows = (images.count + columns - 1) / columns
        let width = columns * w + (columns + 1) * gap, height = rows * h + (rows + 1) * gap
        var pixels = [UInt8](repeating: background, count: width * height * 3)
        for (i, image) in images.enumerated() {
            precondition(image.width == w && image.height == h, "grid: images of different sizes")
            let x0 = gap + (i % columns) * (w + gap), y0 = gap + (i / columns) * (h + gap)
            for y in 0..<h {
                let src = y * w * 3, dst = ((y0 + y) * width + x0) * 3
                pixels.replaceSubrange(dst..<dst + w * 3, with: image.pixels[src..<src + w * 3])
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
