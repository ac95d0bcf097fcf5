// NumPy .npz archives, the format of Google's ViT checkpoints: a zip (stored or deflated) of
// .npy arrays named like `Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel.npy`. Each .npy
// is a magic string, a version, a Python-literal header dict ('descr', 'fortran_order',
// 'shape') and the raw little-endian data, converted here to a Float32 tensor.
import Foundation
import SSFEngine

/// Reads NumPy `.npz` archives.
public enum NumPyArchive {
    /// Loads every array of the `.npz` file at `url` as a Float32 tensor, named by its entry
    /// name without `.npy` (entries with other names are ignored).
    ///
    /// Arrays may be float64/32/16, int64/32/16/8, uint8 or bool, in C or Fortran order (the
    /// latter is transposed into row-major order). Throws `CheckpointError` naming the file,
    /// the array and the problem for a damaged archive or .npy header, object arrays (which
    /// would need pickle), structured or big-endian dtypes, and data of the wrong size.
    public static func load(_ url: URL) throws -> [String: Tensor] {
        let path = url.path
        let data = try TorchCheckpoint.mapFile(url)
        return try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            guard ZipArchive.hasSignature(bytes) else {
                throw CheckpointError(path: path, problem: bytes.isEmpty ? "file is empty" : "is not a zip archive, so not an .npz file")
            }
            let archive = try ZipArchive(bytes, path: path)
            var arrays: [String: Tensor] = [:]
            for entry in archive.entries where entry.name.hasSuffix(".npy") {
                let name = String(entry.name.dropLast(".npy".count))
                arrays[name] = try archive.withContents(of: entry) { raw in
                    do {
                        return try array(raw)
                    } catch let problem as NpyProblem {
                        throw CheckpointError(path: path, problem: "array \"\(name)\": \(problem.text)")
                    }
                }
            }
            guard !arrays.isEmpty else { throw CheckpointError(path: path, problem: "holds no .npy arrays") }
            return arrays
        }
    }

    private struct NpyProblem: Error {
        let text: String
        init(_ text: String) { self.text = text }
    }

    private static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// NumPy type codes (without the byte order) and their element types; also used for pickled arrays.
    static let elementTypes: [String: StoredElementType] = [
        "f8": .float64, "f4": .float32, "f2": .float16,
        "i8": .int64, "i4": .int32, "i2": .int16, "i1": .int8, "u1": .uint8, "b1": .bool,
    ]

    /// The array in the .npy bytes `raw`.
    private static func array(_ raw: UnsafeRawBufferPointer) throws -> Tensor {
        guard raw.count >= 10, Array(raw.prefix(6)) == magic else { throw NpyProblem("bad .npy magic: not a NumPy array file") }
        let (major, minor) = (raw[6], raw[7])
        let lengthSize: Int
        switch major {
        case 1: lengthSize = 2
        case 2, 3: lengthSize = 4
        default: throw NpyProblem("unsupported .npy format version \(major).\(minor)")
        }
        guard raw.count >= 8 + lengthSize else { throw NpyProblem("ends inside the .npy header") }
        let headerLength = lengthSize == 2 ? Int(raw.littleEndian(UInt16.self, at: 8)) : Int(raw.littleEndian(UInt32.self, at: 8))
        let headerStart = 8 + lengthSize
        guard headerLength <= raw.count - headerStart else { throw NpyProblem("ends inside the .npy header") }
        let headerBytes = UnsafeRawBufferPointer(rebasing: raw[headerStart..<headerStart + headerLength])
        let header = try NpyHeader(major == 3 ? String(decoding: headerBytes, as: UTF8.self)
                                              : String(String.UnicodeScalarView(headerBytes.map { Unicode.Scalar($0) })))

        let type = try elementType(header.descr)
        let view = header.fortranOrder ? StridedView.columnMajor(header.shape) : StridedView.contiguous(header.shape)
        guard header.shape.allSatisfy({ $0 >= 0 }), let count = view.elementCount else {
            throw NpyProblem("shape \(header.shape) is negative or too large")
        }
        let data = UnsafeRawBufferPointer(rebasing: raw[(headerStart + headerLength)...])
        guard data.count == count * type.byteSize else {
            throw NpyProblem("data holds \(data.count) bytes but shape \(header.shape) of '\(header.descr)' needs \(count * type.byteSize)")
        }
        return type.gather(from: data, view)
    }

    /// The element type of a simple descr such as `<f4` or `|u1`.
    private static func elementType(_ descr: String) throws -> StoredElementType {
        let order = descr.first
        let code = String(descr.dropFirst())
        if code.hasPrefix("O") { throw NpyProblem("is an object array ('\(descr)'), which would need pickle to read; refusing to load it") }
        guard let type = elementTypes[code], order == "<" || order == "|" || (order == ">" && type.byteSize == 1) else {
            if order == ">" { throw NpyProblem("has big-endian dtype '\(descr)', which is not supported") }
            throw NpyProblem("has unsupported dtype '\(descr.prefix(32))'")
        }
        return type
    }

    /// The header dict of a .npy file, e.g. `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`:
    /// a Python literal with string keys and string, bool or int-tuple values.
    private struct NpyHeader {
        var descr = ""
        var fortranOrder = false
        var shape: [Int] = []

        private var characters: [Character]
        private var position = 0

        init(_ text: String) throws {
            characters = Array(text)
            var seen = Set<String>()
            try expect("{")
            while !consume("}") {
                let key = try string()
                try expect(":")
                switch key {
                case "descr":
                    skipSpaces()
                    guard peek == "'" || peek == "\"" else { throw NpyProblem("has a structured dtype, which is not supported") }
                    descr = try string()
                case "fortran_order": fortranOrder = try bool()
                case "shape": shape = try integerTuple()
                default: throw NpyProblem("has unexpected header key '\(key.prefix(32))'")
                }
                seen.insert(key)
                if !consume(",") { try expect("}"); break }
            }
            skipSpaces()
            guard position == characters.count else { throw NpyProblem("has text after the header dict") }
            guard seen.count == 3 else { throw NpyProblem("header lacks 'descr', 'fortran_order' or 'shape'") }
        }

        private var peek: Character? { position < characters.count ? characters[position] : nil }

        private mutating func skipSpaces() {
            while let c = peek, c.isWhitespace { position += 1 }
        }

        private mutating func consume(_ c: Character) -> Bool {
            skipSpaces()
            guard peek == c else { return false }
            position += 1
            return true
        }

        private mutating func expect(_ c: Character) throws {
            guard consume(c) else { throw NpyProblem("has a malformed header: expected '\(c)' at character \(position)") }
        }

        private mutating func string() throws -> String {
            skipSpaces()
            guard let quote = peek, quote == "'" || quote == "\"" else {
                throw NpyProblem("has a malformed header: expected a string at character \(position)")
            }
            position += 1
            let start = position
            while let c = peek, c != quote {
                guard c != "\\" else { throw NpyProblem("has a header string with an escape, which is not supported") }
                position += 1
            }
            guard peek == quote else { throw NpyProblem("has a malformed header: unterminated string") }
            position += 1
            return String(characters[start..<position - 1])
        }

        private mutating func bool() throws -> Bool {
            skipSpaces()
            for (word, value) in [("True", true), ("False", false)] where characters[position...].starts(with: word) {
                position += word.count
                return value
            }
            throw NpyProblem("has a malformed header: expected True or False at character \(position)")
        }

        /// `()`, `(5,)` or `(3, 4)`, allowing Python 2's `L` suffix.
        private mutating func integerTuple() throws -> [Int] {
            try expect("(")
            var values: [Int] = []
            while !consume(")") {
                skipSpaces()
                let start = position
                while let c = peek, c.isASCII, c.isNumber { position += 1 }
                guard let value = Int(String(characters[start..<position])) else {
                    throw NpyProblem("has a malformed header: expected a non-negative integer at character \(start)")
                }
                values.append(value)
                _ = consume("L")
                if !consume(",") { try expect(")"); break }
            }
            return values
        }
    }
}
