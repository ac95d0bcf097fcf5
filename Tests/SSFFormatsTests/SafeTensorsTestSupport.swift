// Helpers shared by the safetensors tests: hand-built files and scratch directories.
import Foundation
import XCTest
import SSFFormats

/// Bytes of a safetensors file with the given header text (not padded) and data buffer.
func safetensorsBytes(header: String, data: [UInt8]) -> [UInt8] {
    let json = Array(header.utf8)
    return withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) } + json + data
}

/// Little-endian bytes of each value.
func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
}

/// A fresh directory under the system temporary directory, removed when the test ends.
func makeScratchDirectory(for test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("ssf-safetensors-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// Writes `bytes` to `name` in `directory` and loads it.
func loadBytes(_ bytes: [UInt8], named name: String = "t.safetensors", in directory: URL) throws -> SafeTensorsFile {
    let url = directory.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return try SafeTensors.load(url)
}

/// Asserts that two float arrays are equal bit for bit (so NaN, -0 and infinities compare exactly).
func assertBitsEqual(_ actual: [Float], _ expected: [Float], file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.map(\.bitPattern), expected.map(\.bitPattern),
                   "\(actual) != \(expected)", file: file, line: line)
}
