// The one inflate wrapper: the same payload deflated by ZIPFoundation (zlib's deflate) and
// wrapped raw, as zlib and as gzip (with and without optional header fields) inflates back
// exactly; bad headers, damage and the output limit are errors.
import Foundation
import XCTest
import ZIPFoundation
@testable import SSFFormats

final class InflateTests: XCTestCase {
    /// About 200 kB, several 64 kB chunks: repetitive text then noise, so both long matches
    /// and literals occur.
    private let payload: [UInt8] = {
        var bytes = Array(String(repeating: "scale and shift the features, ", count: 3000).utf8)
        var state: UInt32 = 12345
        for _ in 0..<110_000 {
            state = state &* 1_664_525 &+ 1_013_904_223
            bytes.append(UInt8(truncatingIfNeeded: state >> 24))
        }
        return bytes
    }()

    /// Raw deflate data of `bytes` and their CRC-32.
    private func deflate(_ bytes: [UInt8]) throws -> (data: [UInt8], crc32: UInt32) {
        var out: [UInt8] = []
        let data = Data(bytes)
        let crc = try Data.compress(size: Int64(data.count), bufferSize: 1 << 14, provider: { position, size in
            data.subdata(in: Int(position)..<Int(position) + size)
        }, consumer: { out += $0 })
        return (out, crc)
    }

    private func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in bytes { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        return b << 16 | a
    }

    private func bigEndian(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
    private func littleEndian(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    func testRawZlibAndGzipInflateToTheSameBytes() throws {
        let (raw, crc) = try deflate(payload)
        XCTAssertLessThan(raw.count, payload.count)
        let zlib = [0x78, 0x9C] + raw + bigEndian(adler32(payload))
        let trailer = littleEndian(crc) + littleEndian(UInt32(payload.count))
        let gzip = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3] + raw + trailer
        // FEXTRA (2 bytes), FNAME and FCOMMENT (zero-terminated), FHCRC.
        let gzipWithFields = [0x1F, 0x8B, 8, 0x1E, 0, 0, 0, 0, 0, 3] + [2, 0, 0xAB, 0xCD]
            + Array("payload.bin".utf8) + [0] + Array("a comment".utf8) + [0] + [0x12, 0x34] + raw + trailer
        XCTAssertEqual(try inflate(raw, container: .raw, limit: payload.count), payload)
        XCTAssertEqual(try inflate(zlib, container: .zlib, limit: 1 << 30), payload)
        XCTAssertEqual(try inflate(gzip, container: .gzip, limit: 1 << 30), payload)
        XCTAssertEqual(try inflate(gzipWithFields, container: .gzip, limit: 1 << 30), payload)
        XCTAssertEqual(try inflate(try deflate([]).data, container: .raw, limit: 0), [])
        XCTAssertEqual(adler32(Array("Wikipedia".utf8)), 0x11E6_0398)
        XCTAssertEqual(Array("123456789".utf8).withUnsafeBytes(crc32), 0xCBF4_3926)
    }

    func testBadHeadersDamageAndTheLimitAreErrors() throws {
        let (raw, _) = try deflate(payload)
        func error(_ bytes: [UInt8], _ container: DeflateContainer, limit: Int = 1 << 30) -> InflateError? {
            do {
                _ = try inflate(bytes, container: container, limit: limit)
                return nil
            } catch {
                return error as? InflateError
            }
        }
        XCTAssertEqual(error(raw, .raw, limit: payload.count - 1), .exceedsLimit(payload.count - 1))
        XCTAssertEqual(error([0x78, 0x00] + raw, .zlib), .badHeader("is not a zlib stream"))
        XCTAssertEqual(error([0x78, 0xBB] + raw, .zlib), .badHeader("zlib stream needs a preset dictionary"))
        XCTAssertEqual(error(raw, .gzip), .badHeader("is not a gzip stream"))
        XCTAssertEqual(error([0x1F, 0x8B, 7, 0, 0, 0, 0, 0, 0, 3] + raw, .gzip), .badHeader("gzip stream does not use deflate"))
        XCTAssertEqual(error([0x1F, 0x8B, 8, 0x08, 0, 0, 0, 0, 0, 3] + Array("no end".utf8), .gzip), .badHeader("truncated gzip header"))
        XCTAssertEqual(error([0x1F, 0x8B, 8], .gzip), .badHeader("truncated gzip header"))
        XCTAssertEqual(error([], .raw), .truncated)
        // A cut stream ends early, runs into the zero padding or leaves a trailer that does not
        // match: either way an error, never a hang. (Raw deflate has no checksum: zip checks the
        // entry's CRC-32.)
        let zlib = [0x78, 0x9C] + raw + bigEndian(adler32(payload))
        let gzip = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3] + raw + littleEndian(try deflate(payload).crc32) + littleEndian(UInt32(payload.count))
        for (stream, container) in [(zlib, DeflateContainer.zlib), (gzip, .gzip)] {
            for cut in [3, 12, stream.count / 3, stream.count - 9, stream.count - 5, stream.count - 1] {
                XCTAssertNotNil(error(Array(stream.prefix(cut)), container), "\(container) cut at \(cut)")
            }
            var damaged = stream
            damaged[damaged.count - 2] ^= 1
            XCTAssertEqual(error(damaged, container), .checksumMismatch, "\(container)")
        }
        XCTAssertNotNil(error(Array(raw.prefix(raw.count / 3)), .raw))
        XCTAssertEqual(error([0xFF, 0xFF, 0xFF, 0xFF], .raw), .corrupt)
    }
}
