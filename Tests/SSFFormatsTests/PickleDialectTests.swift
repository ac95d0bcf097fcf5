// The one unpickler in its two dialects: NumPy data pickles (CIFAR's batches) rebuild uint8
// arrays and read Python 2 strings as bytes; tensor checkpoints read them as text; each
// dialect rejects the other's globals.
import Foundation
import XCTest
@testable import SSFFormats

final class PickleDialectTests: XCTestCase {
    /// A Python 2 style protocol-2 pickle of `{"a": <uint8 array of shape (2, 3)>, "n": [7, 8]}`,
    /// as numpy pickles an array: `_reconstruct(ndarray, (0,), "b")`, then BUILD with
    /// `(1, shape, dtype("u1") with state, False, data)`.
    private func arrayPickle(data: [UInt8], module: String = "numpy._core.multiarray", order: String = "|") -> [UInt8] {
        func short(_ text: String) -> [UInt8] { [0x55, UInt8(text.utf8.count)] + Array(text.utf8) }
        func global(_ module: String, _ name: String) -> [UInt8] { [0x63] + Array("\(module)\n\(name)\n".utf8) }
        let minusOne: [UInt8] = [0x4A, 0xFF, 0xFF, 0xFF, 0xFF]
        var p: [UInt8] = [0x80, 0x02, 0x7D, 0x28] + short("a")
        p += global(module, "_reconstruct") + global("numpy", "ndarray") + [0x4B, 0x00, 0x85] + short("b") + [0x87, 0x52]
        p += [0x28, 0x4B, 0x01, 0x4B, 0x02, 0x4B, 0x03, 0x86]
        p += global("numpy", "dtype") + short("u1") + [0x89, 0x88, 0x87, 0x52]
        p += [0x28, 0x4B, 0x03] + short(order) + [0x4E, 0x4E, 0x4E] + minusOne + minusOne + [0x4B, 0x00, 0x74, 0x62]
        p += [0x89, 0x54] + withUnsafeBytes(of: UInt32(data.count).littleEndian) { Array($0) } + data + [0x74, 0x62]
        p += short("n") + [0x5D, 0x28, 0x4B, 0x07, 0x4B, 0x08, 0x65]
        return p + [0x75, 0x2E]
    }

    private func load(_ bytes: [UInt8], _ dialect: PickleDialect) throws -> (PickleValue, PickleHeap) {
        var unpickler = Unpickler(dialect: dialect)
        let value = try bytes.withUnsafeBytes { try unpickler.load($0, from: 0, path: "x.pkl", label: "pickle").value }
        return (value, unpickler.heap)
    }

    private func problem(_ bytes: [UInt8], _ dialect: PickleDialect) -> String {
        do {
            _ = try load(bytes, dialect)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testNumPyDataRebuildsArraysAndKeepsPython2StringsAsBytes() throws {
        let data: [UInt8] = [0, 1, 2, 200, 254, 255]
        let (root, heap) = try load(arrayPickle(data: data), .numpyData(fileKind: "a CIFAR batch"))
        XCTAssertNil(heap.lookup("a", in: root), "a Python 2 key is bytes, not str")
        let array = try XCTUnwrap(heap.lookup("a", in: root, orBytes: true).flatMap(heap.array))
        XCTAssertEqual(array.shape, [2, 3])
        XCTAssertEqual(array.dtype, "u1")
        XCTAssertEqual(array.byteOrder, "|")
        XCTAssertFalse(array.fortranOrder)
        XCTAssertEqual(array.data, data)
        XCTAssertEqual(heap.lookup("n", in: root, orBytes: true).flatMap(heap.integers), [7, 8])
        XCTAssertEqual(PickleValue.bytes(Array("cat".utf8)).text, "cat")
    }

    func testArraysWhoseDataDoesNotFitTheirShapeAreRejected() {
        let message = problem(arrayPickle(data: [1, 2, 3]), .numpyData(fileKind: "a CIFAR batch"))
        XCTAssertTrue(message.hasPrefix("x.pkl: pickle (byte "), message)
        XCTAssertTrue(message.contains("shape [2, 3] and dtype 'u1' with 3 bytes of data instead of 6"), message)
    }

    func testEachDialectRejectsTheOthersGlobals() {
        // A NumPy array is no part of a tensor checkpoint ...
        XCTAssertTrue(problem(arrayPickle(data: Array(repeating: 0, count: 6)), .tensorCheckpoint)
            .contains("uses global numpy._core.multiarray._reconstruct, which a tensor checkpoint never needs; nothing was loaded or run"))
        // ... and an OrderedDict or a torch storage no part of CIFAR's data.
        let orderedDict: [UInt8] = [0x80, 0x02] + [0x63] + Array("collections\nOrderedDict\n".utf8) + [0x29, 0x52, 0x2E]
        XCTAssertTrue(problem(orderedDict, .numpyData(fileKind: "a CIFAR batch"))
            .contains("uses global collections.OrderedDict, which a CIFAR batch never needs"))
        XCTAssertEqual(problem(orderedDict, .tensorCheckpoint), "no error")
        let storage: [UInt8] = [0x80, 0x02, 0x63] + Array("torch\nFloatStorage\n".utf8) + [0x2E]
        XCTAssertTrue(problem(storage, .numpyData(fileKind: "a CIFAR batch")).contains("which a CIFAR batch never needs"))
        let system: [UInt8] = [0x80, 0x02, 0x63] + Array("posix\nsystem\n".utf8) + [0x2E]
        XCTAssertTrue(problem(system, .numpyData(fileKind: "a CIFAR batch")).contains("uses global posix.system"))
    }

    func testTensorCheckpointsReadPython2StringsAsText() throws {
        let (value, _) = try load([0x80, 0x02, 0x55, 0x02, 0x68, 0xE9, 0x2E], .tensorCheckpoint)
        guard case .string(let text) = value else { return XCTFail("\(value)") }
        XCTAssertEqual(text, "hé")
        let (raw, _) = try load([0x80, 0x02, 0x55, 0x02, 0x68, 0xE9, 0x2E], .numpyData(fileKind: "data"))
        guard case .bytes(let bytes) = raw else { return XCTFail("\(raw)") }
        XCTAssertEqual(bytes, [0x68, 0xE9])
    }
}
