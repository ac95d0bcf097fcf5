// A minimal MATLAB v5 .mat reader: numeric arrays, char arrays, cell arrays and struct arrays, compressed or not.
import Foundation
import SSFFormats

/// A variable of a MATLAB v5 file, as far as this reader understands it.
public indirect enum MatValue: Sendable {
    /// A numeric array (any MATLAB numeric class) as doubles, column-major, with its dimensions.
    case numeric(dims: [Int], values: [Double])
    /// A character array with one row (a string).
    case text(String)
    /// A cell array, column-major, with its dimensions.
    case cell(dims: [Int], items: [MatValue])
    /// A struct array, column-major, with its dimensions: each element's fields by name.
    case structure(dims: [Int], fields: [String], items: [[String: MatValue]])
    /// An empty matrix (a struct field or cell left unset).
    case empty
}

/// The variables of a MATLAB v5 (.mat) file by name. Objects, sparse and complex arrays and
/// big-endian files are rejected with a message naming the file.
public func readMatFile(_ url: URL) throws -> [String: MatValue] {
    let bytes: [UInt8]
    do { bytes = [UInt8](try Data(contentsOf: url)) } catch {
        throw DatasetError(path: url.path, problem: "cannot read the file (\(error.localizedDescription))")
    }
    let path = url.path
    guard bytes.count >= 128, bytes[126] == UInt8(ascii: "I"), bytes[127] == UInt8(ascii: "M") else {
        throw DatasetError(path: path, problem: bytes.count >= 128 && bytes[126] == UInt8(ascii: "M")
            ? "is a big-endian MAT file, which is not supported" : "is not a MATLAB v5 .mat file (v7.3/HDF5 files are not supported)")
    }
    var result: [String: MatValue] = [:]
    var reader = MatReader(bytes: bytes, pos: 128, path: path, depth: 0)
    while reader.pos + 8 <= bytes.count {
        if let (name, value) = try reader.element() { result[name] = value }
    }
    return result
}

private struct MatReader {
    var bytes: [UInt8]
    var pos: Int
    let path: String
    /// Nesting depth of cell and struct arrays, bounded so a hostile file cannot exhaust the stack.
    let depth: Int

    func fail(_ problem: String) -> DatasetError { DatasetError(path: path, problem: "MAT file: \(problem)") }

    func u32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }

    /// Reads a tag and its data, returning (type, data) and moving past the padding.
    mutating func tagged() throws -> (Int, ArraySlice<UInt8>) {
        guard pos + 8 <= bytes.count else { throw fail("truncated element tag") }
        let first = u32(pos)
        if first >> 16 != 0 {                                  // small data element: 4 data bytes in the tag
            let size = first >> 16, type = first & 0xFFFF
            guard size <= 4 else { throw fail("small element of \(size) bytes") }
            defer { pos += 8 }
            return (type, bytes[(pos + 4)..<(pos + 4 + size)])
        }
        let size = u32(pos + 4)
        guard pos + 8 + size <= bytes.count else { throw fail("element of \(size) bytes runs past the end: the file is truncated") }
        let data = bytes[(pos + 8)..<(pos + 8 + size)]
        pos += 8 + size
        if first != 15 { pos += (8 - size % 8) % 8 }          // compressed elements are not padded
        return (first, data)
    }

    /// One top-level element: a named variable, or nil for one this reader skips.
    mutating func element() throws -> (String, MatValue)? {
        let (type, data) = try tagged()
        if type == 15 {
            var inner = MatReader(bytes: try inflated(Array(data), container: .zlib, limit: 1 << 30, path: path), pos: 0, path: path, depth: depth)
            return try inner.element()
        }
        guard type == 14 else { return nil }
        var sub = MatReader(bytes: Array(data), pos: 0, path: path, depth: depth)
        return try sub.matrix()
    }

    /// The body of a miMATRIX element: flags, dimensions, name, contents.
    mutating func matrix() throws -> (String, MatValue) {
        let (_, flags) = try tagged()
        guard flags.count >= 8 else { throw fail("bad array flags") }
        let flagWord = (0..<4).reduce(0) { $0 | Int(flags[flags.startIndex + $1]) << (8 * $1) }
        let arrayClass = flagWord & 0xFF, complex = flagWord & 0x800 != 0
        let (_, dimBytes) = try tagged()
        guard dimBytes.count % 4 == 0, dimBytes.count >= 8 else { throw fail("bad array dimensions") }
        let dims = stride(from: dimBytes.startIndex, to: dimBytes.endIndex, by: 4).map { at in
            Int(Int32(truncatingIfNeeded: (0..<4).reduce(0) { acc, k in acc | Int(dimBytes[at + k]) << (8 * k) }))
        }
        let (_, nameBytes) = try tagged()
        let name = String(decoding: nameBytes, as: UTF8.self)
        guard dims.allSatisfy({ $0 >= 0 && $0 < 1 << 31 }) else { throw fail("\(name) has dimensions \(dims)") }
        let (total, overflow) = dims.reduce((1, false)) { acc, d in
            let (product, o) = acc.0.multipliedReportingOverflow(by: d)
            return (product, acc.1 || o || product > 1 << 31)
        }
        guard !overflow else { throw fail("\(name) has dimensions \(dims)") }
        switch arrayClass {
        case 1:                                                 // mxCELL_CLASS
            guard depth < 16 else { throw fail("cell arrays nest more than 16 deep") }
            var items: [MatValue] = []
            for _ in 0..<total {
                let (type, data) = try tagged()
                guard type == 14 else { throw fail("cell \(name) holds a non-matrix element") }
                if data.isEmpty { items.append(.empty); continue }
                var sub = MatReader(bytes: Array(data), pos: 0, path: path, depth: depth + 1)
                items.append(try sub.matrix().1)
            }
            return (name, .cell(dims: dims, items: items))
        case 2:                                                 // mxSTRUCT_CLASS
            guard depth < 16 else { throw fail("struct arrays nest more than 16 deep") }
            let (_, lengthBytes) = try tagged()
            guard lengthBytes.count >= 4 else { throw fail("\(name): bad field-name length") }
            let length = (0..<4).reduce(0) { $0 | Int(lengthBytes[lengthBytes.startIndex + $1]) << (8 * $1) }
            let (_, nameData) = try tagged()
            guard length > 0, length <= 64, nameData.count % length == 0 else { throw fail("\(name): bad field names") }
            let fields = stride(from: nameData.startIndex, to: nameData.endIndex, by: length).map { at in
                String(decoding: nameData[at..<(at + length)].prefix { $0 != 0 }, as: UTF8.self)
            }
            guard total.multipliedReportingOverflow(by: fields.count).partialValue <= bytes.count / 8 else {
                throw fail("\(name) declares \(total) elements of \(fields.count) fields in \(bytes.count) bytes")
            }
            var items: [[String: MatValue]] = []
            items.reserveCapacity(total)
            for _ in 0..<total {
                var item: [String: MatValue] = [:]
                for field in fields {
                    let (type, data) = try tagged()
                    guard type == 14 else { throw fail("struct \(name) field \(field) is not a matrix element") }
                    if data.isEmpty { item[field] = .empty; continue }
                    var sub = MatReader(bytes: Array(data), pos: 0, path: path, depth: depth + 1)
                    item[field] = try sub.matrix().1
                }
                items.append(item)
            }
            return (name, .structure(dims: dims, fields: fields, items: items))
        case 4:                                                 // mxCHAR_CLASS
            guard dims.count == 2, dims[0] <= 1 else { throw fail("\(name) is a multi-row character array") }
            let (type, data) = try tagged()
            if type == 16 { return (name, .text(String(decoding: data, as: UTF8.self))) }
            let codes = try numbers(type, data)
            // Code points out of Unicode's range (or not integral) are dropped, as invalid ones are.
            return (name, .text(String(String.UnicodeScalarView(codes.compactMap { c in
                c >= 0 && c <= 0x10FFFF && c.rounded() == c ? Unicode.Scalar(UInt32(c)) : nil
            }))))
        case 6...15:                                            // numeric classes
            guard !complex else { throw fail("\(name) is complex") }
            let (type, data) = try tagged()
            let values = try numbers(type, data)
            guard values.count == total else { throw fail("\(name) has \(values.count) values for dimensions \(dims)") }
            return (name, .numeric(dims: dims, values: values))
        default:
            throw fail("\(name) is of MATLAB class \(arrayClass) (object or sparse), which is not supported")
        }
    }

    /// Little-endian numbers of MAT data type `type`.
    func numbers(_ type: Int, _ data: ArraySlice<UInt8>) throws -> [Double] {
        let widths = [1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4]
        guard let width = widths[type] else { throw fail("unsupported data type \(type)") }
        return stride(from: data.startIndex, to: data.endIndex - width + 1, by: width).map { at in
            let raw = (0..<width).reduce(UInt64(0)) { $0 | UInt64(data[at + $1]) << (8 * UInt64($1)) }
            switch type {
            case 1: return Double(Int8(truncatingIfNeeded: raw))
            case 3: return Double(Int16(truncatingIfNeeded: raw))
            case 5: return Double(Int32(truncatingIfNeeded: raw))
            case 12: return Double(Int64(bitPattern: raw))
            case 7: return Double(Float(bitPattern: UInt32(raw)))
            case 9: return Double(bitPattern: raw)
            default: return Double(raw)
            }
        }
    }
}
