// The JSON writer: compact RFC 8259 text in a deterministic key order, so the same value always
// gives the same bytes: an `.object`'s keys sorted, an `.orderedObject`'s (and a dictionary
// literal's) in the order given. Strings escape the quote, the backslash and every control
// character; other characters, non-ASCII included, are written as they are (UTF-8).
import Foundation

extension JSONValue {
    /// The value as compact JSON text: no whitespace; `.object` keys sorted, `.orderedObject`
    /// members in their order.
    public var serialized: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .object(let members):
            Self.write(members.keys.sorted().map { JSONMember($0, members[$0]!) }, to: &out)
        case .orderedObject(let members):
            Self.write(members, to: &out)
        case .array(let elements):
            out += "["
            for (i, element) in elements.enumerated() {
                if i > 0 { out += "," }
                element.write(to: &out)
            }
            out += "]"
        case .string(let text): out += Self.quoted(text)
        case .number(let text): out += text
        case .bool(let value): out += value ? "true" : "false"
        case .null: out += "null"
        }
    }

    private static func write(_ members: [JSONMember], to out: inout String) {
        out += "{"
        for (i, member) in members.enumerated() {
            if i > 0 { out += "," }
            out += quoted(member.key)
            out += ":"
            member.value.write(to: &out)
        }
        out += "}"
    }

    /// `text` as a JSON string literal, quoted and escaped.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

// MARK: Building values

extension JSONValue {
    public init(_ text: String) { self = .string(text) }
    public init(_ value: Bool) { self = .bool(value) }
    public init(_ value: Int) { self = .number(String(value)) }

    /// The shortest text that reads back as `value`; null when it is not finite (JSON has no
    /// NaN or infinity).
    public init(_ value: Double) { self = value.isFinite ? .number("\(value)") : .null }

    /// The shortest text that reads back as `value`; null when it is not finite.
    public init(_ value: Float) { self = value.isFinite ? .number("\(value)") : .null }

    /// `value` with `decimals` digits after the point (`%.Nf`); null when it is not finite.
    public init(_ value: Double, decimals: Int) {
        self = value.isFinite ? .number(String(format: "%.\(decimals)f", value)) : .null
    }

    /// `value` with `digits` significant digits (`%.Ng`); null when it is not finite.
    public init(_ value: Double, significantDigits digits: Int) {
        self = value.isFinite ? .number(String(format: "%.\(digits)g", value)) : .null
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self.init(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// An `.orderedObject`: the members are written in the literal's order. Keys must differ.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        precondition(Set(elements.map(\.0)).count == elements.count, "a JSON object literal repeats a key")
        self = .orderedObject(elements.map { JSONMember($0.0, $0.1) })
    }
}
