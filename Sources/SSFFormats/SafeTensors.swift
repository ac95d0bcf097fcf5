// safetensors checkpoint I/O. A file is an 8-byte little-endian header length N, N bytes of
// UTF-8 JSON describing each tensor (dtype, shape, byte range), then one contiguous data
// buffer. Loading memory-maps the file, validates every part of the header strictly and
// converts each tensor to Float32; saving writes Float32 tensors atomically.
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SSFEngine

#if _endian(big)
#error("safetensors I/O copies little-endian data directly and needs a little-endian host")
#endif

/// The contents of a safetensors file, every tensor converted to Float32.
public struct SafeTensorsFile: Sendable {
    /// Tensors by name.
    public var tensors: [String: Tensor]
    /// Tensor names in the order of their data in the file.
    public var order: [String]
    /// The `__metadata__` string map; empty when the file has none.
    public var metadata: [String: String]
    /// The dtype each tensor had in the file (`"F32"`, `"F16"`, `"BF16"`, `"F64"`, `"I64"`, ...).
    public var sourceDTypes: [String: String]
}

/// Reads and writes safetensors checkpoints.
public enum SafeTensors {
    /// Largest JSON header accepted, in bytes (the limit of the reference implementation).
    public static let maxHeaderBytes = 100_000_000

    /// Loads the file at `url`, memory-mapping it and converting F64, F32, F16, BF16 and the
    /// integer and BOOL dtypes to Float32.
    ///
    /// Throws `CheckpointError` naming the file and the problem for anything malformed:
    /// a truncated file, a bad header length, invalid UTF-8 or JSON, duplicate keys, missing
    /// or mistyped fields, bad shapes or dtypes, byte ranges that overlap, leave holes or
    /// disagree with the shape, and non-string metadata.
    public static func load(_ url: URL) throws -> SafeTensorsFile {
        do {
            let mapping = try MappedFile(path: url.path)
            defer { mapping.unmap() }
            return try decode(mapping.bytes)
        } catch let problem as Problem {
            throw CheckpointError(path: url.path, problem: problem.text)
        }
    }

    /// Writes `tensors` as Float32 (sorted by name, contiguous) with optional string metadata.
    ///
    /// The file is written to a temporary file in the same directory, flushed to disk and
    /// renamed over `url`, so a reader never sees a partial checkpoint.
    public static func save(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
        do {
            guard tensors[metadataKey] == nil else { throw Problem("tensor name \"\(metadataKey)\" is reserved for metadata") }
            let names = tensors.keys.sorted()
            let header = encodeHeader(names.map { ($0, tensors[$0]!.shape) }, metadata: metadata)
            try writeAtomically(to: url) { file in
                try file.append(withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) })
                try file.append(header)
                for name in names {
                    try tensors[name]!.withUnsafeBufferPointer { try file.append(UnsafeRawBufferPointer($0)) }
                }
            }
        } catch let problem as Problem {
            throw CheckpointError(path: url.path, problem: problem.text)
        }
    }

    private static let metadataKey = "__metadata__"

    /// A problem with the file; wrapped into `CheckpointError` with the path at the API boundary.
    private struct Problem: Error {
        let text: String
        init(_ text: String) { self.text = text }
    }

    // MARK: Reading

    /// One tensor as described by the header.
    private struct Entry {
        let name: String
        /// The dtype's name in the header and its element type.
        let dtypeName: String
        let dtype: StoredElementType
        let shape: [Int]
        let begin: Int
        let end: Int
    }

    private static func decode(_ file: UnsafeRawBufferPointer) throws -> SafeTensorsFile {
        guard file.count >= 8 else {
            throw Problem("file is \(file.count) bytes, too short to hold the 8-byte header length")
        }
        let headerLength = UInt64(littleEndian: file.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(maxHeaderBytes) else {
            throw Problem("header length \(headerLength) is absurdly large (limit \(maxHeaderBytes) bytes)")
        }
        guard headerLength <= UInt64(file.count - 8) else {
            throw Problem("header length \(headerLength) runs beyond the end of the file (\(file.count - 8) bytes follow the length)")
        }
        let dataStart = 8 + Int(headerLength)
        let header = Array(file[8..<dataStart])
        let buffer = UnsafeRawBufferPointer(rebasing: file[dataStart...])

        let (entries, metadata) = try parseHeader(header, bufferSize: buffer.count)
        var result = SafeTensorsFile(tensors: [:], order: [], metadata: metadata, sourceDTypes: [:])
        for entry in entries {
            var tensor = Tensor(uninitializedShape: entry.shape)
            let count = tensor.count
            entry.dtype.convert(buffer.baseAddress! + entry.begin, count: count, stride: 1, into: tensor.mutablePointer())
            result.tensors[entry.name] = tensor
            result.order.append(entry.name)
            result.sourceDTypes[entry.name] = entry.dtypeName
        }
        return result
    }

    /// The tensor entries in data order, and the metadata, after checking that the entries
    /// tile the `bufferSize`-byte data buffer exactly.
    private static func parseHeader(_ header: [UInt8], bufferSize: Int) throws -> ([Entry], [String: String]) {
        guard String(validating: header, as: UTF8.self) != nil else { throw Problem("header is not valid UTF-8") }
        let json: JSONValue
        do {
            json = try JSONParser.parse(header)
        } catch let failure as JSONParser.Failure {
            throw Problem("header: \(failure.message)")
        }
        guard case .object(let members) = json else { throw Problem("header is \(json.kind), not a JSON object") }

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for name in members.keys.sorted() {
            if name == metadataKey {
                metadata = try parseMetadata(members[name]!)
            } else {
                entries.append(try parseEntry(name, members[name]!, bufferSize: bufferSize))
            }
        }
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        try checkCoverage(entries, bufferSize: bufferSize)
        return (entries, metadata)
    }

    private static func parseMetadata(_ value: JSONValue) throws -> [String: String] {
        guard case .object(let members) = value else { throw Problem("\(metadataKey) is \(value.kind), not an object") }
        var metadata: [String: String] = [:]
        for (key, value) in members {
            guard case .string(let text) = value else {
                throw Problem("\(metadataKey) value for \(JSONValue.quoted(key)) is \(value.kind), not a string")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func parseEntry(_ name: String, _ value: JSONValue, bufferSize: Int) throws -> Entry {
        let label = "tensor \(JSONValue.quoted(name))"
        guard case .object(let fields) = value else { throw Problem("\(label) is \(value.kind), not an object") }
        guard let dtypeValue = fields["dtype"] else { throw Problem("\(label) is missing \"dtype\"") }
        guard let shapeValue = fields["shape"] else { throw Problem("\(label) is missing \"shape\"") }
        guard let offsetsValue = fields["data_offsets"] else { throw Problem("\(label) is missing \"data_offsets\"") }

        guard case .string(let dtypeName) = dtypeValue else { throw Problem("\(label): \"dtype\" is \(dtypeValue.kind), not a string") }
        guard let dtype = dtypes[dtypeName] else {
            throw Problem("\(label): unsupported dtype \(JSONValue.quoted(String(dtypeName.prefix(32))))")
        }
        guard case .array(let dims) = shapeValue else { throw Problem("\(label): \"shape\" is \(shapeValue.kind), not an array") }
        let shape = try dims.map { try nonNegativeInteger($0, "\(label): shape dimension") }
        guard case .array(let offsets) = offsetsValue, offsets.count == 2 else {
            throw Problem("\(label): \"data_offsets\" must be an array of two integers")
        }
        let begin = try nonNegativeInteger(offsets[0], "\(label): data_offsets begin")
        let end = try nonNegativeInteger(offsets[1], "\(label): data_offsets end")

        guard begin <= end else { throw Problem("\(label): data_offsets [\(begin), \(end)] begins after it ends") }
        guard end <= bufferSize else {
            throw Problem("\(label): data_offsets [\(begin), \(end)] run beyond the data buffer of \(bufferSize) bytes")
        }
        var bytes = dtype.byteSize
        for dim in shape {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw Problem("\(label): shape \(shape) is too large") }
            bytes = product
        }
        guard end - begin == bytes else {
            throw Problem("\(label): data_offsets hold \(end - begin) bytes but shape \(shape) of \(dtypeName) needs \(bytes)")
        }
        return Entry(name: name, dtypeName: dtypeName, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// A JSON integer in `0...Int.max`.
    private static func nonNegativeInteger(_ value: JSONValue, _ what: String) throws -> Int {
        guard case .number(let text) = value else { throw Problem("\(what) is \(value.kind), not an integer") }
        let shown = text.count > 32 ? text.prefix(32) + "…" : text
        guard !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { throw Problem("\(what) \(shown) is not an integer") }
        guard !text.hasPrefix("-") || text == "-0" else { throw Problem("\(what) \(shown) is negative") }
        guard let n = Int(text) else { throw Problem("\(what) \(shown) is too large") }
        return n
    }

    /// Checks that `entries` (sorted by offset) cover `0..<bufferSize` with no hole and no overlap.
    private static func checkCoverage(_ entries: [Entry], bufferSize: Int) throws {
        var covered = 0
        var previous: Entry?
        for entry in entries {
            if entry.begin < covered, let previous {
                throw Problem("tensor \(JSONValue.quoted(entry.name)) overlaps tensor \(JSONValue.quoted(previous.name)) in the data buffer")
            }
            guard entry.begin == covered else {
                throw Problem("bytes \(covered)..<\(entry.begin) of the data buffer are not covered by any tensor")
            }
            covered = entry.end
            previous = entry
        }
        guard covered == bufferSize else {
            throw Problem("bytes \(covered)..<\(bufferSize) of the data buffer are not covered by any tensor")
        }
    }

    // MARK: Writing

    /// The JSON header for Float32 tensors laid out contiguously in the given order,
    /// padded with spaces to a multiple of 8 bytes.
    private static func encodeHeader(_ tensors: [(name: String, shape: [Int])], metadata: [String: String]) -> [UInt8] {
        // The metadata first (its keys sorted), then the tensors in data order, each with its
        // dtype, shape and data offsets in that order.
        var members: [JSONMember] = []
        if !metadata.isEmpty { members.append(JSONMember(metadataKey, .object(metadata.mapValues { JSONValue($0) }))) }
        var offset = 0
        for (name, shape) in tensors {
            let end = offset + Tensor.elementCount(shape) * MemoryLayout<Float>.size
            members.append(JSONMember(name, ["dtype": "F32", "shape": .array(shape.map { JSONValue($0) }), "data_offsets": [JSONValue(offset), JSONValue(end)]]))
            offset = end
        }
        var header = Array(JSONValue.orderedObject(members).serialized.utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
        return header
    }

    /// Runs `body` on a new temporary file next to `url`, flushes it, and renames it over `url`.
    /// The temporary file is removed if anything fails.
    private static func writeAtomically(to url: URL, _ body: (OutputFile) throws -> Void) throws {
        let directory = url.deletingLastPathComponent().path
        let temporary = "\(directory)/.\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let file = try OutputFile(path: temporary)
        do {
            try body(file)
            try file.flushAndClose()
            guard rename(temporary, url.path) == 0 else { throw Problem("cannot rename the temporary file into place (\(lastErrorText()))") }
        } catch {
            file.closeIfOpen()
            unlink(temporary)
            throw error
        }
        syncDirectory(directory)
    }

    /// Makes a finished rename durable; best effort, since the file itself is already complete.
    private static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    private static func lastErrorText() -> String { String(cString: strerror(errno)) }

    /// A whole file mapped read-only into memory.
    private struct MappedFile {
        let bytes: UnsafeRawBufferPointer

        init(path: String) throws {
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { throw Problem("cannot open (\(lastErrorText()))") }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0 else { throw Problem("cannot stat (\(lastErrorText()))") }
            guard (info.st_mode & S_IFMT) == S_IFREG else { throw Problem("not a regular file") }
            let size = Int(info.st_size)
            guard size > 0 else {
                bytes = UnsafeRawBufferPointer(start: nil, count: 0)
                return
            }
            guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
                throw Problem("cannot map into memory (\(lastErrorText()))")
            }
            bytes = UnsafeRawBufferPointer(start: base, count: size)
        }

        func unmap() {
            if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
        }
    }

    /// A file being written with POSIX calls, so that it can be flushed to disk before renaming.
    private final class OutputFile {
        private var fd: Int32

        init(path: String) throws {
            fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            guard fd >= 0 else { throw Problem("cannot create a temporary file next to it (\(lastErrorText()))") }
        }

        func append(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { try append($0) }
        }

        func append(_ bytes: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < bytes.count {
                let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw Problem("cannot write (\(lastErrorText()))") }
                done += n
            }
        }

        func flushAndClose() throws {
            guard fsync(fd) == 0 else { throw Problem("cannot flush to disk (\(lastErrorText()))") }
            let result = close(fd)
            fd = -1
            guard result == 0 else { throw Problem("cannot close (\(lastErrorText()))") }
        }

        func closeIfOpen() {
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    // MARK: Data types

    /// The dtypes this reader converts to Float32, by their names in the header.
    private static let dtypes: [String: StoredElementType] = [
        "F64": .float64, "F32": .float32, "F16": .float16, "BF16": .bfloat16,
        "I64": .int64, "I32": .int32, "I16": .int16, "I8": .int8,
        "U64": .uint64, "U32": .uint32, "U16": .uint16, "U8": .uint8, "BOOL": .bool,
    ]

    /// The IEEE 754 binary16 value with bit pattern `bits`, exactly, including signed zeros,
    /// subnormals, infinities and NaN payloads.
    static func float(fromHalf bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = UInt32(bits >> 10) & 0x1F
        let mantissa = UInt32(bits & 0x3FF)
        switch exponent {
        case 0:
            // Zero or subnormal: mantissa · 2⁻²⁴, exact in Float32.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        case 0x1F:
            return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
        default:
            return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
        }
    }
}
