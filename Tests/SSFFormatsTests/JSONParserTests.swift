// The strict JSON parser behind safetensors headers: accepted syntax, escapes and rejections.
import XCTest
@testable import SSFFormats

final class JSONParserTests: XCTestCase {
    private func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    private func assertRejects(_ text: String, _ phrase: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(text), text, file: file, line: line) { error in
            let message = (error as? JSONParser.Failure)?.message ?? "\(error)"
            XCTAssertTrue(message.contains(phrase), "\(text): \"\(message)\" lacks \"\(phrase)\"", file: file, line: line)
        }
    }

    func testParsesNestedValuesAndKeepsNumberText() throws {
        guard case .object(let top) = try parse(#" {"a": [1, -0, 2.50, 1e-3, true, false, null], "b": {}, "c": []}  "#),
              case .array(let a) = top["a"], case .object(let b) = top["b"], case .array(let c) = top["c"]
        else { return XCTFail("wrong structure") }
        XCTAssertEqual(a.map(\.kind), ["a number", "a number", "a number", "a number", "a boolean", "a boolean", "null"])
        guard case .number(let text) = a[2] else { return XCTFail() }
        XCTAssertEqual(text, "2.50")
        XCTAssertTrue(b.isEmpty)
        XCTAssertTrue(c.isEmpty)
    }

    func testDecodesEscapes() throws {
        guard case .string(let s) = try parse(#""q\"b\\s\/\b\f\n\r\t\u00e9\ud83d\ude42ü""#) else { return XCTFail() }
        XCTAssertEqual(s, "q\"b\\s/\u{08}\u{0C}\n\r\té🙂ü")
    }

    func testQuotedStringsParseBack() throws {
        for text in ["", "plain", "q\"b\\", "\u{00}\u{1F}\n\t", "é🙂", "\u{7F}"] {
            guard case .string(let parsed) = try parse(JSONValue.quoted(text)) else { return XCTFail(text) }
            XCTAssertEqual(parsed, text)
        }
    }

    func testRejectsMalformedSyntax() {
        assertRejects("", "unexpected end")
        assertRejects("01", "unexpected text after the value")
        assertRejects("1.", "expected a digit")
        assertRejects("-", "expected a digit")
        assertRejects("[1,]", "expected a value")
        assertRejects(#"{"a":1,}"#, "expected a string key")
        assertRejects(#"{'a':1}"#, "expected a string key")
        assertRejects(#"{"a" 1}"#, "expected ':'")
        assertRejects("[1 2]", "expected ',' or ']'")
        assertRejects("tru", "expected 'true'")
        assertRejects("\"a\u{01}\"", "control character in string")
        assertRejects(#""\x""#, "invalid escape")
        assertRejects(#""\u12g4""#, "expected four hex digits")
        assertRejects(#""\udc00""#, "unpaired surrogate")
        assertRejects(#""\ud800\u0041""#, "unpaired surrogate")
        assertRejects(#""abc"#, "unterminated string")
        assertRejects("{} x", "unexpected text after the value")
    }

    func testRejectsDuplicateKeysAtAnyDepth() {
        assertRejects(#"{"a": 1, "a": 2}"#, "duplicate key \"a\"")
        assertRejects(#"{"x": {"k": 1, "k": 1}}"#, "duplicate key \"k\"")
    }

    func testLimitsNestingDepth() throws {
        let depth = JSONParser.maxDepth
        XCTAssertNoThrow(try parse(String(repeating: "[", count: depth) + String(repeating: "]", count: depth)))
        assertRejects(String(repeating: "[", count: depth + 1) + String(repeating: "]", count: depth + 1), "nested more than")
        assertRejects(String(repeating: "[", count: 100_000), "nested more than")
    }
}
