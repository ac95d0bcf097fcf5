// The JSON writer: string escaping that both the project's parser and Foundation read back,
// sorted or given key order, valid numbers, and safetensors headers written through it.
import Foundation
import XCTest
import SSFEngine
@testable import SSFFormats

final class JSONWriterTests: XCTestCase {
    /// A quote, a backslash, a newline, a tab, U+0001, DEL and non-ASCII text.
    private let awkward = "say \"hi\"\\ back\nnext\tcol\u{01}\u{7F} é ü 🙂 日本"

    func testEscapesControlCharactersQuotesAndBackslashesAndKeepsNonASCII() throws {
        XCTAssertEqual(JSONValue("a\"b\\c\n\t\u{01}\u{08}\u{0C}\r é").serialized, #""a\"b\\c\n\t\u0001\b\f\r é""#)
        let text = JSONValue(awkward).serialized
        XCTAssertFalse(text.unicodeScalars.contains { $0.value < 0x20 }, text)
        XCTAssertTrue(text.contains("é ü 🙂 日本"), "non-ASCII is written as it is: \(text)")

        // The project's own parser reads it back ...
        guard case .string(let parsed) = try JSONParser.parse(Array(text.utf8)) else { return XCTFail(text) }
        XCTAssertEqual(parsed, awkward)
        // ... and so does Foundation's.
        let foundation = try JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed)
        XCTAssertEqual(foundation as? String, awkward)
        // Every control character, one by one.
        for value in 0..<0x20 {
            let one = String(UnicodeScalar(UInt8(value)))
            guard case .string(let back) = try JSONParser.parse(Array(JSONValue(one).serialized.utf8)) else { return XCTFail("\(value)") }
            XCTAssertEqual(back, one, "U+\(String(value, radix: 16))")
        }
    }

    func testObjectsWriteTheirKeysSortedWhateverTheOrderTheyWereBuiltInAndLiteralsInTheirOrder() throws {
        var forward: [String: JSONValue] = [:], backward: [String: JSONValue] = [:]
        let keys = (0..<40).map { "key\($0)" } + ["", "Z", "a\"", awkward]
        for key in keys { forward[key] = JSONValue(key.count) }
        for key in keys.reversed() { backward[key] = JSONValue(key.count) }
        XCTAssertEqual(JSONValue.object(forward).serialized, JSONValue.object(backward).serialized)
        let sorted: JSONValue = .object(["b": [true, false, .null], "a": 1, "c": .object(["y": "z", "x": []])])
        XCTAssertEqual(sorted.serialized, #"{"a":1,"b":[true,false,null],"c":{"x":[],"y":"z"}}"#)
        // A literal (an ordered object) keeps its order.
        let ordered: JSONValue = ["b": [true, false, .null], "a": 1, "c": ["y": "z", "x": []]]
        XCTAssertEqual(ordered.serialized, #"{"b":[true,false,null],"a":1,"c":{"y":"z","x":[]}}"#)
        XCTAssertEqual(try JSONParser.parse(Array(ordered.serialized.utf8)), sorted)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(JSONValue.object(forward).serialized.utf8)) as? [String: Int])
        XCTAssertEqual(object.count, keys.count)
        XCTAssertEqual(object[awkward], awkward.count)
    }

    func testNumbersAreValidJSONAndNonFiniteValuesAreNull() throws {
        XCTAssertEqual(JSONValue(0.5).serialized, "0.5")
        XCTAssertEqual(JSONValue(Float(0.485)).serialized, "0.485")
        XCTAssertEqual(JSONValue(-3).serialized, "-3")
        XCTAssertEqual(JSONValue(2.0 / 3.0, decimals: 4).serialized, "0.6667")
        XCTAssertEqual(JSONValue(12345.678, significantDigits: 4).serialized, "1.235e+04")
        for bad in [Double.nan, .infinity, -.infinity] {
            XCTAssertEqual(JSONValue(bad).serialized, "null")
            XCTAssertEqual(JSONValue(bad, decimals: 2).serialized, "null")
        }
        let numbers: JSONValue = .array([JSONValue(1e-5), JSONValue(1e300), JSONValue(-0.0), JSONValue(Float(3e38)), JSONValue(Int.min)])
        let text = numbers.serialized
        XCTAssertEqual(try JSONParser.parse(Array(text.utf8)), numbers)
        XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any])?.count, 5, text)
    }

    func testSafeTensorsHeadersAreWrittenByTheWriter() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ssf-json-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try SafeTensors.save([awkward: Tensor(shape: [2], [1, 2]), "b": Tensor(scalar: 3)], metadata: ["note": awkward], to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        let length = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        XCTAssertEqual(length % 8, 0)
        let header = String(decoding: bytes[8..<8 + length], as: UTF8.self).trimmingCharacters(in: .whitespaces)
        let expected: JSONValue = [
            "__metadata__": ["note": JSONValue(awkward)],
            "b": ["dtype": "F32", "shape": [], "data_offsets": [0, 4]],
            awkward: ["dtype": "F32", "shape": [2], "data_offsets": [4, 12]],
        ]
        XCTAssertEqual(header, expected.serialized)
        let file = try SafeTensors.load(url)
        XCTAssertEqual(file.metadata, ["note": awkward])
        XCTAssertEqual(file.tensors[awkward]?.shape, [2])
    }
}
