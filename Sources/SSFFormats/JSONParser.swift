// A small strict JSON parser (RFC 8259) for checkpoint headers: it rejects duplicate object
// keys, unpaired surrogate escapes and trailing garbage, and limits nesting depth so that
// hostile input cannot exhaust the stack.

/// Parses JSON text from UTF-8 bytes that the caller has already validated as UTF-8.
struct JSONParser {
    /// Why the text was rejected.
    struct Failure: Error {
        let message: String
    }

    /// Deepest nesting of arrays and objects accepted.
    static let maxDepth = 64

    private let bytes: [UInt8]
    private var position = 0

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The single JSON value in `bytes`, which may be surrounded by whitespace.
    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        var parser = JSONParser(bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.syntaxError("unexpected text after the value") }
        return value
    }

    private func syntaxError(_ what: String) -> Failure {
        Failure(message: "invalid JSON at byte \(position): \(what)")
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while let b = current, b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { position += 1 }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws {
        guard current == byte else { throw expectationError(what) }
        position += 1
    }

    /// A syntax error saying what was expected here, or that the text ended too early.
    private func expectationError(_ what: String) -> Failure {
        syntaxError(current == nil ? "unexpected end, expected \(what)" : "expected \(what)")
    }

    private mutating func parseValue(depth: Int) throws -> JSONValue {
        guard let b = current else { throw expectationError("a value") }
        switch b {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        case UInt8(ascii: "t"): try parseLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try parseLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try parseLiteral("null"); return .null
        default: throw expectationError("a value")
        }
    }

    private mutating func parseLiteral(_ word: String) throws {
        for byte in word.utf8 { try expect(byte, "'\(word)'") }
    }

    private mutating func checkDepth(_ depth: Int) throws {
        guard depth <= JSONParser.maxDepth else {
            throw Failure(message: "JSON nested more than \(JSONParser.maxDepth) levels deep")
        }
    }

    private mutating func parseObject(depth: Int) throws -> JSONValue {
        try checkDepth(depth)
        position += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if current == UInt8(ascii: "}") { position += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw expectationError("a string key") }
            let keyPosition = position
            let key = try parseString()
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':'")
            skipWhitespace()
            let value = try parseValue(depth: depth)
            guard members.updateValue(value, forKey: key) == nil else {
                throw Failure(message: "duplicate key \(JSONValue.quoted(key)) at byte \(keyPosition)")
            }
            skipWhitespace()
            if current == UInt8(ascii: "}") { position += 1; return .object(members) }
            try expect(UInt8(ascii: ","), "',' or '}'")
        }
    }

    private mutating func parseArray(depth: Int) throws -> JSONValue {
        try checkDepth(depth)
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") { position += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            if current == UInt8(ascii: "]") { position += 1; return .array(elements) }
            try expect(UInt8(ascii: ","), "',' or ']'")
        }
    }

    /// Number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`; returns the text.
    private mutating func parseNumber() throws -> String {
        let start = position
        if current == UInt8(ascii: "-") { position += 1 }
        if current == UInt8(ascii: "0") {
            position += 1
        } else {
            try digits()
        }
        if current == UInt8(ascii: ".") {
            position += 1
            try digits()
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            try digits()
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    /// One or more decimal digits.
    private mutating func digits() throws {
        guard let b = current, isDigit(b) else { throw expectationError("a digit") }
        while let b = current, isDigit(b) { position += 1 }
    }

    private func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    private mutating func parseString() throws -> String {
        position += 1
        var utf8: [UInt8] = []
        while true {
            guard let b = current else { throw syntaxError("unterminated string") }
            position += 1
            switch b {
            case UInt8(ascii: "\""):
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                let scalar = try parseEscape()
                UTF8.encode(scalar) { utf8.append($0) }
            case 0..<0x20:
                position -= 1
                throw syntaxError("control character in string")
            default:
                utf8.append(b)
            }
        }
    }

    /// The character after a backslash (already consumed).
    private mutating func parseEscape() throws -> Unicode.Scalar {
        guard let b = current else { throw syntaxError("unterminated string") }
        position += 1
        switch b {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let unit = try hexQuad()
            switch unit {
            case 0xD800..<0xDC00:
                guard current == UInt8(ascii: "\\") else { throw syntaxError("unpaired surrogate in \\u escape") }
                position += 1
                guard current == UInt8(ascii: "u") else { throw syntaxError("unpaired surrogate in \\u escape") }
                position += 1
                let low = try hexQuad()
                guard (0xDC00..<0xE000).contains(low) else { throw syntaxError("unpaired surrogate in \\u escape") }
                return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))!
            case 0xDC00..<0xE000:
                throw syntaxError("unpaired surrogate in \\u escape")
            default:
                return Unicode.Scalar(unit)!
            }
        default:
            position -= 1
            throw syntaxError("invalid escape")
        }
    }

    /// Four hex digits of a `\u` escape.
    private mutating func hexQuad() throws -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let b = current, let digit = hexDigit(b) else { throw expectationError("four hex digits after \\u") }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    private func hexDigit(_ b: UInt8) -> UInt32? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(b - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
