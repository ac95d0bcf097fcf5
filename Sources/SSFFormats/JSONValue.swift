// A JSON value, as the parser reads it and the writer (JSONWriter.swift) writes it.

/// A JSON value. Numbers keep their text so each caller decides how to read them (a
/// safetensors header needs exact 64-bit integers, which a Double cannot hold) and how to
/// write them (the initialisers in JSONWriter.swift give valid number text).
public enum JSONValue: Equatable, Sendable {
    /// An object; the writer puts its keys in sorted order.
    case object([String: JSONValue])
    /// An object whose members the writer puts in the order given (the parser gives `.object`);
    /// its keys must differ.
    case orderedObject([JSONMember])
    case array([JSONValue])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// A short name for the kind of value, for error messages.
    public var kind: String {
        switch self {
        case .object, .orderedObject: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }
}

/// A member of an object written in a fixed order.
public struct JSONMember: Equatable, Sendable {
    public var key: String
    public var value: JSONValue

    public init(_ key: String, _ value: JSONValue) {
        self.key = key
        self.value = value
    }
}
