// Inflating zlib and gzip streams (MATLAB compressed elements, gzip'd IDX files) through ZIPFoundation.
import Foundation
import ZIPFoundation

/// Inflates a raw deflate stream starting at `start`; `limit` bounds the output size.
func inflateRaw(_ bytes: [UInt8], from start: Int, limit: Int, path: String) throws -> [UInt8] {
    let chunk = 1 << 16
    var output: [UInt8] = []
    struct Overrun: Error {}
    do {
        // ZIPFoundation reads whole chunks and asks for more until the stream ends, so every
        // block is padded to the chunk size and a request past the data is an error.
        _ = try Data.decompress(size: Int64(bytes.count - start), bufferSize: chunk, skipCRC32: true, provider: { position, _ in
            let at = start + Int(position)
            guard at < bytes.count else { throw Overrun() }
            var block = Data(bytes[at..<min(at + chunk, bytes.count)])
            block.append(Data(count: chunk - block.count))
            return block
        }, consumer: { piece in
            guard output.count + piece.count <= limit else { throw Overrun() }
            output += piece
        })
    } catch {
        throw DatasetError(path: path, problem: "compressed data is corrupt or truncated")
    }
    return output
}

/// Inflates a zlib stream (2-byte header, deflate data, Adler-32).
func inflateZlib(_ bytes: [UInt8], limit: Int, path: String) throws -> [UInt8] {
    guard bytes.count >= 2, bytes[0] & 0x0F == 8, (Int(bytes[0]) << 8 | Int(bytes[1])) % 31 == 0 else {
        throw DatasetError(path: path, problem: "compressed element is not a zlib stream")
    }
    return try inflateRaw(bytes, from: 2, limit: limit, path: path)
}

/// The contents of a gzip file (one member), or the bytes unchanged when they are not gzip'd.
func gunzipIfNeeded(_ bytes: [UInt8], limit: Int, path: String) throws -> [UInt8] {
    guard bytes.count >= 10, bytes[0] == 0x1F, bytes[1] == 0x8B else { return bytes }
    guard bytes[2] == 8 else { throw DatasetError(path: path, problem: "gzip file does not use deflate") }
    let flags = bytes[3]
    var pos = 10
    if flags & 4 != 0 {                                      // FEXTRA
        guard pos + 2 <= bytes.count else { throw DatasetError(path: path, problem: "truncated gzip header") }
        pos += 2 + (Int(bytes[pos]) | Int(bytes[pos + 1]) << 8)
    }
    for flag: UInt8 in [8, 16] where flags & flag != 0 {     // FNAME, FCOMMENT: zero-terminated
        guard let end = bytes[min(pos, bytes.count)...].firstIndex(of: 0) else { throw DatasetError(path: path, problem: "truncated gzip header") }
        pos = end + 1
    }
    if flags & 2 != 0 { pos += 2 }                           // FHCRC
    guard pos < bytes.count else { throw DatasetError(path: path, problem: "truncated gzip file") }
    return try inflateRaw(bytes, from: pos, limit: limit, path: path)
}
