// A strict reader for zip archives held in memory (a memory-mapped checkpoint file): the end
// record and central directory, with ZIP64 extensions; stored entries are read in place,
// deflated ones go through the inflate wrapper (Inflate.swift). Every offset and size is
// bounds-checked and every entry's CRC-32 verified before its contents are used.
import Foundation

/// The entries of a zip archive whose bytes stay valid while the archive is used.
struct ZipArchive {
    /// One file in the archive, as its central directory describes it.
    struct Entry {
        let name: String
        /// 0 for stored, 8 for deflated.
        let method: UInt16
        let crc32: UInt32
        let compressedSize: Int
        let size: Int
        /// Offset of the entry's (compressed) data in the archive.
        let dataOffset: Int
    }

    /// The entries in central-directory order.
    let entries: [Entry]
    private let index: [String: Int]
    private let bytes: UnsafeRawBufferPointer
    private let path: String

    /// Whether `bytes` start like a zip archive (a local file header or an empty archive's end record).
    static func hasSignature(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 4 && [0x0403_4B50, 0x0605_4B50].contains(bytes.littleEndian(UInt32.self, at: 0))
    }

    /// Reads the directory of the archive in `bytes`; errors name `path`.
    init(_ bytes: UnsafeRawBufferPointer, path: String) throws {
        self.bytes = bytes
        self.path = path
        let directory = try Self.centralDirectory(bytes, path: path)
        var entries: [Entry] = []
        var index: [String: Int] = [:]
        var position = directory.offset
        for number in 0..<directory.count {
            let entry = try Self.entry(in: bytes, at: &position, end: directory.end, number: number, path: path)
            guard index.updateValue(entries.count, forKey: entry.name) == nil else {
                throw CheckpointError(path: path, problem: "zip archive has two entries named \"\(entry.name)\"")
            }
            entries.append(entry)
        }
        self.entries = entries
        self.index = index
    }

    /// The entry called `name`, if any.
    func entry(named name: String) -> Entry? { index[name].map { entries[$0] } }

    /// Calls `body` with the uncompressed contents of `entry` after checking its CRC-32.
    func withContents<R>(of entry: Entry, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let raw = UnsafeRawBufferPointer(rebasing: bytes[entry.dataOffset..<entry.dataOffset + entry.compressedSize])
        switch entry.method {
        case 0:
            try checkCRC(raw, of: entry)
            return try body(raw)
        default:
            let inflated = try inflate(raw, of: entry)
            return try inflated.withUnsafeBytes { contents in
                try checkCRC(contents, of: entry)
                return try body(contents)
            }
        }
    }

    // MARK: Directory

    private static let endRecordSize = 22
    private static let centralHeaderSize = 46
    private static let localHeaderSize = 30
    private static let maxDeflateRatio: UInt64 = 1032

    /// Where the central directory lies and how many entries it lists.
    private static func centralDirectory(_ bytes: UnsafeRawBufferPointer, path: String) throws -> (offset: Int, end: Int, count: Int) {
        func fail(_ problem: String) -> CheckpointError { CheckpointError(path: path, problem: problem) }
        // The end record is the last 22 bytes, or sits before a comment of at most 65,535 bytes.
        var end = bytes.count - endRecordSize
        let lowest = max(0, end - 0xFFFF)
        while end >= lowest {
            if bytes.littleEndian(UInt32.self, at: end) == 0x0605_4B50,
               end + endRecordSize + Int(bytes.littleEndian(UInt16.self, at: end + 20)) <= bytes.count { break }
            end -= 1
        }
        guard end >= lowest, end >= 0 else {
            throw fail("zip archive has no end-of-central-directory record: the file is truncated or damaged")
        }
        guard bytes.littleEndian(UInt16.self, at: end + 4) == 0, bytes.littleEndian(UInt16.self, at: end + 6) == 0 else {
            throw fail("zip archive spans several disks, which is not supported")
        }
        var count = Int(bytes.littleEndian(UInt16.self, at: end + 10))
        var size = Int(bytes.littleEndian(UInt32.self, at: end + 12))
        var offset = Int(bytes.littleEndian(UInt32.self, at: end + 16))
        var directoryEnd = end
        if count == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
            // ZIP64: a 20-byte locator precedes the end record and points at the ZIP64 end record.
            let locator = end - 20
            guard locator >= 56, bytes.littleEndian(UInt32.self, at: locator) == 0x0706_4B50 else {
                throw fail("zip archive needs a ZIP64 end record but has no ZIP64 locator")
            }
            let record64 = bytes.littleEndian(UInt64.self, at: locator + 8)
            guard record64 <= UInt64(locator - 56), bytes.littleEndian(UInt32.self, at: Int(record64)) == 0x0606_4B50 else {
                throw fail("zip archive's ZIP64 end record is missing or out of range: the file is truncated or damaged")
            }
            let values = [32, 40, 48].map { bytes.littleEndian(UInt64.self, at: Int(record64) + $0) }
            guard values.allSatisfy({ $0 <= UInt64(bytes.count) }) else {
                throw fail("zip archive's ZIP64 end record gives sizes beyond the file")
            }
            (count, size, offset) = (Int(values[0]), Int(values[1]), Int(values[2]))
            directoryEnd = Int(record64)
        }
        guard offset <= directoryEnd, size <= directoryEnd - offset else {
            throw fail("zip central directory (\(size) bytes at offset \(offset)) runs beyond its end record at \(directoryEnd): the file is truncated or damaged")
        }
        guard count <= size / centralHeaderSize else {
            throw fail("zip central directory of \(size) bytes cannot hold the \(count) entries it claims")
        }
        return (offset, offset + size, count)
    }

    /// Parses the central-directory header at `position` (advancing it) and the local header it points to.
    private static func entry(in bytes: UnsafeRawBufferPointer, at position: inout Int, end: Int,
                              number: Int, path: String) throws -> Entry {
        func fail(_ problem: String) -> CheckpointError {
            CheckpointError(path: path, problem: "zip central directory entry \(number): \(problem)")
        }
        let start = position
        guard end - start >= centralHeaderSize, bytes.littleEndian(UInt32.self, at: start) == 0x0201_4B50 else {
            throw fail("bad signature or header beyond the directory: the file is damaged")
        }
        let flags = bytes.littleEndian(UInt16.self, at: start + 8)
        let method = bytes.littleEndian(UInt16.self, at: start + 10)
        let crc32 = bytes.littleEndian(UInt32.self, at: start + 16)
        var compressedSize = UInt64(bytes.littleEndian(UInt32.self, at: start + 20))
        var size = UInt64(bytes.littleEndian(UInt32.self, at: start + 24))
        let nameLength = Int(bytes.littleEndian(UInt16.self, at: start + 28))
        let extraLength = Int(bytes.littleEndian(UInt16.self, at: start + 30))
        let commentLength = Int(bytes.littleEndian(UInt16.self, at: start + 32))
        var localOffset = UInt64(bytes.littleEndian(UInt32.self, at: start + 42))
        let nameStart = start + centralHeaderSize
        guard nameLength + extraLength + commentLength <= end - nameStart else {
            throw fail("name, extra field and comment run beyond the directory")
        }
        position = nameStart + nameLength + extraLength + commentLength
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[nameStart..<nameStart + nameLength]), as: UTF8.self)
        func failEntry(_ problem: String) -> CheckpointError {
            CheckpointError(path: path, problem: "zip entry \"\(name)\": \(problem)")
        }
        guard flags & 1 == 0 else { throw failEntry("is encrypted") }
        guard method == 0 || method == 8 else {
            throw failEntry("uses compression method \(method); only stored (0) and deflate (8) are supported")
        }

        // ZIP64 extra field (id 1): 8-byte values for whichever 32-bit fields are saturated, in order.
        var extra = nameStart + nameLength
        let extraEnd = extra + extraLength
        while extraEnd - extra >= 4 {
            let id = bytes.littleEndian(UInt16.self, at: extra)
            let length = Int(bytes.littleEndian(UInt16.self, at: extra + 2))
            guard length <= extraEnd - extra - 4 else { throw failEntry("extra field runs beyond its header") }
            if id == 1 {
                var field = extra + 4
                func next() throws -> UInt64 {
                    guard field + 8 <= extra + 4 + length else { throw failEntry("ZIP64 extra field is too short") }
                    defer { field += 8 }
                    return bytes.littleEndian(UInt64.self, at: field)
                }
                if size == 0xFFFF_FFFF { size = try next() }
                if compressedSize == 0xFFFF_FFFF { compressedSize = try next() }
                if localOffset == 0xFFFF_FFFF { localOffset = try next() }
            }
            extra += 4 + length
        }

        let limit = UInt64(bytes.count)
        guard limit >= UInt64(localHeaderSize), localOffset <= limit - UInt64(localHeaderSize), compressedSize <= limit, size <= UInt64(Int.max) else {
            throw failEntry("offset or size lies beyond the file: the file is truncated or damaged")
        }
        let local = Int(localOffset)
        guard bytes.littleEndian(UInt32.self, at: local) == 0x0403_4B50 else {
            throw failEntry("local header has a bad signature: the file is damaged")
        }
        let dataOffset = local + localHeaderSize + Int(bytes.littleEndian(UInt16.self, at: local + 26))
            + Int(bytes.littleEndian(UInt16.self, at: local + 28))
        guard dataOffset <= bytes.count, Int(compressedSize) <= bytes.count - dataOffset else {
            throw failEntry("data (\(compressedSize) bytes at offset \(dataOffset)) runs beyond the end of the file: the file is truncated")
        }
        guard method == 8 || compressedSize == size else {
            throw failEntry("is stored but its compressed size \(compressedSize) differs from its size \(size)")
        }
        // Deflate expands at most about 1032 to 1; a larger claim is damage or a decompression bomb.
        guard size <= compressedSize * maxDeflateRatio + 1024 else {
            throw failEntry("claims to inflate \(compressedSize) bytes to \(size), more than deflate can")
        }
        return Entry(name: name, method: method, crc32: crc32, compressedSize: Int(compressedSize), size: Int(size), dataOffset: dataOffset)
    }

    // MARK: Contents

    private func checkCRC(_ contents: UnsafeRawBufferPointer, of entry: Entry) throws {
        guard contents.count == entry.size else {
            throw CheckpointError(path: path, problem: "zip entry \"\(entry.name)\" inflates to \(contents.count) bytes, not the \(entry.size) its header declares")
        }
        guard crc32(contents) == entry.crc32 else {
            throw CheckpointError(path: path, problem: "zip entry \"\(entry.name)\" fails its CRC-32 check: the file is damaged")
        }
    }

    /// The inflated contents of a deflated entry.
    private func inflate(_ compressed: UnsafeRawBufferPointer, of entry: Entry) throws -> [UInt8] {
        do {
            return try SSFFormats.inflate(compressed, container: .raw, limit: entry.size)
        } catch InflateError.exceedsLimit {
            throw CheckpointError(path: path, problem: "zip entry \"\(entry.name)\": inflates to more than the \(entry.size) bytes its header declares")
        } catch InflateError.truncated {
            throw CheckpointError(path: path, problem: "zip entry \"\(entry.name)\": deflate data ends before the stream does")
        } catch {
            throw CheckpointError(path: path, problem: "zip entry \"\(entry.name)\" has corrupt deflate data: the file is damaged")
        }
    }
}

extension UnsafeRawBufferPointer {
    /// The little-endian integer at byte `offset` (any alignment); the caller has checked the bounds.
    func littleEndian<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
