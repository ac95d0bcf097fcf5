// The one inflate wrapper: raw deflate (zip entries), zlib (MATLAB compressed elements) and
// gzip (gzip'd IDX files) streams, all inflated by ZIPFoundation's zlib binding through
// `inflate(_:container:limit:)`. The output is bounded, zlib and gzip trailers are checked, and
// a truncated or corrupt stream is an error, never a hang or a crash.
import Foundation
import ZIPFoundation

/// What wraps a deflate stream.
public enum DeflateContainer: Sendable {
    /// No wrapper: the deflate data itself (a zip entry's contents).
    case raw
    /// RFC 1950: a 2-byte header (method 8, no preset dictionary) before the deflate data.
    case zlib
    /// RFC 1952: one gzip member (header with optional extra field, name, comment and CRC).
    case gzip
}

/// Why a compressed stream could not be inflated; callers add the file and the entry.
public enum InflateError: Error, Equatable, CustomStringConvertible {
    /// The zlib or gzip header is missing or malformed (the text says how).
    case badHeader(String)
    /// The deflate data ends before the stream does.
    case truncated
    /// The deflate data is not valid.
    case corrupt
    /// The stream inflates to more than the limit it was given.
    case exceedsLimit(Int)
    /// The zlib Adler-32 or the gzip CRC-32 and length at the end of the bytes do not match
    /// what was inflated.
    case checksumMismatch

    public var description: String {
        switch self {
        case .badHeader(let text): text
        case .truncated: "deflate data ends before the stream does"
        case .corrupt: "deflate data is corrupt"
        case .exceedsLimit(let limit): "inflates to more than \(limit) bytes"
        case .checksumMismatch: "inflated data does not match the stream's checksum: it is truncated or damaged"
        }
    }
}

/// Inflates the stream in `bytes` (wrapped as `container`) to at most `limit` bytes; throws
/// `InflateError`. A zlib or gzip stream fills `bytes`: its trailer (zlib's Adler-32, gzip's
/// CRC-32 and length) is their last bytes and is checked. Raw deflate has no checksum; the
/// caller checks the result (a zip entry's CRC-32 and size).
public func inflate(_ bytes: UnsafeRawBufferPointer, container: DeflateContainer, limit: Int) throws -> [UInt8] {
    let start = try deflateStart(bytes, container: container)
    let output = try inflateRaw(UnsafeRawBufferPointer(rebasing: bytes[start...]), limit: limit)
    switch container {
    case .raw:
        break
    case .zlib:
        guard bytes.count - start >= 4, bytes.bigEndianUInt32(at: bytes.count - 4) == adler32(output) else {
            throw InflateError.checksumMismatch
        }
    case .gzip:
        guard bytes.count - start >= 8, bytes.littleEndian(UInt32.self, at: bytes.count - 8) == output.withUnsafeBytes(crc32),
              bytes.littleEndian(UInt32.self, at: bytes.count - 4) == UInt32(truncatingIfNeeded: output.count) else {
            throw InflateError.checksumMismatch
        }
    }
    return output
}

/// Inflates the stream in `bytes` (wrapped as `container`) to at most `limit` bytes; throws `InflateError`.
public func inflate(_ bytes: [UInt8], container: DeflateContainer, limit: Int) throws -> [UInt8] {
    try bytes.withUnsafeBytes { try inflate($0, container: container, limit: limit) }
}

/// Whether `bytes` start with the gzip magic number.
public func isGzip(_ bytes: [UInt8]) -> Bool {
    bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
}

/// The CRC-32 of `bytes` (zip and gzip), by ZIPFoundation's zlib binding.
func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    // In pieces of at most 1 GiB: ZIPFoundation hands zlib 32-bit lengths.
    var checksum: UInt32 = 0
    var done = 0
    while done < bytes.count, let base = bytes.baseAddress {
        let piece = min(1 << 30, bytes.count - done)
        checksum = Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base + done), count: piece, deallocator: .none)
            .crc32(checksum: checksum)
        done += piece
    }
    return checksum
}

/// The Adler-32 checksum of `bytes` (RFC 1950).
func adler32(_ bytes: [UInt8]) -> UInt32 {
    var a: UInt32 = 1, b: UInt32 = 0
    var start = 0
    while start < bytes.count {
        // 5552 bytes is the most that can be summed before `b` could overflow 32 bits.
        let end = min(start + 5552, bytes.count)
        for i in start..<end {
            a &+= UInt32(bytes[i])
            b &+= a
        }
        a %= 65521
        b %= 65521
        start = end
    }
    return b << 16 | a
}

extension UnsafeRawBufferPointer {
    /// The big-endian 32-bit integer at byte `offset`; the caller has checked the bounds.
    fileprivate func bigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}

/// Where the deflate data starts after the container's header.
private func deflateStart(_ bytes: UnsafeRawBufferPointer, container: DeflateContainer) throws -> Int {
    switch container {
    case .raw:
        return 0
    case .zlib:
        guard bytes.count >= 2, bytes[0] & 0x0F == 8, (Int(bytes[0]) << 8 | Int(bytes[1])) % 31 == 0 else {
            throw InflateError.badHeader("is not a zlib stream")
        }
        guard bytes[1] & 0x20 == 0 else { throw InflateError.badHeader("zlib stream needs a preset dictionary") }
        return 2
    case .gzip:
        guard bytes.count >= 2, bytes[0] == 0x1F, bytes[1] == 0x8B else { throw InflateError.badHeader("is not a gzip stream") }
        guard bytes.count >= 10 else { throw InflateError.badHeader("truncated gzip header") }
        guard bytes[2] == 8 else { throw InflateError.badHeader("gzip stream does not use deflate") }
        let flags = bytes[3]
        var position = 10
        if flags & 4 != 0 {                                     // FEXTRA: a 2-byte length and the field
            guard bytes.count - position >= 2 else { throw InflateError.badHeader("truncated gzip header") }
            position += 2 + (Int(bytes[position]) | Int(bytes[position + 1]) << 8)
        }
        for flag: UInt8 in [8, 16] where flags & flag != 0 {    // FNAME, FCOMMENT: zero-terminated
            guard position < bytes.count, let end = bytes[position...].firstIndex(of: 0) else {
                throw InflateError.badHeader("truncated gzip header")
            }
            position = end + 1
        }
        if flags & 2 != 0 { position += 2 }                     // FHCRC
        guard position < bytes.count else { throw InflateError.badHeader("truncated gzip stream") }
        return position
    }
}

/// Inflates raw deflate data to at most `limit` bytes.
private func inflateRaw(_ compressed: UnsafeRawBufferPointer, limit: Int) throws -> [UInt8] {
    let chunk = 1 << 16
    var output: [UInt8] = []
    output.reserveCapacity(min(limit, 1 << 28, max(compressed.count * 4, chunk)))
    struct Stop: Error { let reason: InflateError }
    do {
        // ZIPFoundation's zlib loop reads a full chunk from every block it is given and asks
        // for more until the stream ends, so every block is padded to the chunk size and a
        // request past the data is an error.
        _ = try Data.decompress(size: Int64(compressed.count), bufferSize: chunk, skipCRC32: true, provider: { position, _ in
            guard position < compressed.count else { throw Stop(reason: .truncated) }
            let at = Int(position), available = min(chunk, compressed.count - at)
            var block = Data(count: chunk)
            block.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: compressed[at..<at + available])) }
            return block
        }, consumer: { piece in
            guard piece.count <= limit - output.count else { throw Stop(reason: .exceedsLimit(limit)) }
            output.append(contentsOf: piece)
        })
    } catch let stop as Stop {
        throw stop.reason
    } catch {
        throw InflateError.corrupt
    }
    return output
}
