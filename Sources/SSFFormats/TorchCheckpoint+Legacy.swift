// The legacy checkpoint format of torch < 1.6 (still written with
// `_use_new_zipfile_serialization=False`): five pickles in a row — the magic number, the
// protocol version, system information, the object, and the list of storage keys — followed by
// each listed storage as an 8-byte little-endian element count and its raw bytes.
import Foundation
import SSFEngine

extension TorchCheckpoint {
    /// torch's legacy magic number 0x1950a86a20f9469cfc6c, as LONG1's little-endian bytes.
    private static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    private static let legacyProtocolVersion = 1001

    static func loadLegacy(_ bytes: UnsafeRawBufferPointer, path: String) throws -> [String: Tensor] {
        func fail(_ problem: String) -> CheckpointError { CheckpointError(path: path, problem: problem) }
        var unpickler = Unpickler(dialect: .tensorCheckpoint)
        var position = 0
        func nextPickle(_ what: String) throws -> PickleValue {
            let (value, end) = try unpickler.load(bytes, from: position, path: path, label: "legacy pickle \(what)")
            position = end
            return value
        }

        guard case .bigInt(legacyMagic) = try nextPickle("1 (magic number)") else {
            throw fail("bad magic number: the file is a pickle but not a PyTorch checkpoint")
        }
        let version = try nextPickle("2 (protocol version)")
        guard case .int(legacyProtocolVersion) = version else {
            throw fail("has legacy protocol version \(version), not \(legacyProtocolVersion)")
        }
        let info = try nextPickle("3 (system info)")
        if case .bool(false) = unpickler.heap.lookup("little_endian", in: info) {
            throw fail("was written on a big-endian machine, which is not supported")
        }
        let root = try nextPickle("4 (object)")
        let keyList = try nextPickle("5 (storage keys)")
        guard let keyValues = unpickler.heap.sequence(keyList) else { throw fail("storage key list is a \(keyList.kind), not a list") }
        let heap = unpickler.heap

        // The element type of each storage, from the first persistent id that names it.
        var elementTypes: [String: StoredElementType] = [:]
        for storage in heap.storages where elementTypes[storage.key] == nil { elementTypes[storage.key] = storage.elementType }
        var storages: [String: UnsafeRawBufferPointer] = [:]
        for value in keyValues {
            guard case .string(let key) = value else { throw fail("storage key list holds a \(value.kind), not a string") }
            guard let type = elementTypes[key] else { throw fail("storage \"\(key)\" is listed but no tensor refers to it") }
            guard bytes.count - position >= 8 else { throw fail("ends before the data of storage \"\(key)\": the file is truncated") }
            let count = bytes.littleEndian(UInt64.self, at: position)
            position += 8
            let (size, overflow) = count.multipliedReportingOverflow(by: UInt64(type.byteSize))
            guard !overflow, size <= UInt64(bytes.count - position) else {
                throw fail("storage \"\(key)\" of \(count) \(type) elements runs beyond the end of the file: the file is truncated")
            }
            storages[key] = UnsafeRawBufferPointer(rebasing: bytes[position..<position + Int(size)])
            position += Int(size)
        }

        let tensors = try stateDictTensors(root, heap, path: path)
        return try materialize(tensors, heap, path: path) { key, body in
            guard let raw = storages[key] else { throw fail("storage \"\(key)\" is missing from the file's storage list") }
            try body(raw)
        }
    }
}
